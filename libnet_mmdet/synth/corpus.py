"""A randomised synthetic training corpus: N volumes, each with its own parameters drawn from ``RANDOM_RANGES``.

Folder layout written by :func:`write_corpus` (read for training by ``LabelTiffDataset(data_root=OUT,
data_prefix=dict(img='images/', label='labels/'), slice_axes='zyx')``)::

    images/vol_000.tif      (Z, Y, X) reconstruction, uint8 / uint16 / float32 (the volume's ``output_dtype``)
    labels/vol_000.tif      (Z, Y, X) filled-particle instance ids
    phases/vol_000.tif      (Z, Y, X) phases: 0 pore, 1 NMC, 2 carbon-binder
    particles/vol_000.csv   ground-truth table (:data:`~libnet_mmdet.synth.groundtruth.GROUND_TRUTH_COLUMNS`)
    corpus.json             the settings and one record per finished volume (name, seed, shape_zyx, params, summary)

Volume ``i`` uses seed ``seed + i`` both to draw its parameters and to generate it, so any volume can be made again
alone: ``p = random_params(seed + i, **overrides); generate_volume(corpus_shape(p), p, seed=seed + i)``.
"""
import dataclasses
import json
import numbers
import os
import os.path as osp
import time

import numpy as np

from ..io import InputError, as_json, check_output_dir, prepare_output_dir, write_json, write_tiff
from ..version import __version__
from .export import write_particles_csv
from .generate import SYNTH_ALGORITHM_VERSION, check_shape, generate_volume
from .params import RANDOM_RANGES, check_seed, random_params

CORPUS_FILE = 'corpus.json'
#: Sub-folder and file extension of each per-volume file, keyed by its name in a volume record's files.
VOLUME_FILES = {'images': 'tif', 'labels': 'tif', 'phases': 'tif', 'particles': 'csv'}
_SLICE_SIDE_PER_DIAMETER = 8  # a z-slice is about 8 mean diameters wide: ~50 particle sections, each fully seen
_SLICE_SIDE_RANGE = (128, 256)  # ... within these bounds (multiples of 16), so a volume takes seconds, not minutes
_DEPTH_PER_DIAMETER = 1.5  # the volume is 1.5 diameters deep: y/x slices cross whole particles
_DEPTH_RANGE = (32, 64)  # ... at least 32 slices (the training filter drops thinner y/x slices), at most 64
#: The largest (Z, Y, X) :func:`corpus_shape` gives.
MAX_CORPUS_SHAPE = (_DEPTH_RANGE[1], _SLICE_SIDE_RANGE[1], _SLICE_SIDE_RANGE[1])


def corpus_shape(params):
    """(Z, Y, X) size of a corpus volume for ``params``: big enough for its mean particle diameter d, yet cheap.

    Y = X = 8 d rounded to a multiple of 16 and clipped to [128, 256]; Z = 1.5 d rounded, clipped to [32, 64].
    Over d = 10..60 voxels a z-slice holds about 13 (d = 10), 8 (d = 32) to 4 (d = 60) diameters across, the depth
    is 1.5 d up to d = 43 and about one diameter at d = 60, and a volume takes 4 MVoxel at most. Training rescales
    every slice (``RandomParticleScale``), so the large-particle volumes' few sections per slice are enough.

    Args:
        params (SynthParams): the volume's parameters (``mean_diameter_vox`` is used).

    Returns:
        tuple[int, int, int]: (Z, Y, X) in voxels.
    """
    diameter = params.mean_diameter_vox
    side = int(np.clip(16 * round(_SLICE_SIDE_PER_DIAMETER * diameter / 16), *_SLICE_SIDE_RANGE))
    depth = int(np.clip(round(_DEPTH_PER_DIAMETER * diameter), *_DEPTH_RANGE))
    return depth, side, side


