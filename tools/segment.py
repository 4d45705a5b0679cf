"""Segment a tomography volume into 3D particle instance labels (or one 2D image into 2D ones) with a trained model.

Usage:
    python tools/segment.py INPUT --out labels.tif|labels.zarr [--config CONFIG --checkpoint CHECKPOINT]
        [--device cpu|cuda:0] [--views auto | xy [xz yz]] [--overlays DIR [--overlay-step N]] [--report DIR]
        [--min-voxels auto|N] [--smooth auto|SIGMA] [--score-thr T] [--voxel-size-nm S | SZ SY SX] [--slab N]
        [--tile-size N|auto|none]
        [--overlap N] [--scale auto | F [F ...]] [--batch-size N] [--proposals auto|config] [--amp] [--work-dir DIR]
        [--no-resume] [--keep-work]
        [--overwrite] [--cfg-options k=v ...] [--launcher none|pytorch|slurm] [--debug]

The model: ``--config`` and ``--checkpoint``, or by default the generalist that ``make model`` builds in
``models/generalist/`` (trained on every particle size from 12 to 48 px). ``--scale`` resizes what the model sees
so that the particles have the sizes it was trained for: ``auto`` (the default for models that record their
trained particle diameters, such as the generalist; otherwise 1) estimates it from a coarse first pass on three
slices of the volume (the median diameter of confident detections; a second, finer scale when many particles are
far smaller than that) and prints it; a number sets it (the model's particle diameter / yours); several numbers
segment at each scale and merge, for slices mixing very different sizes.
``--min-voxels auto`` (the default for the same models; otherwise 0) merges pieces smaller than a sphere a third of
that typical diameter across into the particle they touch, and prints the number. ``--smooth auto`` (default)
rounds each fused particle's mask last (a Gaussian of sigma 0.75 voxels, majority; linked particles: none);
``--smooth SIGMA`` sets the sigma in voxels for either, 0 turns it off.

INPUT is a (Z, Y, X) volume (uint8/uint16/float32): a TIFF stack, a folder of 2D slices (sorted by name), an HDF5
dataset (``stack.h5:/exchange/data``; the file alone when it holds one 3D dataset) or a Zarr array / OME-Zarr
image (``stack.zarr``, ``stack.zarr:/path`` for one inside a group), read slab by slab. ``--views auto``
(default) segments all three views (xy, xz, yz) and fuses them, the most accurate (BENCHMARKS.md), when the volume
allows it (xz/yz slices of at least 32 px, voxels isotropic within 10 % when their size is known), else xy slices
linked into 3D particles, and prints which; ``--views xy`` links xy slices (three to four times faster),
``--views xy xz yz`` always fuses. The output is an instance-label
volume (0 = background, 1..N particles; uint16, or uint32 above 65535 particles) with the voxel size, by the
extension of --out: a TIFF (``.tif``/``.tiff``, voxel size in its ImageJ metadata) or an OME-Zarr label image
(``.zarr``: multiscale, what napari and Fiji open). The voxel size defaults to the one the input records (TIFF
metadata, OME-Zarr scale, HDF5 attributes ``voxel_size_nm`` / ``element_size_um``). The run streams the volume
slab by slab; if it is interrupted, run the same command again and it resumes from the finished slabs (kept in
``OUT.work`` until the run succeeds). ``--report DIR`` then writes the particle table and plots of
``tools/analyze.py`` (``particles.csv``, ``summary.json``, ``summary.md``, PNGs; phases of the grayscale volume
from the phase model, ``--phase-model``, default models/phases of ``make model``, written to DIR/phases.tif;
multi-Otsu, flagged approximate, without one) to DIR. Every argument and output path is checked before the model is
loaded; an existing OUT (or a used --overlays or --report folder, emptied) is replaced only with --overwrite.

INPUT may also be one 2D image (a single-page TIFF, a PNG or a JPG, such as a slice exported from a scan): it is
segmented as one slice with the same model, ``--scale``, tiling and score threshold (``segment_image``) into an
(H, W) label TIFF, and ``--overlays DIR`` writes DIR/overlay.png; the options of volumes (``--views``,
``--min-voxels``, ``--report``, ``--voxel-size-nm``, ``--slab``, the work folder and launcher) are refused for it.

Distributed (many GPUs or nodes): ``bash tools/dist_segment.sh INPUT GPUS_PER_NODE --config ... --out ...``
(torchrun; ``--launcher pytorch``) or ``tools/slurm_segment.sh``. Every rank segments its share of the slabs of
every view into ``OUT.work`` (which must be on a filesystem all nodes share); then every rank links or fuses its own
block of slices, the joins across block faces are solved once, and every rank writes its block of OUT, identical to
a single-process run. On CPUs torchrun runs with the gloo backend.

Examples:
    python tools/segment.py stack.tif --out labels.tif --report report/      # the generalist, scale auto
    python tools/segment.py scan.h5:/exchange/data --out labels.zarr          # HDF5 in, OME-Zarr out
    python tools/segment.py slice.tif --out slice_labels.tif --overlays ov/   # one 2D image
    python tools/segment.py stack.tif --config configs/nmc/mask-rcnn_r101_fpn.py \\
        --checkpoint work_dirs/mask-rcnn_r101_fpn/best_coco_segm_mAP_50_epoch_36.pth --device cuda:0 \\
        --views xy xz yz --out labels.tif --voxel-size-nm 50 --min-voxels 100 --overlays overlays/ --scale 0.5
"""
import argparse
import os.path as osp
import shlex
import sys

