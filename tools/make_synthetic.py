"""Generate a synthetic NMC nano-CT volume with exact 3D ground truth and 2D training exports.

Usage:
    python tools/make_synthetic.py --out DIR [--shape Z Y X] [--preset {clean,typical,hard}] [--seed N]
                                   [--export-axes z [y x]] [--export-every K] [--keep-empty] [--min-area PX]
                                   [--no-coco] [--no-via] [--overwrite] [--KNOB VALUE ...]

Every field of ``libnet_mmdet.synth.SynthParams`` is an option (``--mean-diameter-vox 20``, ``--dose 5000``,
``--ring-strength 0.01`` ...; see ``--help``); the preset gives the defaults, options override them.
Short aliases: ``--mean-diameter``, ``--dtype``.

Example:
    python tools/make_synthetic.py --shape 64 256 256 --preset typical --seed 1 --export-axes z y x \
        --export-every 2 --out data/synth/typical_s1

Writes image.tif, labels.tif, phases.tif, particles.csv, params.json, coco/annotations.json + coco/images/,
via/via_region_data.json into DIR (see README, section "Synthetic data").
"""
import argparse
import dataclasses
import sys
import time

from libnet_mmdet.synth import OUTPUT_DTYPES, PRESETS, SynthParams, generate_volume, preset_params, write_dataset

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
    parser.add_argument('--export-every', type=int, default=1, help='export every k-th slice')
    parser.add_argument('--keep-empty', action='store_true', help='also export slices without particles')
    parser.add_argument('--min-area', type=int, default=0, help='do not annotate slice sections below this (px)')
    parser.add_argument('--no-coco', action='store_true', help='do not write coco/annotations.json')
    parser.add_argument('--no-via', action='store_true', help='do not write via/via_region_data.json')
    parser.add_argument('--overwrite', action='store_true', help='write into a non-empty output folder')
    knobs = parser.add_argument_group('generator parameters (default: the preset value)')
    for knob in dataclasses.fields(SynthParams):
        _add_knob(knobs, knob)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {knob.name: getattr(args, knob.name) for knob in dataclasses.fields(SynthParams)
                 if getattr(args, knob.name) is not None}
    overrides = {name: tuple(value) if isinstance(value, list) else value for name, value in overrides.items()}
    start = time.perf_counter()
    try:
        params = preset_params(args.preset, **overrides)
        volume = generate_volume(tuple(args.shape), params, seed=args.seed)
        written = write_dataset(args.out, volume, axes=args.export_axes, every=args.export_every,
                                skip_empty=not args.keep_empty, min_area_px=args.min_area, coco=not args.no_coco,
                                via=not args.no_via, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as exc:
        parser.exit(2, f'{parser.prog}: error: {exc}\n')
    summary = volume.summary
    print(f"{summary['n_particles']} particles, particle fraction {summary['particle_fraction']:.3f}, "
          f"phases {summary['phase_fractions']}, {time.perf_counter() - start:.1f} s")
    for name, path in written.items():
        print(f'  {name}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