def corpus_params(count, seed=0, **overrides):
    """The :class:`SynthParams` of every volume of a corpus: ``random_params(seed + i, **overrides)``.

    Raises:
        ValueError: an override that does not fit volume ``i``'s draw, naming the volume and its seed (a minimum
            diameter above one volume's drawn mean, ...).
    """
    all_params = []
    for index in range(count):
        try:
            all_params.append(random_params(seed + index, **overrides))
        except ValueError as exc:
            raise ValueError(f'{volume_name(index, count)} (seed {seed + index}): {exc}') from exc
    return all_params


def volume_name(index, count):
    """File stem of volume ``index`` of a corpus of ``count``: ``vol_000`` (at least 3 digits)."""
    return f'vol_{index:0{max(3, len(str(count - 1)))}d}'


def volume_paths(out_dir, name):
    """Paths of the files of volume ``name``, keyed as :data:`VOLUME_FILES`."""
    return {folder: osp.join(out_dir, folder, f'{name}.{ext}') for folder, ext in VOLUME_FILES.items()}


def _read_corpus(path):
    """The dict in ``path``, or None when it is missing or no JSON object."""
    try:
        with open(path, encoding='utf-8') as stream:
            corpus = json.load(stream)
    except (OSError, ValueError):
        return None
    return corpus if isinstance(corpus, dict) else None


def _is_complete(out_dir, record):
    """True when ``record`` (an entry of ``corpus.json``'s volumes) names a volume whose files all exist."""
    return (isinstance(record, dict) and isinstance(record.get('name'), str)
            and all(osp.isfile(path) for path in volume_paths(out_dir, record['name']).values()))


def _check_count(count):
    if not isinstance(count, numbers.Integral) or isinstance(count, bool) or count < 1:
        raise ValueError(f'count={count!r} is invalid: expected an integer >= 1')
    return int(count)


def check_corpus_args(count, seed=0, shape_zyx=None):
    """``(count, seed, shape_zyx)`` of :func:`write_corpus` checked, so that a tool can refuse them before doing
    anything else.

    Raises:
        ValueError: a count below 1, a negative seed, a shape that is not three sizes (Y, X >= 8).
    """
    return _check_count(count), check_seed(seed), None if shape_zyx is None else check_shape(shape_zyx)


def check_corpus_dir(out_dir, count, seed=0, shape_zyx=None, overwrite=False, **overrides):
    """Check, without writing anything, that :func:`write_corpus` can make this corpus in ``out_dir`` (same
    arguments): so that a tool refuses a folder before it starts other work.

    Returns:
        tuple: ``(settings, kept)``: the corpus settings (the keys :func:`write_corpus` records) and the records of
        the volumes an earlier run of the same settings finished there (None when there is no such corpus: the
        folder is new, empty, or emptied with ``overwrite``).

    Raises:
        ValueError: invalid count, seed, shape or override.
        InputError: ``out_dir`` holds a corpus of other settings, or other files, and ``overwrite`` is not set (or
            they are not ours to empty).
    """
    count, seed, shape_zyx = check_corpus_args(count, seed, shape_zyx)
    corpus_params(count, seed, **overrides)  # the overrides checked against every volume's draw
    out_dir = os.fspath(out_dir)
    settings = as_json({'generator': 'libnet_mmdet.synth.write_corpus', 'algorithm_version': SYNTH_ALGORITHM_VERSION,
                         'count': count, 'seed': seed, 'shape_zyx': shape_zyx, 'overrides': overrides,
                         'random_ranges': RANDOM_RANGES})
    corpus_path = osp.join(out_dir, CORPUS_FILE)
    corpus = _read_corpus(corpus_path)
    if corpus is not None and {key: corpus.get(key) for key in settings} == settings:
        return settings, [record for record in corpus.get('volumes', []) if _is_complete(out_dir, record)]
    if corpus is not None and not overwrite:
        differ = [key for key in settings if corpus.get(key) != settings[key]]
        raise InputError(f'{corpus_path}: holds a corpus made with other settings ({", ".join(differ)}); pass '
                         f'--overwrite (overwrite=True) to replace it, or choose another folder')
    check_output_dir(out_dir, overwrite)
    return settings, None