import numpy as np
import torch
from mmengine.dist import get_dist_info

from libnet_mmdet.analysis import PHASES_GIVEN, PHASES_MODEL, particle_table, phase_fit_sample, write_report
from libnet_mmdet.apis import (check_auto_diameters, check_device, check_fixed_resize, check_volume_args,
                               describe_scale, generalist_files, init_phase_model, init_segmenter, load_slice,
                               predict_phases, read_config, resolve_phase_model, resolve_tiling, segment_image,
                               segment_volume)
from libnet_mmdet.cli import (add_cfg_options_arg, add_debug_arg, add_launcher_arg, add_overwrite_arg,
                              add_phase_model_arg, add_voxel_size_arg, auto_or, check_memory, device_name,
                              exit_on_error, init_distributed, positive_int, report_memory_bytes)
from libnet_mmdet.io import (ImageFormatError, InputError, check_output_dir, check_outside_inputs, is_2d_image_file,
                             is_inside, label_output_format, max_label, open_volume, output_folder, read_image,
                             read_voxel_size, read_whole_volume, write_tiff)
from libnet_mmdet.volume import VIEWS, WorkFolder
from libnet_mmdet.visualization import render_labels, write_overlays, write_png

TOOL = osp.basename(__file__)
#: The options that only a volume takes (argparse dest: flag), refused with a 2D image.
VOLUME_ONLY = {'views': '--views', 'overlay_step': '--overlay-step', 'report': '--report',
               'min_voxels': '--min-voxels', 'smooth': '--smooth', 'phase_model': '--phase-model',
               'voxel_size_nm': '--voxel-size-nm',
               'slab': '--slab', 'work_dir': '--work-dir', 'no_resume': '--no-resume', 'keep_work': '--keep-work',
               'launcher': '--launcher'}


def _tile_size(value):
    if value in ('auto', 'none'):
        return None if value == 'none' else 'auto'
    return int(value)


