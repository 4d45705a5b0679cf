"""Particle statistics of a 3-D instance label volume: CSV table, summary and plots in one command.

Usage:
    python tools/analyze.py LABELS.tif [--phases PHASES.tif] [--image IMAGE.tif] [--phase-model DIR|auto|none]
                            [--device cpu] [--voxel-size-nm 50] [--depth-axis z] [--depth-from low]
                            [--exclude-border] [--min-voxels auto|N] --out DIR [--overwrite] [--debug]

LABELS.tif: (Z, Y, X) integer instance labels (0 = background). PHASES.tif: (Z, Y, X) phase volume (0 pore,
1 NMC, 2 carbon-binder) for the carbon-binder contact / detachment fractions and for damage. IMAGE.tif: the
grayscale volume; without --phases its phases are predicted by the phase model (``--phase-model``, default: the one
``make model`` builds in models/phases; xy/xz/yz slice probabilities summed) and written to DIR/phases.tif.
Without a phase model (not built, or ``--phase-model none``) the multi-Otsu three-phase segmentation of the image
is used instead, flagged approximate in every output (CSV column phase_source, summary, plot titles).
Each may also be an OME-Zarr or Zarr array (``labels.zarr``, as tools/segment.py writes it,
``x.zarr:/path``) or an HDF5 dataset (``stack.h5:/exchange/data``). The voxel size comes from the metadata of
LABELS (TIFF: ImageJ / OME / centimetre resolution tags; OME-Zarr: scale and axis units; HDF5: attributes
``voxel_size_nm`` or ``element_size_um``), else of --image or --phases, unless --voxel-size-nm is given (one value, or
three for Z Y X); inputs that record different voxel sizes are refused.

Writes to DIR: particles.csv (one row per particle), summary.json, summary.md, esd_histogram.png,
sphericity_vs_esd.png, detachment_vs_esd.png and detachment_vs_depth.png (with phase information), slices.png.
DIR must be new or empty; --overwrite empties the DIR of an earlier report first, so that one folder never mixes
the files of two runs. --exclude-border and --min-voxels leave particles out of the summary (the CSV and plots keep
all).
Definitions: ../shared/docs/METRICS.md and :func:`libnet_mmdet.analysis.particle_table`.
"""
import argparse
import os.path as osp
import sys

from libnet_mmdet.analysis import (PHASES_GIVEN, PHASES_MODEL, PHASES_MULTI_OTSU, check_phases, particle_table,
                                   phase_fit_sample, write_report)
from libnet_mmdet.apis import check_device, init_phase_model, predict_phases, resolve_phase_model
from libnet_mmdet.cli import (add_debug_arg, add_overwrite_arg, add_phase_model_arg, add_voxel_size_arg, auto_or,
                              check_memory, device_name, exit_on_error, report_memory_bytes)
from libnet_mmdet.io import (InputError, agreed_voxel_size, check_labels, check_min_voxels, check_output_dir,
                             check_outside_inputs, open_volume, read_whole_volume, voxel_size_zyx)

TOOL = osp.basename(__file__)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('labels', help='(Z, Y, X) instance labels: TIFF, .zarr, or stack.h5:/path')
    parser.add_argument('--phases', help='(Z, Y, X) phase volume: 0 pore, 1 NMC, 2 carbon-binder')
    parser.add_argument('--image', help='(Z, Y, X) grayscale volume: its phases come from the phase model when '
                        '--phases is absent (multi-Otsu without one)')
    add_phase_model_arg(parser)
    parser.add_argument('--device', default='cpu', type=device_name, help="phase model device: 'cpu' (default), "
                        "'cuda' or 'cuda:N'")
    add_voxel_size_arg(parser)
    parser.add_argument('--depth-axis', default='z', choices=['z', 'y', 'x'],
                        help='axis along which depth is measured (default z)')
    parser.add_argument('--depth-from', default='low', choices=['low', 'high'],
                        help='side of the depth axis holding the reference plane (default low = index 0)')
    parser.add_argument('--exclude-border', action='store_true',
                        help='leave particles touching the volume border out of the summary (kept in the CSV)')
    parser.add_argument('--min-voxels', type=auto_or(int), default=0, metavar='auto|N',
                        help='leave particles of fewer voxels out of the summary (kept in the CSV and plots): specks, '
                        'whose damage and contact fractions are those of a few voxels, as labels from a watershed or a '
                        'split of a phase volume hold; auto: a sphere a third of the particles\' median equivalent '
                        'diameter across (default 0: keep all; tools/segment.py\'s labels have none by default)')
    parser.add_argument('--out', required=True,
                        help='output folder: new, or a report folder of an earlier run emptied with --overwrite')
    add_overwrite_arg(parser, help='empty the --out folder of an earlier report first')
    add_debug_arg(parser)
    return parser.parse_args(argv)


