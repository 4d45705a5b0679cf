"""Precision-recall curves (IoU 0.5 and 0.75, bbox and segm) and per-image AP of tools/test.py predictions.

Usage:
    python tools/test.py CONFIG CHECKPOINT --out results.pkl
    python tools/analysis/pr_curve.py results.pkl ANN_FILE --out DIR [--max-dets N]

ANN_FILE is the COCO annotation file of the images tested (the config's ``test_evaluator.ann_file``). DIR
receives ``pr_curves.png`` (precision against recall at IoU 0.5 and 0.75, one plot per bbox/segm),
``per_image_ap.png`` (COCO AP of every image on its own, best first) and ``pr_curves.json`` (the curves at the
101 COCO recall points, the APs and the per-image table). Everything is computed by pycocotools' COCOeval; with
the default ``--max-dets 1000`` (our recipes' evaluator) the AP at IoU 0.5 is the ``coco/segm_mAP_50`` that
tools/test.py prints.

Example:
    python tools/analysis/pr_curve.py work_dirs/nmc/results.pkl data/nmc/annotations/val.json --out pr/
"""
import argparse

from libnet_mmdet.visualization import DEFAULT_MAX_DETS, write_pr_report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Precision-recall curves and per-image AP of test results',
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('results', help='results.pkl written by tools/test.py --out')
    parser.add_argument('ann_file', help='COCO annotation file of the tested images')
    parser.add_argument('--out', required=True, help='output folder for the PNGs and pr_curves.json')
    parser.add_argument('--max-dets', type=int, default=DEFAULT_MAX_DETS,
                        help=f'detections per image evaluated, highest scores first (default {DEFAULT_MAX_DETS})')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.max_dets < 1:
        raise SystemExit('pr_curve.py: error: --max-dets must be >= 1')
    try:
        report = write_pr_report(args.results, args.ann_file, args.out, max_dets=args.max_dets)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f'pr_curve.py: error: {exc}') from exc
    for iou_type, curves in report['curves'].items():
        aps = ', '.join(f'AP@{iou} {curve["ap"]:.3f}' for iou, curve in curves.items() if iou != 'recall')
        print(f'{iou_type}: {aps}')
    print(f'wrote pr_curves.png, per_image_ap.png and pr_curves.json to {args.out}')


if __name__ == '__main__':
    main()
