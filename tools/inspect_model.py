"""Look inside a trained Mask R-CNN: write one PNG panel per stage of its inference on one slice.

Usage:
    python tools/inspect_model.py CONFIG CHECKPOINT IMAGE --out DIR [--device cpu|cuda:0] [--score-thr T]
        [--scale auto|F] [--topk K] [--n-masks N] [--cfg-options k=v ...] [--overwrite] [--debug]

IMAGE is a 2D slice (TIFF/PNG/...), prepared exactly as ``segment_image`` and ``tools/test.py`` prepare it, at the
scale ``segment_image`` would take (auto for a model that records its trained particle diameters, such as the
generalist: the model sees the slice resized; of several auto scales the first). DIR
(new, or a DIR of an earlier run emptied with --overwrite) receives:

    anchors.png                anchor shapes and centres per FPN level (a sample)
    rpn_objectness.png         RPN objectness per FPN level (max over the anchor shapes of a cell)
    rpn_proposals.png          top-K RPN proposals before and after the RPN's NMS
    rcnn_boxes.png             top-K boxes after the bbox head, before and after its NMS, with scores
    detections.png             final detections with score >= T: masks, boxes, scores
    mask_probs.png             the mask head's 28x28 probabilities of the N best detections
    activations_backbone.png   mean |activation| of each ResNet stage
    activations_fpn.png        mean |activation| of each FPN level
    summary.json               what each panel counts (anchors, proposals before/after NMS, detections, ...)

Every value drawn is recorded from the model's own modules while it runs (forward hooks and pass-through
wrappers, see libnet_mmdet/visualization/model_stages.py); nothing is re-implemented. The summary is printed.

Example:
    python tools/inspect_model.py configs/nmc/mask-rcnn_r101_fpn.py \\
        work_dirs/mask-rcnn_r101_fpn/best_coco_segm_mAP_50_epoch_36.pth data/nmc/images/val/slice_0100.png \\
        --out inspect/ --device cuda:0
"""
import argparse
import json
import os.path as osp

from libnet_mmdet.apis import (DEFAULT_SCORE_THR, check_auto_diameters, check_fixed_resize, check_scale,
                               init_segmenter, load_slice, read_config)
from libnet_mmdet.cli import (add_cfg_options_arg, add_debug_arg, add_overwrite_arg, auto_or, device_name,
                              exit_on_error, positive_int, unit_fraction)
from libnet_mmdet.io import check_output_dir
from libnet_mmdet.visualization import check_two_stage_config, record_stages, write_panels

TOOL = osp.basename(__file__)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Write PNG panels of every inference stage of a Mask R-CNN',
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='trained checkpoint (.pth)')
    parser.add_argument('image', help='2D slice to run the model on')
    parser.add_argument('--out', required=True, help='output folder for the PNG panels and summary.json')
    parser.add_argument('--device', default='cpu', type=device_name, help='cpu, cuda or cuda:N (default cpu)')
    parser.add_argument('--score-thr', type=unit_fraction, default=DEFAULT_SCORE_THR,
                        help=f'draw final detections scoring at least this (default {DEFAULT_SCORE_THR})')
    parser.add_argument('--scale', type=auto_or(float), metavar='auto|F',
                        help='the model sees the slice resized by F (default: auto when the model records its '
                        'trained particle diameters, as the generalist does, else 1; tools/segment.py --scale)')
    parser.add_argument('--topk', type=positive_int, default=50, help='proposals/boxes drawn per panel (default 50)')
    parser.add_argument('--n-masks', type=positive_int, default=8, help='mask probability maps drawn (default 8)')
    add_cfg_options_arg(parser, help='override model config settings, e.g. model.test_cfg.rcnn.score_thr=0.3')
    add_overwrite_arg(parser, help='empty the --out folder of an earlier run first')
    add_debug_arg(parser)
    return parser.parse_args(argv)


def run(args):
    """Check the output folder and the image, load the model, record its stages on the image, write the panels."""
    check_scale(args.scale)
    check_output_dir(args.out, args.overwrite, inputs=(args.config, args.checkpoint, args.image))
    load_slice(args.image)  # a missing, unreadable or non-finite image is reported before the model is loaded
    cfg = read_config(args.config, args.cfg_options)  # what the config says, before the checkpoint loads
    check_two_stage_config(cfg, args.config)
    check_auto_diameters(cfg, scale=args.scale)
    check_fixed_resize(cfg, args.scale)  # a config resizing to a fixed size refuses --scale F before the model loads
    model = init_segmenter(args.config, args.checkpoint, device=args.device, cfg_options=args.cfg_options)
    stages = record_stages(model, args.image, args.scale)
    print(stages['scale_line'], flush=True)
    return write_panels(stages, args.out, score_thr=args.score_thr, topk=args.topk, n_masks=args.n_masks,
                        overwrite=args.overwrite)  # empties OUT (checked above) once the panels are drawn


def main(argv=None):
    args = parse_args(argv)
    with exit_on_error(TOOL, args.debug, interrupted=f'{args.out} is as it was (written whole or not at'
                       ' all); run the same command again'):
        summary = run(args)
    print(json.dumps(summary, indent=2))
    print(f'wrote {len(summary["panels"])} panels and summary.json to {args.out}')


if __name__ == '__main__':
    main()
