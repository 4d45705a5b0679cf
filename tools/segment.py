"""Segment a tomography volume into 3D particle instance labels with a trained model.

Usage:
    python tools/segment.py INPUT --config CONFIG --checkpoint CHECKPOINT --out labels.tif
        [--device cpu|cuda:0] [--views xy [xz yz]] [--overlays DIR [--overlay-step N]] [--min-voxels N]
        [--score-thr T] [--voxel-size-nm S | SZ SY SX] [--slab N] [--tile-size N|auto|none] [--overlap N] [--scale F]
        [--batch-size N] [--work-dir DIR] [--no-resume] [--keep-work] [--overwrite] [--cfg-options k=v ...]
        [--launcher none|pytorch|slurm] [--debug]

INPUT is a (Z, Y, X) TIFF stack (uint8/uint16/float32) or a folder of 2D slices (sorted by name). ``--views xy``
(default) segments xy slices and links them into 3D particles; ``--views xy xz yz`` segments all three views and
fuses them (three times slower, the most accurate on near-isotropic voxels). The output is an instance-label TIFF
(0 = background, 1..N particles; uint16, or uint32 above 65535 particles) with the voxel size in its ImageJ
metadata. The run streams the volume slab by slab; if it is interrupted, run the same command again and it
resumes from the finished slabs (kept in ``OUT.work`` until the run succeeds). Every argument and output path is
checked before the model is loaded; an existing OUT (or a used --overlays folder) is replaced only with
--overwrite.

Distributed (many GPUs or nodes): ``bash tools/dist_segment.sh INPUT GPUS_PER_NODE --config ... --out ...``
(torchrun; ``--launcher pytorch``) or ``tools/slurm_segment.sh``. Every rank segments its share of the slabs of
every view into ``OUT.work`` (which must be on a filesystem all nodes share); rank 0 then links or fuses and
writes OUT, identical to a single-process run. On CPUs torchrun runs with the gloo backend.

Example:
    python tools/segment.py stack.tif --config configs/nmc/mask-rcnn_r101_fpn.py \\
        --checkpoint work_dirs/nmc/best.pth --device cuda:0 --views xy xz yz --out labels.tif \\
        --voxel-size-nm 50 --min-voxels 100 --overlays overlays/
"""
import argparse
import os.path as osp
import sys

from mmengine.dist import get_dist_info

from libnet_mmdet.apis import check_volume_args, init_segmenter, segment_volume
from libnet_mmdet.cli import (add_cfg_options_arg, add_debug_arg, add_launcher_arg, add_overwrite_arg,
                              add_voxel_size_arg, exit_on_error, init_distributed, positive_int)
from libnet_mmdet.io import check_output_dir, max_label, open_volume, prepare_output_dir, read_voxel_size
from libnet_mmdet.volume import VIEWS
from libnet_mmdet.visualization import write_overlays

TOOL = osp.basename(__file__)


