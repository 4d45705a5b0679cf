"""Parameters of the synthetic nano-CT generator: one validated dataclass, three presets and random draws.

Every field carries its unit and meaning in ``metadata['help']``; ``tools/make_synthetic.py`` turns each field into
a command-line option from that text, so a new knob needs no CLI code. :data:`RANDOM_RANGES` and
:func:`random_params` draw the parameters of a randomised training corpus (:func:`libnet_mmdet.synth.write_corpus`).
"""
import dataclasses
import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from ..io import is_number_in

#: Highest accepted target particle volume fraction: random sequential placement with flat contacts cannot
#: reach much more (calendered NMC electrodes hold 0.5-0.65).
MAX_SOLID_FRACTION = 0.75
OUTPUT_DTYPES = ('uint8', 'uint16', 'float32')


def _knob(default, help_text):
    return field(default=default, metadata={'help': help_text})


@dataclass(frozen=True)
class SynthParams:
    """All knobs of :func:`libnet_mmdet.synth.generate_volume`; validated on construction.

    Lengths are in voxels unless the name says otherwise. Build one from a preset with :func:`preset_params`
    and change fields with ``dataclasses.replace`` (which validates again).

    Raises:
        ValueError: a field is out of range; the message names the field, the value and the accepted range.
    """

    # --- microstructure -----------------------------------------------------------------------------------
    mean_diameter_vox: float = _knob(24.0, 'mean of the log-normal particle diameter distribution (voxels)')
    diameter_cv: float = _knob(0.3, 'coefficient of variation (std / mean) of the particle diameters')
    min_diameter_vox: float = _knob(5.0, 'smallest particle diameter drawn (voxels); smaller draws are redrawn')
    solid_fraction: float = _knob(
        0.55, f'target volume fraction of the filled particles (voids included), in (0, {MAX_SOLID_FRACTION}]')
    overlap_tolerance: float = _knob(
        0.15, 'how far nominal spheres may interpenetrate, as a fraction of the sum of radii; the overlap is '
        'split along a flat contact facet (calendered contacts)')
    ellipticity: float = _knob(0.08, 'standard deviation of the log semi-axis ratios (0 = spheres)')
    roughness: float = _knob(0.04, 'relative amplitude of the low-frequency radial surface perturbation')
    hollow_fraction: float = _knob(
        0.15, 'fraction of particles (radius >= 4 voxels) with a hollow core, seen as rings in a slice')
    hollow_radius_range: tuple = _knob(
        (0.3, 0.55), 'range of the hollow-core radius relative to the particle radius (low high)')
    crack_fraction: float = _knob(0.15, 'fraction of particles (radius >= 4 voxels) with internal cracks')
    max_cracks: int = _knob(3, 'a cracked particle gets 1..max_cracks crack planes through its core')
    crack_width_vox: float = _knob(1.5, 'crack opening at the particle core (voxels); cracks taper outwards')
    porous_fraction: float = _knob(
        0.0, 'fraction of particles (radius >= 4 voxels) holding many small internal voids (cycled NMC811)')
    internal_void_fraction: float = _knob(
        0.1, 'void volume fraction inside a porous particle (about: overlapping voids merge, small particles hold '
        'less)')
    internal_void_diameter_vox: float = _knob(
        2.5, 'mean diameter of the internal voids of porous particles (voxels; drawn in 0.6-1.4 x this)')
    cb_coverage: float = _knob(0.45, 'fraction of the pore shell around particles filled by the carbon-binder coat')
    cb_thickness_vox: float = _knob(2.0, 'thickness of the carbon-binder coat on particle surfaces (voxels)')
    cb_bridge_radius_vox: float = _knob(
        3.0, 'carbon-binder fills necks between neighbours narrower than about twice this radius (0 = off)')
    cb_domain_fraction: float = _knob(
        0.0, 'fraction of the space between particles filled by bulk carbon-binder domains, blobs about half a '
        'particle diameter across wherever they fall (0 = off: carbon-binder only as coat and bridges)')
    # --- imaging --------------------------------------------------------------------------------------------
    voxel_size_nm: float = _knob(100.0, 'voxel edge length written to the TIFF metadata (nm)')
    attenuation_cb: float = _knob(0.2, 'carbon-binder attenuation relative to NMC (NMC = 1)')
    attenuation_pore: float = _knob(0.0, 'pore attenuation relative to NMC (NMC = 1)')
    particle_contrast_cv: float = _knob(0.03, 'particle-to-particle spread of the NMC attenuation (std / mean)')
    grain_contrast: float = _knob(
        0.05, 'std of the attenuation texture inside particles (primary grains), relative to NMC')
    grain_size_vox: float = _knob(3.0, 'size of the primary-grain texture inside particles (voxels)')
    sample_transmission: float = _knob(
        0.3, 'mean X-ray transmission through the slice; sets the absolute attenuation, hence the noise level')
    dose: float = _knob(2e4, 'flat-field photons per detector pixel and projection (Poisson noise)')
    angular_sampling: float = _knob(
        1.0, 'number of projections relative to the Nyquist count pi/2 x slice width (< 1 gives streaks)')
    ring_strength: float = _knob(0.003, 'std of the residual detector gain errors (relative), which make rings')
    ring_defect_fraction: float = _knob(
        0.002, 'fraction of detector pixels with a strong (10 x ring_strength) gain error')
    phase_contrast: float = _knob(
        0.8, 'strength of the propagation phase-contrast edge halo (0 = absorption only)')
    phase_sigma_vox: float = _knob(1.0, 'width of the phase-contrast fringe (voxels)')
    blur_sigma_vox: float = _knob(0.7, 'Gaussian blur of the projections, source and detector (voxels)')
    cupping: float = _knob(
        0.0, 'beam-hardening cupping: the reconstructed attenuation at the slice centre is lowered by this '
        'fraction, falling off parabolically to 0 at the slice corners')
    nonuniformity: float = _knob(
        0.0, 'amplitude of a smooth random gain field on the reconstruction (relative; the gain lies in '
        '1 +- this)')
    output_dtype: str = _knob('uint16', "image dtype: 'uint8', 'uint16' or 'float32'")

    def __post_init__(self):
        validate_params(self)


