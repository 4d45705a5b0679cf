"""Generate a synthetic NMC nano-CT volume with exact 3D ground truth and 2D training exports, or a randomised
training corpus of many volumes.

Usage:
    python tools/make_synthetic.py --out DIR [--shape Z Y X] [--preset {clean,typical,hard}] [--seed N]
                                   [--export-axes z [y x]] [--export-every K] [--keep-empty] [--min-area PX]
                                   [--no-coco] [--no-via] [--overwrite] [--debug] [--KNOB VALUE ...]
    python tools/make_synthetic.py --out DIR --preset random --count N [--seed N] [--shape Z Y X] [--overwrite]
                                   [--debug] [--KNOB VALUE ...]

Every field of ``libnet_mmdet.synth.SynthParams`` is an option (``--mean-diameter-vox 20``, ``--dose 5000``,
``--ring-strength 0.01`` ...; see ``--help``); the preset gives the defaults, options override them.
Short aliases: ``--mean-diameter``, ``--dtype``.

Example:
    python tools/make_synthetic.py --shape 64 256 256 --preset typical --seed 1 --export-axes z y x \
        --export-every 2 --out data/synth/typical_s1

Writes image.tif, labels.tif, phases.tif, particles.csv, params.json, coco/annotations.json + coco/images/,
via/via_region_data.json into DIR (see README, section "Synthetic data"). DIR must be new or empty; --overwrite
empties a DIR of an earlier run first. Every argument is checked, and the memory the volume needs, before
anything is generated or written.

--preset random --count N writes N volumes (default 1) with ``libnet_mmdet.synth.write_corpus``: volume i draws its
parameters from ``RANDOM_RANGES`` with seed --seed + i and is generated with that seed; its size follows its mean
particle diameter (``corpus_shape``: 32-64 x 128-256 x 128-256) unless --shape fixes one size for all; knob options
fix that field in every volume. DIR gets images/, labels/, phases/ (vol_000.tif ...), particles/ (vol_000.csv ...)
and corpus.json (seeds and parameters of every volume). The run is resumable: the same command again keeps the
finished volumes and makes the rest; DIR holding anything else (another seed, count, shape or knob) is refused
unless --overwrite. The slice-export options do not apply (training reads the stacks with LabelTiffDataset).

Example:
    python tools/make_synthetic.py --preset random --count 200 --seed 0 --out data/corpus
"""
import argparse
import dataclasses
import os.path as osp
import sys
import time

import numpy as np

from libnet_mmdet.cli import add_debug_arg, add_overwrite_arg, check_memory, exit_on_error, positive_int
from libnet_mmdet.io import InputError, check_int, check_output_dir, check_slicing
from libnet_mmdet.synth import (MAX_CORPUS_SHAPE, OUTPUT_DTYPES, PRESETS, SynthParams, generate_volume, preset_params,
                                write_corpus, write_dataset)

TOOL = osp.basename(__file__)
# What generate_volume holds at once per voxel, at the least, while it simulates the imaging: the labels (uint16),
# the phases (uint8) and three float32 volumes (attenuation, reconstruction, one back-projected chunk of angles).
# A lower bound (the measured peak is 50-250 bytes per voxel), so that only a run that cannot fit is refused.
MIN_BYTES_PER_VOXEL = 2 + 1 + 3 * 4

_ALIASES = {'mean_diameter_vox': ['--mean-diameter'], 'output_dtype': ['--dtype']}
DEFAULT_SHAPE = (64, 256, 256)
# Options of one volume's slice export: (dest, default); a random corpus refuses them when given.
_EXPORT_OPTIONS = (('export_axes', ['z']), ('export_every', 1), ('keep_empty', False), ('min_area', 0),
                   ('no_coco', False), ('no_via', False))