def _tile_size(value):
    if value in ('auto', 'none'):
        return None if value == 'none' else 'auto'
    return int(value)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Segment a tomography volume into 3D particle instance labels',
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('input', help='(Z, Y, X) TIFF stack or folder of 2D slices')
    parser.add_argument('--config', required=True, help='model config file')
    parser.add_argument('--checkpoint', required=True, help='trained checkpoint (.pth)')
    parser.add_argument('--out', required=True, help='output instance-label TIFF (an existing one needs --overwrite)')
    parser.add_argument('--device', default='cuda:0', help='cpu, cuda or cuda:N (default cuda:0)')
    parser.add_argument('--views', nargs='+', default=['xy'], choices=VIEWS,
                        help='xy = segment xy slices and link them (default); two or three views are fused')
    parser.add_argument('--overlays', help='write overlay PNGs of the labels on the z slices into this new folder '
                        '(or emptied with --overwrite)')
    parser.add_argument('--overlay-step', type=positive_int, default=10,
                        help='overlay every N-th z slice (default 10)')
    parser.add_argument('--min-voxels', type=int, default=0,
                        help='smallest particle in voxels: smaller fragments are merged into the particle they '
                        'touch most, isolated ones removed (default 0: keep all; use about the volume of your '
                        'smallest particle)')
    parser.add_argument('--score-thr', type=float, default=0.5, help='drop detections scoring below (default 0.5)')
    add_voxel_size_arg(parser, help='voxel size in nm written to the TIFF: one value (cubic) or Z Y X (default: the '
                       'one the input TIFF records, if any)')
    parser.add_argument('--slab', type=int, default=16, help='slices per slab (memory and resume unit)')
    parser.add_argument('--tile-size', type=_tile_size, default='auto',
                        help='tile slices larger than this (auto = the model training size, none = never)')
    parser.add_argument('--overlap', type=int,
                        help='tile overlap in pixels, >= the largest particle diameter (default a quarter tile)')
    parser.add_argument('--scale', type=float, default=1.0,
                        help='resize slices by this factor before the model so that particles are as many pixels '
                        'across as in the training data (training diameter / yours; default 1)')
    parser.add_argument('--batch-size', type=int, help='images per forward pass (default: 4 on a GPU, 1 on the CPU)')
    parser.add_argument('--work-dir', help='scratch and resume folder (default OUT.work)')
    parser.add_argument('--no-resume', action='store_true', help='start over even if OUT.work has finished slabs')
    parser.add_argument('--keep-work', action='store_true', help='keep the work folder after success')
    add_overwrite_arg(parser, help='replace an existing --out and empty an --overlays folder of an earlier run')
    add_cfg_options_arg(parser, help='override model config settings, e.g. model.test_cfg.rcnn.max_per_img=1000')
    add_launcher_arg(parser, choices=('none', 'pytorch', 'slurm'),
                     help='job launcher (pytorch = torchrun, see tools/dist_segment.sh)')
    add_debug_arg(parser)
    return parser.parse_args(argv)


def overlay_inputs(args):
    """What the --overlays folder must never hold (it may be emptied): the input, the output and the work folder."""
    return args.input, args.out, args.work_dir or f'{args.out}.work'


def check_args(args):
    """Check every argument and output path before anything is loaded or written; returns the ``segment_volume``
    keyword arguments (the voxel size from --voxel-size-nm, else None)."""
    kwargs = dict(
        out=args.out, views=tuple(args.views), score_thr=args.score_thr, tile_size=args.tile_size,
        overlap=args.overlap, min_voxels=args.min_voxels, slab=args.slab, batch_size=args.batch_size,
        scale=args.scale, work_dir=args.work_dir, overwrite=args.overwrite,
        voxel_size_nm=None if args.voxel_size_nm is None else tuple(args.voxel_size_nm))
    check_volume_args(args.input, **kwargs)
    if args.overlays:
        check_output_dir(args.overlays, args.overwrite, inputs=overlay_inputs(args))
    return kwargs


def run(args):
    """Check the arguments, then load the model, segment and write OUT (and the overlays)."""
    kwargs = check_args(args)
    device = init_distributed(args.launcher, args.device)
    rank, _ = get_dist_info()
    with open_volume(args.input) as reader:  # check the input before loading the model
        if rank == 0:
            print(f'input {args.input}: (Z, Y, X) = {reader.shape}, {reader.dtype}', file=sys.stderr)
    if kwargs['voxel_size_nm'] is None and osp.isfile(args.input):  # a TIFF stack: keep the voxel size it records
        recorded = read_voxel_size(args.input)
        kwargs['voxel_size_nm'] = None if recorded is None else tuple(float(size) for size in recorded)
    model = init_segmenter(args.config, args.checkpoint, device=device, cfg_options=args.cfg_options)
    labels = segment_volume(model, args.input, resume=not args.no_resume, keep_work=args.keep_work, **kwargs)
    if rank > 0:  # rank 0 assembled and wrote the output
        return
    print(f'wrote {args.out}: {max_label(args.out)} particles, (Z, Y, X) = {labels.shape}, {labels.dtype}')
    if args.overlays:
        prepare_output_dir(args.overlays, args.overwrite, inputs=overlay_inputs(args))
        with open_volume(args.input) as reader:
            paths = write_overlays(reader, labels, args.overlays, args.overlay_step)
        print(f'wrote {len(paths)} overlay PNGs to {args.overlays}')


def main(argv=None):
    args = parse_args(argv)
    work_dir = args.work_dir or f'{args.out}.work'
    with exit_on_error(TOOL, args.debug, interrupted=f'finished slabs are kept in {work_dir}; run the same command '
                       'again to resume'):
        run(args)


if __name__ == '__main__':
    main()