#: Largest accepted mean particle diameter (voxels), several times the widest scans (larger values overflowed the
#: particle boxes: a traceback, or a placement loop that never ended).
MAX_DIAMETER_VOX = 1e4


def validate_params(params):
    """Check every field of ``params`` (a :class:`SynthParams`); raise ``ValueError`` naming the first bad one."""
    def need(ok, name, expected):
        if not ok:
            raise ValueError(f'SynthParams.{name}={getattr(params, name)!r} is invalid: {expected}')

    def number(name, low=-math.inf, high=math.inf, low_open=False, high_open=False):
        value = getattr(params, name)
        need(is_number_in(value, low, high, low_open, high_open), name,
             f"expected a finite number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}")

    number('mean_diameter_vox', 0, MAX_DIAMETER_VOX, low_open=True)
    number('diameter_cv', 0, 2)
    number('min_diameter_vox', 0, params.mean_diameter_vox, low_open=True)
    number('solid_fraction', 0, MAX_SOLID_FRACTION, low_open=True)
    number('overlap_tolerance', 0, 0.4)
    number('ellipticity', 0, 0.5)
    number('roughness', 0, 0.3)
    for name in ('hollow_fraction', 'crack_fraction', 'porous_fraction', 'cb_coverage', 'cb_domain_fraction'):
        number(name, 0, 1)
    number('internal_void_fraction', 0, 0.5)
    number('internal_void_diameter_vox', 1, 20)
    lo_hi = params.hollow_radius_range
    need(isinstance(lo_hi, (tuple, list)) and len(lo_hi) == 2 and all(is_number_in(v) for v in lo_hi)
         and 0 < lo_hi[0] <= lo_hi[1] <= 0.7, 'hollow_radius_range',
         'expected two numbers (low, high) with 0 < low <= high <= 0.7')
    need(isinstance(params.max_cracks, numbers.Integral) and not isinstance(params.max_cracks, bool)
         and 1 <= params.max_cracks <= 8, 'max_cracks', 'expected an integer in [1, 8]')
    number('crack_width_vox', 0, 10, low_open=True)
    number('cb_thickness_vox', 0, 20)
    number('cb_bridge_radius_vox', 0, 20)
    number('voxel_size_nm', 0, 1e9, low_open=True)  # up to a metre: beyond, volumes in um^3 overflow
    number('attenuation_cb', 0, 10)
    number('attenuation_pore', 0, 10)
    number('particle_contrast_cv', 0, 0.15)  # the factor is clipped to [0.5, 1.5]: a wider spread would not be one
    number('grain_contrast', 0, 0.25)  # beyond, a share of NMC voxels (2 % at 0.5) attenuates less than pore
    number('grain_size_vox', 0.5, 50)
    number('sample_transmission', 0, 1, low_open=True, high_open=True)
    number('dose', 0, 1e12, low_open=True)
    number('angular_sampling', 0.05, 4)
    number('ring_strength', 0, 0.1)
    number('ring_defect_fraction', 0, 1)
    number('phase_contrast', 0, 10)
    number('phase_sigma_vox', 0.3, 10)
    number('blur_sigma_vox', 0, 10)
    number('cupping', 0, 0.9)
    number('nonuniformity', 0, 0.9)
    need(params.output_dtype in OUTPUT_DTYPES, 'output_dtype', f'expected one of {OUTPUT_DTYPES}')