def _add_knob(group, knob):
    options = [f"--{knob.name.replace('_', '-')}"] + _ALIASES.get(knob.name, [])
    kwargs = dict(dest=knob.name, default=None, metavar='V',
                  help=f"{knob.metadata['help']} (typical: {knob.default})")
    if isinstance(knob.default, tuple):
        kwargs.update(nargs=len(knob.default), type=type(knob.default[0]), metavar=('LOW', 'HIGH'))
    elif knob.name == 'output_dtype':
        kwargs.update(choices=OUTPUT_DTYPES)
    else:
        kwargs.update(type=type(knob.default))
    group.add_argument(*options, **kwargs)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--shape', nargs=3, type=int, metavar=('Z', 'Y', 'X'),
                        help='volume size in voxels (default: 64 256 256; with --preset random: each volume\'s '
                        'own size from its particle diameter, or this size for all)')
    parser.add_argument('--preset', choices=sorted(PRESETS) + ['random'], default='typical',
                        help='parameter preset (default: typical); random: a corpus of --count volumes with '
                        'parameters drawn from libnet_mmdet.synth.RANDOM_RANGES')
    parser.add_argument('--count', type=positive_int,
                        help='number of volumes of a --preset random corpus (default: 1)')
    parser.add_argument('--seed', type=int, default=0, help='random seed; same seed -> identical files (default: 0); '
                        'with --preset random the seed of the first volume (volume i uses seed + i)')
    parser.add_argument('--export-axes', nargs='+', choices=['z', 'y', 'x'], default=['z'],
                        help='volume axes to cut 2D training slices along (default: z)')
    parser.add_argument('--export-every', type=positive_int, default=1, help='export every k-th slice')
    parser.add_argument('--keep-empty', action='store_true', help='also export slices without particles')
    parser.add_argument('--min-area', type=int, default=0, help='do not annotate slice sections below this (px)')
    parser.add_argument('--no-coco', action='store_true', help='do not write coco/annotations.json')
    parser.add_argument('--no-via', action='store_true', help='do not write via/via_region_data.json')
    add_overwrite_arg(parser, help='empty the output folder of an earlier run first')
    add_debug_arg(parser)
    knobs = parser.add_argument_group('generator parameters (default: the preset value)')
    for knob in dataclasses.fields(SynthParams):
        _add_knob(knobs, knob)
    return parser


def _overrides(args):
    """The knob options given, as :class:`SynthParams` fields (lists as tuples)."""
    overrides = {knob.name: getattr(args, knob.name) for knob in dataclasses.fields(SynthParams)
                 if getattr(args, knob.name) is not None}
    return {name: tuple(value) if isinstance(value, list) else value for name, value in overrides.items()}


def _check_memory(shape, what=None):
    check_memory(int(np.prod(shape, dtype=np.float64)) * MIN_BYTES_PER_VOXEL,
                 what or f"--shape {' '.join(map(str, shape))}")


def run(args):
    """Check every argument, the output folder and the memory, then generate and write; returns
    ``(volume, written)``."""
    if args.count is not None:
        raise InputError(f'--count {args.count}: a named preset makes one volume; use --preset random for a corpus '
                         'of several volumes')
    params = preset_params(args.preset, **_overrides(args))
    check_slicing(args.export_axes, args.export_every, names=('--export-axes', '--export-every'))
    check_int(args.min_area, '--min-area', 0)
    shape = tuple(args.shape or DEFAULT_SHAPE)
    _check_memory(shape)
    check_output_dir(args.out, args.overwrite)
    volume = generate_volume(shape, params, seed=args.seed)
    written = write_dataset(args.out, volume, axes=args.export_axes, every=args.export_every,
                            skip_empty=not args.keep_empty, min_area_px=args.min_area, coco=not args.no_coco,
                            via=not args.no_via, overwrite=args.overwrite)  # it empties OUT (checked above) first
    return volume, written


def run_corpus(args):
    """``--preset random``: check the arguments and the memory, then write (or resume) the corpus; returns its
    ``corpus.json`` content."""
    given = [name for name, default in _EXPORT_OPTIONS if getattr(args, name) != default]
    if given:
        raise InputError(f"--{given[0].replace('_', '-')}: slice-export options do not apply to --preset random "
                         '(training reads the corpus stacks with LabelTiffDataset)')
    if args.shape:
        _check_memory(args.shape)
    else:
        _check_memory(MAX_CORPUS_SHAPE, f"--preset random (volumes up to {' x '.join(map(str, MAX_CORPUS_SHAPE))})")
    return write_corpus(args.out, args.count or 1, seed=args.seed, shape_zyx=args.shape and tuple(args.shape),
                        overwrite=args.overwrite, **_overrides(args))


def main(argv=None):
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    if args.preset == 'random':
        with exit_on_error(TOOL, args.debug, interrupted=f'{args.out} keeps the finished volumes; run the same '
                           'command again to make the rest'):
            corpus = run_corpus(args)
        print(f"{len(corpus['volumes'])} volumes in {args.out} ({osp.join(args.out, 'corpus.json')}), "
              f'{time.perf_counter() - start:.1f} s')
        return 0
    with exit_on_error(TOOL, args.debug, interrupted=f'{args.out} is as it was (written whole or not at'
                       ' all); run the same command again'):
        volume, written = run(args)
    summary = volume.summary
    print(f"{summary['n_particles']} particles, particle fraction {summary['particle_fraction']:.3f}, "
          f"phases {summary['phase_fractions']}, {time.perf_counter() - start:.1f} s")
    for name, path in written.items():
        print(f'  {name}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
