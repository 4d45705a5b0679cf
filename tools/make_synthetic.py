"""Generate a synthetic NMC nano-CT volume with exact 3D ground truth and 2D training exports.

Usage:
    python tools/make_synthetic.py --out DIR [--shape Z Y X] [--preset {clean,typical,hard}] [--seed N]
                                   [--export-axes z [y x]] [--export-every K] [--keep-empty] [--min-area PX]
                                   [--no-coco] [--no-via] [--overwrite] [--debug] [--KNOB VALUE ...]

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
"""
import argparse
import dataclasses
import os.path as osp
import sys
import time

import numpy as np

from libnet_mmdet.cli import add_debug_arg, add_overwrite_arg, check_memory, exit_on_error, positive_int
from libnet_mmdet.io import check_output_dir, prepare_output_dir
from libnet_mmdet.synth import OUTPUT_DTYPES, PRESETS, SynthParams, generate_volume, preset_params, write_dataset

TOOL = osp.basename(__file__)
# What generate_volume holds at once per voxel, at the least, while it simulates the imaging: the labels (uint16),
# the phases (uint8) and three float32 volumes (attenuation, reconstruction, one back-projected chunk of angles).
# A lower bound (the measured peak is 50-250 bytes per voxel), so that only a run that cannot fit is refused.
MIN_BYTES_PER_VOXEL = 2 + 1 + 3 * 4

_ALIASES = {'mean_diameter_vox': ['--mean-diameter'], 'output_dtype': ['--dtype']}


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
    parser.add_argument('--shape', nargs=3, type=int, default=[64, 256, 256], metavar=('Z', 'Y', 'X'),
                        help='volume size in voxels (default: 64 256 256)')
    parser.add_argument('--preset', choices=sorted(PRESETS), default='typical',
                        help='parameter preset (default: typical)')
    parser.add_argument('--seed', type=int, default=0, help='random seed; same seed -> identical files (default: 0)')
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


def run(args):
    """Check every argument, the output folder and the memory, then generate and write; returns
    ``(volume, written)``."""
    overrides = {knob.name: getattr(args, knob.name) for knob in dataclasses.fields(SynthParams)
                 if getattr(args, knob.name) is not None}
    overrides = {name: tuple(value) if isinstance(value, list) else value for name, value in overrides.items()}
    params = preset_params(args.preset, **overrides)
    check_memory(int(np.prod(args.shape, dtype=np.float64)) * MIN_BYTES_PER_VOXEL,
                 f"--shape {' '.join(map(str, args.shape))}")
    check_output_dir(args.out, args.overwrite)
    volume = generate_volume(tuple(args.shape), params, seed=args.seed)
    prepare_output_dir(args.out, args.overwrite)
    written = write_dataset(args.out, volume, axes=args.export_axes, every=args.export_every,
                            skip_empty=not args.keep_empty, min_area_px=args.min_area, coco=not args.no_coco,
                            via=not args.no_via, overwrite=True)  # the folder is ours and new, or emptied above
    return volume, written


def main(argv=None):
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    with exit_on_error(TOOL, args.debug, interrupted=f'{args.out} may hold part of a dataset; run the same command '
                       'again with --overwrite'):
        volume, written = run(args)
    summary = volume.summary
    print(f"{summary['n_particles']} particles, particle fraction {summary['particle_fraction']:.3f}, "
          f"phases {summary['phase_fractions']}, {time.perf_counter() - start:.1f} s")
    for name, path in written.items():
        print(f'  {name}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
