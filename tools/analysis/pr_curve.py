"""Precision-recall curves (IoU 0.5 and 0.75, bbox and segm) and per-image AP of tools/test.py predictions.

Usage:
    python tools/test.py CONFIG CHECKPOINT --out results.pkl
    python tools/analysis/pr_curve.py results.pkl ANN_FILE --out DIR [--max-dets N] [--overwrite] [--debug]

ANN_FILE is the COCO annotation file of the images tested (the config's ``test_evaluator.ann_file``). DIR (new,
or a DIR of an earlier run emptied with --overwrite) receives ``pr_curves.png`` (precision against recall at IoU
0.5 and 0.75, one plot per bbox/segm), ``per_image_ap.png`` (COCO AP of every image on its own, best first) and
``pr_curves.json`` (the curves at the 101 COCO recall points, the APs and the per-image table). Everything is
computed by pycocotools' COCOeval; with the default ``--max-dets 1000`` (our recipes' evaluator) the AP at IoU 0.5
is the ``coco/segm_mAP_50`` that tools/test.py prints.

Example:
    python tools/analysis/pr_curve.py work_dirs/nmc/results.pkl data/nmc/annotations/val.json --out pr/
"""
import argparse
import os.path as osp

from libnet_mmdet.cli import add_debug_arg, add_overwrite_arg, exit_on_error, positive_int
from libnet_mmdet.visualization import DEFAULT_MAX_DETS, write_pr_report

TOOL = osp.basename(__file__)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Precision-recall curves and per-image AP of test results',
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('results', help='results.pkl written by tools/test.py --out')
    parser.add_argument('ann_file', help='COCO annotation file of the tested images')
    parser.add_argument('--out', required=True, help='output folder for the PNGs and pr_curves.json')
    parser.add_argument('--max-dets', type=positive_int, default=DEFAULT_MAX_DETS,
                        help=f'detections per image evaluated, highest scores first (default {DEFAULT_MAX_DETS})')
    add_overwrite_arg(parser, help='empty the --out folder of an earlier run first')
    add_debug_arg(parser)
    return parser.parse_args(argv)


def run(args):
    """Compute the report and write it into the output folder (new, or emptied with --overwrite)."""
    return write_pr_report(args.results, args.ann_file, args.out, max_dets=args.max_dets, overwrite=args.overwrite)


def main(argv=None):
    args = parse_args(argv)
    with exit_on_error(TOOL, args.debug, interrupted=f'{args.out} is as it was (written whole or not at'
                       ' all); run the same command again'):
        report = run(args)
    for iou_type, curves in report['curves'].items():
        aps = ', '.join(f'AP@{iou} {curve["ap"]:.3f}' for iou, curve in curves.items() if iou != 'recall')
        print(f'{iou_type}: {aps}')
    print(f'wrote pr_curves.png, per_image_ap.png and pr_curves.json to {args.out}')


if __name__ == '__main__':
    main()