def run(args):
    """Check the arguments, read the inputs, compute the table and write the report; returns the summary dict."""
    voxel_size_nm = None if args.voxel_size_nm is None else voxel_size_zyx(args.voxel_size_nm, '--voxel-size-nm')
    check_min_voxels(args.min_voxels, '--min-voxels')
    check_output_dir(args.out, args.overwrite, inputs=(args.labels, args.phases, args.image))
    check_outside_inputs(args.out, (args.labels, args.phases, args.image))
    predicts = args.image and not args.phases  # the phases come from the image
    unused = [flag for flag, given in (('--phase-model', args.phase_model not in ('auto', 'none')),
                                       ('--device', args.device != 'cpu')) if given]
    if unused and not args.image and not args.phases:
        raise InputError(f"{' and '.join(unused)}: for the phase model on --image, and no --image is given; leave "
                         f"{'them' if len(unused) > 1 else 'it'} out")
    if unused and args.phases:  # given phases come first (a phase model may be named by habit or a script)
        print(f"note: {' and '.join(unused)} not used: the phases come from --phases", file=sys.stderr)
    phase_files = resolve_phase_model(args.phase_model) if predicts else None
    if phase_files:
        check_output_dir(args.out, args.overwrite, inputs=phase_files)  # a model kept in an earlier report folder
        check_device(args.device)
    elif predicts and args.device != 'cpu':  # multi-Otsu: nothing runs on the device
        print(f'note: --device {args.device} not used: no phase model, the phases come from multi-Otsu',
              file=sys.stderr)
    with open_volume(args.labels) as labels_reader:  # headers only: refuse now what reading would find wrong
        shape, dtypes = labels_reader.shape, [labels_reader.dtype]
        recorded = {args.labels: labels_reader.voxel_size_nm}
    for path in (args.image, args.phases):
        if path:
            with open_volume(path) as reader:
                if reader.shape != shape:
                    raise ValueError(f'{path}: shape {reader.shape} does not match {args.labels} shape {shape}')
                dtypes.append(reader.dtype)  # the phases too: read in the file's dtype before their uint8 copy
                recorded[path] = reader.voxel_size_nm
    if voxel_size_nm is None:
        voxel_size_nm = agreed_voxel_size(recorded)  # the labels', else another input's; differing ones refused
    if voxel_size_nm is None:
        raise ValueError(f'{args.labels}: no voxel size in its metadata; pass --voxel-size-nm')
    check_memory(report_memory_bytes(shape, dtypes, bool(phase_files)), f'{args.labels} {shape}',
                 'run it where there is more memory' + (', or with --phase-model none (approximate phases)'
                                                        if phase_files else ''))
    labels_zyx, _ = read_whole_volume(args.labels)
    check_labels(labels_zyx, args.labels)
    phases_zyx = image_zyx = None
    if args.phases:
        phases_zyx, _ = read_whole_volume(args.phases)
        check_phases(phases_zyx, labels_zyx.shape, name=args.phases, reference_name=args.labels)
    if args.image:
        image_zyx, _ = read_whole_volume(args.image)
        if not args.phases and not phase_files:
            phase_fit_sample(image_zyx, args.image)  # multi-Otsu's checks, naming the file
    phase_source = PHASES_GIVEN
    if phase_files:
        print(f'phases: the phase model in {osp.dirname(phase_files[0])}', file=sys.stderr)
        phases_zyx = predict_phases(init_phase_model(*phase_files, device=args.device), image_zyx, progress=True,
                                    voxel_size_nm=voxel_size_nm)[0]
        phase_source = PHASES_MODEL
    df = particle_table(labels_zyx, phases_zyx=phases_zyx, image_zyx=image_zyx, voxel_size_nm=voxel_size_nm,
                        depth_axis=args.depth_axis, depth_from=args.depth_from, phase_source=phase_source)
    return write_report(df, args.out, labels_zyx=labels_zyx, image_zyx=image_zyx, phases_zyx=phases_zyx,
                        exclude_border=args.exclude_border, min_voxels=args.min_voxels, overwrite=args.overwrite)


def main(argv=None):
    args = parse_args(argv)
    with exit_on_error(TOOL, args.debug, interrupted=f'{args.out} is as it was (written whole or not at'
                       ' all); run the same command again'):
        summary = run(args)

    def fmt(value):
        return 'n/a' if value is None else f'{value:.3f}'

    esd = summary['esd_um']
    print(f"{summary['n_particles']} particles ({summary['n_touching_border']} touching the border); "
          f"ESD D10/D50/D90 = {fmt(esd['d10'])} / {fmt(esd['d50'])} / {fmt(esd['d90'])} µm; "
          f"mean sphericity {fmt(summary['mean_sphericity'])}; mean detachment {fmt(summary['mean_detachment'])}")
    if summary['note']:
        print(f"note: {summary['note']}")
    if summary['phase_source'] == PHASES_MULTI_OTSU and args.phase_model == 'auto':
        print('note: no phase model is built (models/phases): `make model` builds one')
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
