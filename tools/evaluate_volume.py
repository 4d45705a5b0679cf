"""Score a predicted 3-D instance label volume against ground truth: matching and size distribution.

Usage:
    python tools/evaluate_volume.py GT.tif PRED.tif [--voxel-size-nm 50] [--thresholds 0.5 0.75 ...]
                                    [--out metrics.json [--overwrite]] [--debug]

Both are (Z, Y, X) integer instance labels of the same shape (0 = background): TIFF stacks, or OME-Zarr / Zarr
(``labels.zarr``, as tools/segment.py writes it) or HDF5 (``labels.h5:/path``). Prints the per-threshold
3-D matching table (TP, FP, FN, precision, recall, F1, accuracy, mean matched IoU, PQ; StarDist semantics, see
../shared/docs/METRICS.md) and the headline numbers: F1@0.5, F1@0.75, mean accuracy, PQ@0.5, particle count
error, ESD D10/D50/D90 of both volumes and the Wasserstein distance between the ESD samples. The voxel size
(for ESD in µm) comes from GT.tif's metadata (else PRED.tif's; files recording different sizes are refused) unless
--voxel-size-nm is given; without any, ESDs are in voxel units (voxel size 1000 nm = 1 µm, reported as
``"voxel_size_nm": null``). --out writes everything as JSON.
"""
import argparse
import os.path as osp

from libnet_mmdet.cli import add_debug_arg, add_overwrite_arg, add_voxel_size_arg, exit_on_error, iou_threshold
from libnet_mmdet.io import (agreed_voxel_size, check_labels, check_output_file, check_outside_inputs, open_volume,
                             read_whole_volume, voxel_size_zyx, write_json)
from libnet_mmdet.evaluation import DEFAULT_THRESHOLDS, compare_label_volumes

TOOL = osp.basename(__file__)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('gt', help='ground-truth (Z, Y, X) instance labels: TIFF, .zarr, or labels.h5:/path')
    parser.add_argument('pred', help='predicted (Z, Y, X) instance labels: TIFF, .zarr, or labels.h5:/path')
    add_voxel_size_arg(parser)
    parser.add_argument('--thresholds', type=iou_threshold, nargs='+', default=list(DEFAULT_THRESHOLDS),
                        help='IoU thresholds (default 0.50 0.55 ... 0.95)')
    parser.add_argument('--out', help='write the table and summary as JSON here (an existing file needs --overwrite)')
    add_overwrite_arg(parser, help='replace an existing --out file')
    add_debug_arg(parser)
    return parser.parse_args(argv)


def run(args):
    """Check the arguments, read both volumes, compare them and write the JSON; returns ``(stats, summary)``."""
    voxel_size_nm = None if args.voxel_size_nm is None else voxel_size_zyx(args.voxel_size_nm, '--voxel-size-nm')
    if args.out:
        check_output_file(args.out, args.overwrite, inputs=(args.gt, args.pred))
        check_outside_inputs(args.out, (args.gt, args.pred))
    with open_volume(args.gt) as gt_reader, open_volume(args.pred) as pred_reader:  # headers: before any reading
        if pred_reader.shape != gt_reader.shape:
            raise ValueError(f'{args.pred}: shape {pred_reader.shape} does not match {args.gt} shape '
                             f'{gt_reader.shape}')
        if voxel_size_nm is None:  # GT's, else the prediction's; differing ones refused
            voxel_size_nm = agreed_voxel_size({args.gt: gt_reader.voxel_size_nm, args.pred: pred_reader.voxel_size_nm})
    gt_labels, _ = read_whole_volume(args.gt)
    pred_labels, _ = read_whole_volume(args.pred)
    check_labels(gt_labels, args.gt, allow_empty=True)
    check_labels(pred_labels, args.pred, allow_empty=True)
    esd_voxel_size_nm = 1000.0 if voxel_size_nm is None else voxel_size_nm
    stats, summary = compare_label_volumes(gt_labels, pred_labels, esd_voxel_size_nm, thresholds=args.thresholds)
    summary['voxel_size_nm'] = None if voxel_size_nm is None else voxel_size_nm.tolist()
    if args.out:
        write_json(args.out, {'gt': args.gt, 'pred': args.pred, 'summary': summary,
                              'per_threshold': stats.reset_index().to_dict(orient='records')}, indent=2)
    return stats, summary


def main(argv=None):
    args = parse_args(argv)
    with exit_on_error(TOOL, args.debug, interrupted='nothing was written; run the same command again'):
        stats, summary = run(args)
    print(stats.round(4).to_string())
    print()
    width = max(map(len, summary))
    for key, value in summary.items():
        print(f'{key:<{width}}  {round(value, 4) if isinstance(value, float) else value}')
    if args.out:
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