def write_corpus(out_dir, count, seed=0, shape_zyx=None, overwrite=False, progress=True, **overrides):
    """Generate ``count`` synthetic volumes with random parameters and write them as a training corpus.

    Volume ``i`` is named :func:`volume_name` ``(i, count)``; its parameters are ``random_params(seed + i,
    **overrides)``, its shape ``shape_zyx`` or :func:`corpus_shape` of them, its generator seed ``seed + i``.
    Files are written atomically, and ``corpus.json`` again after each volume, so the run can be stopped at any
    time: run again with the same arguments and the volumes already listed in ``corpus.json`` (files present) are
    kept, the others made. A folder holding a corpus of other settings (seed, count, shape, overrides, ranges or
    algorithm version) or other files is refused unless ``overwrite``, which empties it first when it is an output
    folder of ours (:func:`libnet_mmdet.io.prepare_output_dir`); a corpus of the same settings is always resumed.

    Args:
        out_dir (str | os.PathLike): corpus folder (layout in the module docstring); created if missing.
        count (int): number of volumes, >= 1.
        seed (int): seed of the first volume, >= 0.
        shape_zyx (tuple[int, int, int], optional): one (Z, Y, X) size for every volume instead of
            :func:`corpus_shape` (small corpora for tests).
        overwrite (bool): replace a folder of an earlier run with other settings.
        progress (bool): print one line per volume to stdout.
        **overrides: :class:`~libnet_mmdet.synth.SynthParams` fields fixed for every volume instead of drawn.

    Returns:
        dict: the content of ``corpus.json``: ``generator``, ``algorithm_version``, ``count``, ``seed``,
        ``shape_zyx``, ``overrides``, ``random_ranges``, ``libnet_mmdet_version`` and ``volumes`` (one record per
        volume, in order: ``name``, ``seed``, ``shape_zyx``, ``params``, ``summary``).

    Raises:
        ValueError: invalid count, seed, shape or override (before anything is written).
        InputError: ``out_dir`` cannot be used without ``overwrite``.
    """
    count, seed, shape_zyx = check_corpus_args(count, seed, shape_zyx)
    settings, kept = check_corpus_dir(out_dir, count, seed, shape_zyx, overwrite, **overrides)
    all_params = corpus_params(count, seed, **overrides)
    out_dir = os.fspath(out_dir)
    corpus_path = osp.join(out_dir, CORPUS_FILE)
    if kept is None:
        prepare_output_dir(out_dir, overwrite)
        kept = []
    records = {record['name']: record for record in kept}
    corpus = {**settings, 'libnet_mmdet_version': __version__, 'volumes': list(records.values())}
    write_json(corpus_path, corpus, indent=1)  # a run stopped during the first volume resumes too
    for index, params in enumerate(all_params):
        name = volume_name(index, count)
        if name in records:
            if progress:
                print(f'{name}: made earlier, kept', flush=True)
            continue
        start = time.perf_counter()
        shape = shape_zyx or corpus_shape(params)
        volume = generate_volume(shape, params, seed=seed + index)
        paths = volume_paths(out_dir, name)
        for folder, array in (('images', volume.image_zyx), ('labels', volume.labels_zyx),
                              ('phases', volume.phases_zyx)):
            write_tiff(paths[folder], array, params.voxel_size_nm, overwrite=True)  # a stopped run's part
        write_particles_csv(paths['particles'], volume.particles)
        records[name] = as_json({'name': name, 'seed': seed + index, 'shape_zyx': shape,
                                  'params': dataclasses.asdict(params), 'summary': volume.summary})
        corpus['volumes'] = [records[key] for key in sorted(records)]
        write_json(corpus_path, corpus, indent=1)
        if progress:
            print(f"{name}: seed {seed + index}, shape {'x'.join(map(str, shape))}, mean diameter "
                  f"{params.mean_diameter_vox:.1f} vox, {volume.summary['n_particles']} particles, "
                  f'{params.output_dtype}, {time.perf_counter() - start:.1f} s', flush=True)
    return corpus