def build_parser():
    parser = argparse.ArgumentParser(description='Segment a tomography volume into 3D particle instance labels '
                                     '(or one 2D image into 2D ones)',
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('input', help='(Z, Y, X) TIFF stack, folder of 2D slices, HDF5 dataset (stack.h5:/path) '
                        'or Zarr / OME-Zarr (stack.zarr, stack.zarr:/path); or one 2D image (TIFF, PNG, JPG)')
    parser.add_argument('--config', help='model config file (default: the generalist of `make model`, '
                        'models/generalist/config.py)')
    parser.add_argument('--checkpoint', help='trained checkpoint (.pth; default: models/generalist/model.pth)')
    parser.add_argument('--out', required=True, help='output instance labels: .tif/.tiff (TIFF) or .zarr (OME-Zarr); '
                        'an existing one needs --overwrite')
    parser.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu', type=device_name,
                        help='cpu, cuda or cuda:N (default: cuda:0 when CUDA is available, else cpu)')
    parser.add_argument('--views', nargs='+', default=['auto'], choices=('auto',) + VIEWS,
                        help='auto (default): fuse xy, xz and yz where the volume allows it, else link xy slices; '
                        'xy = segment xy slices and link them; two or three views are fused')
    parser.add_argument('--overlays', help='write overlay PNGs of the labels on the z slices into this new folder '
                        '(or emptied with --overwrite)')
    parser.add_argument('--overlay-step', type=positive_int, default=10,
                        help='overlay every N-th z slice (default 10)')
    parser.add_argument('--report', metavar='DIR', help='also write the particle table, summary and plots of '
                        'tools/analyze.py into this new folder (or emptied with --overwrite); needs the voxel size')
    parser.add_argument('--min-voxels', type=auto_or(int), metavar='auto|N',
                        help='smallest particle in voxels: smaller fragments (and pieces lying mostly against a '
                        'much larger particle) are merged into the particle they touch most, isolated ones removed; '
                        'auto: a sphere a third of the typical particle diameter '
                        'across, from the diameter --scale auto measures (default: auto when the model records its '
                        'trained particle diameters, as the generalist does, else 0: keep all)')
    parser.add_argument('--smooth', type=auto_or(float), default='auto', metavar='auto|SIGMA',
                        help="round each particle's mask last: a voxel goes to the particle whose mask, blurred with a "
                        'Gaussian of SIGMA voxels, covers more than half of it; auto (default): 0.75 for fused views, '
                        'none for linked ones; 0: off')
    parser.add_argument('--score-thr', type=float, default=0.5, help='drop detections scoring below (default 0.5)')
    add_phase_model_arg(parser)
    add_voxel_size_arg(parser, help='voxel size in nm written to the output: one value (cubic) or Z Y X (default: '
                       'the one the input records, if any)')
    parser.add_argument('--slab', type=int, default=16, help='slices per slab (memory and resume unit)')
    parser.add_argument('--tile-size', type=_tile_size, default='auto',
                        help='tile slices larger than this (auto = the model training size, none = never)')
    parser.add_argument('--overlap', type=int,
                        help='tile overlap in pixels, >= the largest particle diameter (default a quarter tile)')
    parser.add_argument('--scale', type=auto_or(float), nargs='+', metavar='auto|F',
                        help='the model sees slices resized by F, so that particles are as many pixels across as in '
                        'its training data (training diameter / yours); auto estimates F from a first pass on '
                        'three slices; several F segment at each and merge (default: auto when the model records '
                        'its trained particle diameters, as the generalist does, else 1). It takes every value '
                        'that follows: put it after INPUT')
    parser.add_argument('--batch-size', type=int, help='images per forward pass (default: 4 on a GPU, 1 on the CPU)')
    parser.add_argument('--proposals', choices=('auto', 'config'), default='auto',
                        help="RPN proposals and detections per image: 'auto' as many as an image of its size can "
                        "need (faster), 'config' the config's test_cfg (default: auto)")
    parser.add_argument('--amp', action='store_true',
                        help='mixed-precision backbone and neck: float16 on a GPU; bfloat16 on the CPU, where it is '
                        'for checking only (BENCHMARKS.md)')
    parser.add_argument('--work-dir', help='scratch and resume folder (default OUT.work)')
    parser.add_argument('--no-resume', action='store_true', help='start over even if OUT.work has finished slabs')
    parser.add_argument('--keep-work', action='store_true', help='keep the work folder after success')
    add_overwrite_arg(parser, help='replace an existing --out and empty an --overlays or --report folder of an '
                      'earlier run')
    add_cfg_options_arg(parser, help='override model config settings, e.g. model.test_cfg.rcnn.max_per_img=1000')
    add_launcher_arg(parser, choices=('none', 'pytorch', 'slurm'),
                     help='job launcher (pytorch = torchrun, see tools/dist_segment.sh)')
    add_debug_arg(parser)
    return parser


def parse_args(argv=None):
    return build_parser().parse_args(argv)


def output_dir_inputs(args, folder):
    """What an output folder (--overlays, --report; it may be emptied) must never hold: the input, the output, the
    work folder, the other output folder, the model's files and the phase model's."""
    others = [path for path in (args.overlays, args.report) if path and path != folder]
    models = [path for path in (args.config, args.checkpoint, *(getattr(args, 'phase_files', None) or ())) if path]
    return (args.input, args.out, args.work_dir or f'{args.out}.work', *others, *models)