#: Field overrides of each preset relative to the :class:`SynthParams` defaults (which are ``typical``).
PRESETS = {
    'clean': dict(solid_fraction=0.5, ellipticity=0.05, roughness=0.02, hollow_fraction=0.1, crack_fraction=0.1,
                  cb_coverage=0.35, particle_contrast_cv=0.0, grain_contrast=0.0, dose=1e6, ring_strength=0.0,
                  ring_defect_fraction=0.0, phase_contrast=0.0, blur_sigma_vox=0.5),
    'typical': dict(),
    'hard': dict(solid_fraction=0.6, overlap_tolerance=0.2, ellipticity=0.15, roughness=0.07, hollow_fraction=0.3,
                 hollow_radius_range=(0.35, 0.65), crack_fraction=0.3, cb_coverage=0.6, cb_bridge_radius_vox=4.0,
                 attenuation_cb=0.35, particle_contrast_cv=0.08, grain_contrast=0.1, sample_transmission=0.15,
                 dose=3e3, angular_sampling=0.5, ring_strength=0.008, ring_defect_fraction=0.005, phase_contrast=1.5,
                 blur_sigma_vox=1.1),
}


def check_seed(seed):
    """Return ``seed`` as an int; raise ``ValueError`` unless it is a non-negative integer."""
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f'seed={seed!r} is invalid: expected a non-negative integer')
    return int(seed)


def _check_fields(overrides):
    known = {f.name for f in dataclasses.fields(SynthParams)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f'unknown SynthParams field(s) {unknown}; known fields: {sorted(known)}')


def preset_params(name='typical', **overrides):
    """Parameters of a preset (``clean``, ``typical``, ``hard``) with some fields replaced.

    Args:
        name (str): preset name, a key of :data:`PRESETS`.
        **overrides: :class:`SynthParams` fields to change.

    Raises:
        ValueError: unknown preset, unknown field or invalid value.
    """
    if name not in PRESETS:
        raise ValueError(f'unknown preset {name!r}; expected one of {sorted(PRESETS)}')
    _check_fields(overrides)
    return SynthParams(**{**PRESETS[name], **overrides})


