"""``generate_volume``: microstructure + imaging + ground-truth table in one call."""
import numbers
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..analysis import check_phases
from ..io import check_labels
from ..io.labels import compact_labels
from .groundtruth import ground_truth_table
from .microstructure import make_microstructure
from .params import SynthParams, check_seed
from .tomography import INTEGER_ATTENUATION_RANGE, n_projection_angles, simulate_tomography, to_output_dtype

#: Bumped whenever the algorithm changes what a given seed produces.
SYNTH_ALGORITHM_VERSION = 1
_MIN_SLICE_SIDE = 8


@dataclass
class SyntheticVolume:
    """A synthetic nano-CT volume and its exact ground truth.

    Attributes:
        image_zyx (np.ndarray): (Z, Y, X) reconstruction, uint8, uint16 or float32 (``params.output_dtype``).
        labels_zyx (np.ndarray): (Z, Y, X) uint16/uint32 filled-particle instance ids 1..N, 0 = background.
        phases_zyx (np.ndarray): (Z, Y, X) uint8 phases: 0 pore (internal voids included), 1 NMC, 2 carbon-binder.
        particles (pandas.DataFrame): ground-truth table, one row per id
            (:data:`libnet_mmdet.synth.groundtruth.GROUND_TRUTH_COLUMNS`).
        params (SynthParams): the parameters used.
        seed (int): the seed used.
        summary (dict): JSON-ready facts: shape, particle count, phase fractions, projection count, intensity scale.
        timings_s (dict): seconds per stage (not part of the reproducible output).
    """

    image_zyx: np.ndarray
    labels_zyx: np.ndarray
    phases_zyx: np.ndarray
    particles: pd.DataFrame
    params: SynthParams
    seed: int
    summary: dict
    timings_s: dict = field(default_factory=dict)


def check_shape(shape_zyx):
    """Return ``shape_zyx`` as a tuple of three ints; raise ``ValueError`` saying what is wrong otherwise."""
    try:
        shape = tuple(shape_zyx)
    except TypeError:
        shape = None
    if (shape is None or len(shape) != 3 or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool)
                                                       for n in shape)):
        raise ValueError(f'shape_zyx={shape_zyx!r} is invalid: expected three integers (Z, Y, X)')
    if min(shape) < 1:
        raise ValueError(f'shape_zyx={shape} is invalid: the volume is empty; every size must be >= 1')
    if min(shape[1:]) < _MIN_SLICE_SIDE:
        raise ValueError(f'shape_zyx={shape} is invalid: Y and X must be >= {_MIN_SLICE_SIDE} voxels '
                         f'(each z-slice is a tomographic slice)')
    return tuple(int(n) for n in shape)


def _intensity_scale(dtype):
    """What an image value of ``dtype`` means, in words (for the summary)."""
    if dtype == 'float32':
        return 'float32 values are attenuation relative to NMC (pore ~ 0, NMC ~ 1)'
    low, high = INTEGER_ATTENUATION_RANGE
    return f'{dtype} value v is attenuation {low} + {high - low} * v / {np.iinfo(dtype).max} relative to NMC'


def _render(labels_zyx, phases_zyx, params, imaging_seed):
    relative = simulate_tomography(labels_zyx, phases_zyx, params, np.random.default_rng(imaging_seed))
    return to_output_dtype(relative, params.output_dtype)


def render_volume(labels_zyx, phases_zyx, params=None, seed=0):
    """Grayscale nano-CT image of a given microstructure (a real phase volume such as MATBOX's, or a phantom)
    through the synthetic tomography model, with the imaging random stream :func:`generate_volume` uses for
    ``seed``.

    Args:
        labels_zyx (np.ndarray): (Z, Y, X) integer particle ids (0 = none; their attenuation spread per particle).
        phases_zyx (np.ndarray): (Z, Y, X) integer phases, 0 pore, 1 NMC, 2 carbon-binder.
        params (SynthParams, optional): imaging parameters (default: the ``typical`` preset).
        seed (int): non-negative seed.

    Returns:
        np.ndarray: (Z, Y, X) image in ``params.output_dtype``.

    Raises:
        TypeError / ValueError: bad labels (:func:`~libnet_mmdet.io.check_labels`), phases
            (:func:`~libnet_mmdet.analysis.check_phases`), params, shape or seed.
    """
    params = SynthParams() if params is None else params
    if not isinstance(params, SynthParams):
        raise TypeError(f'params: expected a SynthParams (e.g. preset_params({params!r})), got {type(params).__name__}')
    labels_zyx = check_labels(labels_zyx, 'labels_zyx', allow_empty=True)
    phases_zyx = check_phases(phases_zyx, labels_zyx.shape, reference_name='labels_zyx').astype(np.uint8)
    check_shape(labels_zyx.shape)
    labels_zyx = compact_labels(labels_zyx, always=True)[0]  # one draw per particle, not per id up to the largest
    _, imaging_seed = np.random.SeedSequence(check_seed(seed)).spawn(2)
    return _render(labels_zyx, phases_zyx, params, imaging_seed)


def generate_volume(shape_zyx, params=None, seed=0):
    """Generate a synthetic NMC nano-CT volume with exact particle instances.

    The microstructure and the imaging draw from two independent random streams of ``seed``, so changing only
    imaging parameters keeps the labels and phases identical. Same arguments give identical arrays.

    Args:
        shape_zyx (tuple[int, int, int]): (Z, Y, X) size in voxels; Y and X >= 8.
        params (SynthParams, optional): generator parameters; default ``SynthParams()`` (the ``typical`` preset).
        seed (int): non-negative random seed.

    Returns:
        SyntheticVolume: image, labels, phases, ground-truth table and a summary.

    Raises:
        ValueError: invalid shape, seed or parameters (the message names the argument).
    """
    shape = check_shape(shape_zyx)
    seed = check_seed(seed)
    params = SynthParams() if params is None else params
    if not isinstance(params, SynthParams):
        raise ValueError(f'params={params!r} is invalid: expected a SynthParams (see preset_params)')
    structure_seed, imaging_seed = np.random.SeedSequence(seed).spawn(2)
    timings = {}
    start = time.perf_counter()
    labels, phases, info = make_microstructure(shape, params, np.random.default_rng(structure_seed))
    timings['microstructure'] = time.perf_counter() - start
    start = time.perf_counter()
    image = _render(labels, phases, params, imaging_seed)
    timings['imaging'] = time.perf_counter() - start
    start = time.perf_counter()
    particles = ground_truth_table(labels, phases, params.voxel_size_nm, info['nominal_diameter_vox'],
                                   info['hollow_voxels'], info['crack_voxels'], info['porous_voxels'])
    timings['ground_truth'] = time.perf_counter() - start
    phase_counts = np.bincount(phases.ravel(), minlength=3) / phases.size
    summary = {
        'shape_zyx': list(shape), 'n_particles': int(len(particles)),
        'particle_fraction': round(info['particle_fraction'], 6),
        'phase_fractions': {'pore': round(float(phase_counts[0]), 6), 'nmc': round(float(phase_counts[1]), 6),
                            'carbon_binder': round(float(phase_counts[2]), 6)},
        'n_projection_angles': n_projection_angles(shape[1], shape[2], params.angular_sampling),
        'image_dtype': params.output_dtype,
        'intensity_scale': _intensity_scale(params.output_dtype),
        'algorithm_version': SYNTH_ALGORITHM_VERSION,
    }
    return SyntheticVolume(image, labels, phases, particles, params, seed, summary, timings)