def check_output_folder(args, flag, folder):
    """Raise :class:`InputError` unless ``folder`` (of ``flag``, --overlays or --report) can be a folder of its own:
    outside the work folder (deleted after the run), holding neither the input, OUT nor the work folder."""
    work_dir = args.work_dir or f'{args.out}.work'
    if is_inside(folder, work_dir):
        raise InputError(f'{flag} {folder}: lies in the work folder {work_dir}, which is deleted when the run ends; '
                         'choose another folder')
    for what, path in (('--out', args.out), ('the work folder', work_dir)):
        if not is_inside(args.input, folder) and is_inside(path, folder):  # the input's own line comes below
            raise InputError(f'{flag} {folder}: would hold {what} {path}; give {flag} a folder of its own (an '
                             'output folder may be emptied with --overwrite)')
    check_output_dir(folder, args.overwrite, inputs=output_dir_inputs(args, folder))
    check_outside_inputs(folder, (args.input,))


def scale_arg(words):
    """``segment_volume``'s ``scale`` from the --scale words: None (not given), ``'auto'``, a number or a list."""
    if words is None or words == ['auto']:
        return None if words is None else 'auto'
    if 'auto' in words:
        raise InputError(f"scale (--scale): give auto or numbers, not both (got {' '.join(map(str, words))})")
    return words[0] if len(words) == 1 else words


def model_files(args):
    """``(config, checkpoint)``: the --config/--checkpoint pair, else the generalist's files when built."""
    if (args.config is None) != (args.checkpoint is None):
        raise InputError('--config and --checkpoint go together: pass both, or neither for the generalist model')
    if args.config is not None:
        return args.config, args.checkpoint
    files = generalist_files()
    if files is None:
        raise InputError('no model: the generalist model is not built (models/generalist/); run `make model`, or '
                         'pass --config and --checkpoint of a trained model')
    return files


def load_model(args, device, announce=True):
    """The detector of :func:`model_files` on ``device``; says so when it is the generalist (and ``announce``)."""
    config, checkpoint = model_files(args)
    if announce and args.config is None:
        print(f'model: the generalist ({config}, {checkpoint})', file=sys.stderr)
    return init_segmenter(config, checkpoint, device=device, cfg_options=args.cfg_options, amp=args.amp)


def check_args(args):
    """Check every argument and output path before anything is loaded or written; returns the ``segment_volume``
    keyword arguments (the voxel size from --voxel-size-nm, else None)."""
    views = 'auto' if args.views == ['auto'] else tuple(args.views)
    kwargs = dict(
        out=args.out, views=views, score_thr=args.score_thr, tile_size=args.tile_size, overlap=args.overlap,
        min_voxels=args.min_voxels, smooth=args.smooth, slab=args.slab, batch_size=args.batch_size,
        scale=scale_arg(args.scale), work_dir=args.work_dir, overwrite=args.overwrite, proposals=args.proposals,
        voxel_size_nm=None if args.voxel_size_nm is None else tuple(args.voxel_size_nm))
    check_volume_args(args.input, **kwargs)
    check_device(args.device)
    if args.overlays and args.report and osp.realpath(args.overlays) == osp.realpath(args.report):
        raise InputError(f'--overlays and --report: both are {args.report}; give each its own folder')
    if args.phase_model not in ('auto', 'none') and not args.report:
        raise InputError('--phase-model: the phases are for --report; add --report DIR or leave --phase-model out')
    if not args.overlays and args.overlay_step != build_parser().get_default('overlay_step'):
        raise InputError('--overlay-step: the step between overlay slices is for --overlays; add --overlays DIR or '
                         'leave --overlay-step out')
    args.phase_files = resolve_phase_model(args.phase_model) if args.report else None
    for flag, folder in (('--overlays', args.overlays), ('--report', args.report)):
        if folder:
            check_output_folder(args, flag, folder)
    config, checkpoint = model_files(args)
    check_outside_inputs(args.work_dir or f'{args.out}.work', (config, checkpoint, *(args.phase_files or ())))
    if osp.isfile(config):  # what the config says, now rather than after loading (a missing config: at loading)
        cfg = read_config(config, args.cfg_options)
        check_auto_diameters(cfg, scale=kwargs['scale'], min_voxels=kwargs['min_voxels'])
        check_fixed_resize(cfg, kwargs['scale'])  # a config resizing to a fixed size refuses --scale F now
        resolve_tiling(cfg, args.tile_size, args.overlap)  # --overlap against the config's own tile size
    return kwargs