#: How :func:`random_params` draws each field for a randomised training corpus: ``field -> (kind, ...)`` with kind
#: ``'uniform'`` (``low, high``), ``'log-uniform'`` (``low, high``: uniform in log) or ``'choice'`` (a tuple of
#: values, equally likely). The ranges span lab and synchrotron nano-CT of NMC cathodes, from low-dose lab scans of
#: many small particles (10 voxels across) to synchrotron holotomography of a few large, cycled ones (60 voxels),
#: and contain the values of every preset; each field is drawn independently, in this order. Fields not listed
#: keep their :class:`SynthParams` default (``typical``).
RANDOM_RANGES = {
    # microstructure
    'mean_diameter_vox': ('log-uniform', 10.0, 60.0),
    'diameter_cv': ('uniform', 0.15, 0.5),
    'solid_fraction': ('uniform', 0.4, 0.62),
    'overlap_tolerance': ('uniform', 0.1, 0.25),
    'ellipticity': ('uniform', 0.0, 0.2),
    'roughness': ('uniform', 0.0, 0.1),
    'hollow_fraction': ('uniform', 0.0, 0.4),
    'crack_fraction': ('uniform', 0.0, 0.4),
    'crack_width_vox': ('uniform', 1.0, 2.5),
    'porous_fraction': ('uniform', 0.0, 0.5),
    'internal_void_fraction': ('uniform', 0.03, 0.2),
    'internal_void_diameter_vox': ('uniform', 1.5, 4.0),
    'cb_coverage': ('uniform', 0.2, 0.7),
    'cb_thickness_vox': ('uniform', 1.0, 4.0),
    'cb_bridge_radius_vox': ('uniform', 1.0, 5.0),
    # imaging
    'attenuation_cb': ('uniform', 0.05, 0.45),
    'particle_contrast_cv': ('uniform', 0.0, 0.1),
    'grain_contrast': ('uniform', 0.0, 0.15),
    'grain_size_vox': ('uniform', 1.5, 6.0),
    'sample_transmission': ('uniform', 0.1, 0.6),
    'dose': ('log-uniform', 1e3, 1e6),
    'angular_sampling': ('uniform', 0.35, 1.2),
    'ring_strength': ('uniform', 0.0, 0.01),
    'ring_defect_fraction': ('uniform', 0.0, 0.006),
    'phase_contrast': ('uniform', 0.0, 2.5),
    'phase_sigma_vox': ('uniform', 0.6, 2.0),
    'blur_sigma_vox': ('uniform', 0.3, 1.5),
    'cupping': ('uniform', 0.0, 0.25),
    'nonuniformity': ('uniform', 0.0, 0.2),
    'output_dtype': ('choice', OUTPUT_DTYPES),
    # drawn last, so that every field above draws what it drew before this one existed; none in 2 of 5 volumes,
    # up to 3/4 of the gaps (real cathodes: carbon-binder fills most of the space between particles, pores are
    # holes in it)
    'cb_domain_fraction': ('choice', (0.0, 0.0, 0.25, 0.5, 0.75)),
}


def _draw(rng, spec):
    kind, *args = spec
    if kind == 'uniform':
        return float(rng.uniform(*args))
    if kind == 'log-uniform':
        return float(np.exp(rng.uniform(np.log(args[0]), np.log(args[1]))))
    return args[0][int(rng.integers(len(args[0])))]  # 'choice'


def random_params(seed, **overrides):
    """Parameters drawn from :data:`RANDOM_RANGES`, reproducibly from ``seed``, with some fields fixed.

    Args:
        seed (int): non-negative seed of ``np.random.default_rng``; the same seed gives the same parameters.
        **overrides: :class:`SynthParams` fields to set instead of drawing them (they win over the draw; every
            field is still drawn, so the other fields do not depend on which ones are overridden).

    Returns:
        SynthParams: validated parameters.

    Raises:
        ValueError: invalid seed, unknown field or invalid value.
    """
    rng = np.random.default_rng(check_seed(seed))
    _check_fields(overrides)
    drawn = {name: _draw(rng, spec) for name, spec in RANDOM_RANGES.items()}
    return SynthParams(**{**drawn, **overrides})