def write_particle_report(args, labels, voxel_size_nm, device):
    """The particle table and plots of ``tools/analyze.py`` for ``labels``, phases from the phase model
    (``args.phase_files``), else multi-Otsu (flagged approximate), of the grayscale input."""
    if not any(np.any(labels[z:z + 16]) for z in range(0, labels.shape[0], 16)):  # slab by slab: a Zarr OUT too
        raise InputError(f'{args.out}: no particle was found, so there is no report to write')
    image = read_whole_volume(args.input)[0]
    phases, phase_source = None, PHASES_GIVEN
    if args.phase_files:
        print(f'phases: the phase model in {osp.dirname(args.phase_files[0])}', file=sys.stderr)
        phases = predict_phases(init_phase_model(*args.phase_files, device=device, amp=args.amp), image,
                                progress=True, voxel_size_nm=voxel_size_nm)[0]
        phase_source = PHASES_MODEL
    table = particle_table(labels, phases_zyx=phases, image_zyx=image, voxel_size_nm=voxel_size_nm,
                           phase_source=phase_source)
    summary = write_report(table, args.report, labels_zyx=labels, image_zyx=image, phases_zyx=phases,
                           overwrite=args.overwrite)
    print(f"wrote the particle report ({summary['n_particles']} particles) to {args.report}")


def segment(args):
    """Check the arguments, then load the model, segment and write OUT. Returns ``(labels, kwargs, device)`` on
    rank 0 (None on the other ranks, which wrote their blocks of OUT)."""
    kwargs = check_args(args)
    device = init_distributed(args.launcher, args.device)
    rank, _ = get_dist_info()
    with open_volume(args.input) as reader:  # check the input before loading the model
        if rank == 0:
            print(f'input {reader.name}: (Z, Y, X) = {reader.shape}, {reader.dtype}', file=sys.stderr)
        recorded = reader.voxel_size_nm if kwargs['voxel_size_nm'] is None else None  # the file's, when needed
        reader.read('z', 0, 1)  # one slice now: a compressed HDF5 whose filter is not installed fails here, not later
        if args.report:  # the report holds the whole volume: refuse now (every rank), not after the segmentation
            check_memory(report_memory_bytes(reader.shape, (reader.dtype, 'uint16'), bool(args.phase_files)),
                         f'--report: the report of {args.input} {reader.shape}',
                         'segment without --report, then run tools/analyze.py where there is more')
            if not args.phase_files:  # multi-Otsu's phases: can they be fitted? (a two-level image cannot)
                phase_fit_sample(reader, args.input)
    if recorded is not None:  # keep the voxel size the input records
        kwargs['voxel_size_nm'] = tuple(float(size) for size in recorded)
    if args.report and kwargs['voxel_size_nm'] is None:
        raise InputError(f'--report: {args.input} records no voxel size; pass --voxel-size-nm')
    model = load_model(args, device, announce=rank == 0)
    if args.phase_files:  # its checkpoint too, now rather than after the segmentation (loaded again for the report)
        init_phase_model(*args.phase_files, device='cpu')
    args.segmenting = True  # every check passed: an error from here on may leave finished slabs to resume from
    labels = segment_volume(model, args.input, resume=not args.no_resume, keep_work=args.keep_work, **kwargs)
    if rank > 0:
        return None
    print(f'wrote {args.out}: {max_label(args.out)} particles, (Z, Y, X) = {labels.shape}, {labels.dtype}')
    return labels, kwargs, device


def write_overlay_pngs(args, labels):
    # the folder was checked by check_args; write_overlays empties it (--overwrite) right before writing
    paths = write_overlays(args.input, labels, args.overlays, args.overlay_step, overwrite=args.overwrite)
    print(f'wrote {len(paths)} overlay PNGs to {args.overlays}')


def report_command(args):
    """The ``tools/analyze.py`` command that writes the --report folder from OUT (what is left to do when a run
    stops after OUT is written)."""
    words = ['python', 'tools/analyze.py', args.out, '--image', args.input, '--out', args.report, '--overwrite']
    if args.phase_model != 'auto':
        words += ['--phase-model', args.phase_model]
    if args.voxel_size_nm is not None:  # OUT records it; the input may record another (or none)
        words += ['--voxel-size-nm', *(f'{size:g}' for size in args.voxel_size_nm)]
    if args.device != 'cpu':
        words += ['--device', args.device]
    return shlex.join(words)


def check_image_args(args):
    """:func:`check_args` for a 2D image INPUT, which takes no volume option and is labelled into a TIFF; returns the
    ``segment_image`` keyword arguments."""
    parser = build_parser()
    given = [flag for dest, flag in VOLUME_ONLY.items() if getattr(args, dest) != parser.get_default(dest)]
    if given:
        raise InputError(f"{args.input} is a 2D image: {', '.join(given)} {'is' if len(given) == 1 else 'are'} for "
                         'volumes only')
    if label_output_format(args.out) != 'tiff':
        raise InputError(f'{args.out}: the labels of a 2D image are written as TIFF (.tif or .tiff)')
    kwargs = check_args(args)
    load_slice(args.input)  # its pixels (NaN/Inf, a file whose header reads and whose pixels do not) before the model
    return {key: kwargs[key] for key in ('score_thr', 'tile_size', 'overlap', 'batch_size', 'scale', 'proposals')}


def segment_image_file(args):
    """Check the arguments, then load the model, segment the 2D image INPUT as one slice and write its (H, W) labels
    to OUT. Returns the labels."""
    kwargs = check_image_args(args)
    model = load_model(args, args.device)
    labels, details = segment_image(model, args.input, **kwargs)
    scales = details['scale'] if isinstance(details['scale'], list) else [details['scale']]
    print(describe_scale(scales, details.get('scale_info')))
    pixel_size_nm = read_voxel_size(args.input)  # the input's pixel size (TIFF): Fiji overlays the two at one scale
    write_tiff(args.out, labels, pixel_size_nm, overwrite=args.overwrite)
    print(f'wrote {args.out}: {int(labels.max())} particles, (H, W) = {labels.shape}, {labels.dtype}')
    return labels


def write_image_overlay(args, labels):
    """``--overlays``/overlay.png: the labels of a 2D image INPUT drawn on it."""
    picture = render_labels(read_image(args.input), labels)
    with output_folder(args.overlays, args.overwrite, inputs=output_dir_inputs(args, args.overlays)) as folder:
        write_png(osp.join(folder, 'overlay.png'), picture)
    print(f"wrote the overlay {osp.join(args.overlays, 'overlay.png')}")


def main_image(args):
    """``main`` for a 2D image INPUT."""
    with exit_on_error(TOOL, args.debug):
        labels = segment_image_file(args)
    if args.overlays:
        left = f'{args.out} is complete, the overlay in {args.overlays} is not (the same command with --overwrite ' \
            'makes both again)'
        with exit_on_error(TOOL, args.debug, interrupted=left, kept=left):
            write_image_overlay(args, labels)


def main(argv=None):
    args = parse_args(argv)
    with exit_on_error(TOOL, args.debug):
        image_input = is_2d_image_file(args.input)
    if image_input:
        main_image(args)
        return
    work_dir = args.work_dir or f'{args.out}.work'
    kept_in = f'finished slabs are kept in {work_dir}'
    rerun = 'run it again without --no-resume' if args.no_resume else 'run the same command again'
    kept = f'{kept_in}; {rerun} to resume'

    def kept_after_error(exc):  # an error hours into a run (memory, disk): say that a rerun resumes, if it can (not
        # for a refused argument: an old work folder's slabs would not make the same command pass)
        if not (getattr(args, 'segmenting', False) and WorkFolder(work_dir).finished_slabs()):
            return None
        if isinstance(exc, ImageFormatError):  # the input's voxels (NaN, a damaged chunk): the same input fails again
            mended = rerun if args.no_resume else 'the same command resumes'
            return f'{kept_in}; once {args.input} is mended, {mended} (slabs whose voxels did not change are kept)'
        return f'{kept} (with the same settings)'
    with exit_on_error(TOOL, args.debug, interrupted=kept, kept=kept_after_error):
        segmented = segment(args)
    if segmented is None:
        return
    labels, kwargs, device = segmented
    if args.overlays:  # OUT is complete from here on: say what is left, not how to resume the segmentation
        left = (f'{args.out} is complete, the overlays in {args.overlays} are not (the same command with --overwrite '
                'makes everything again)')
        with exit_on_error(TOOL, args.debug, interrupted=left, kept=left):
            write_overlay_pngs(args, labels)
    if args.report:
        done = f'{args.out} and the overlays are' if args.overlays else f'{args.out} is'
        left = f'{done} complete, the report is not; to write it: {report_command(args)}'
        with exit_on_error(TOOL, args.debug, interrupted=left, kept=left):
            write_particle_report(args, labels, kwargs['voxel_size_nm'], device)


if __name__ == '__main__':
    main()
