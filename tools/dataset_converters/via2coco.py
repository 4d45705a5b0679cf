"""Convert VGG Image Annotator (VIA 1.x / 2.x JSON export or VIA 2 project file) annotations to COCO JSON.

Every region (polygon, closed polyline, rect, circle, ellipse) becomes one ``particle`` annotation with an exact
RLE mask (the rule: libnet_mmdet.datasets.via); ``file_name`` entries are relative to IMG_DIR, so use IMG_DIR as
``data_prefix.img`` of a ``ParticleCocoDataset``.

Usage:
    python tools/dataset_converters/via2coco.py VIA_JSON IMG_DIR OUT_JSON [--tolerance PIXELS] [--seed-pixels]
                                                [--overwrite] [--debug]

An existing OUT_JSON is replaced only with --overwrite.

Example:
    python tools/dataset_converters/via2coco.py data/seed/train/via_region_data.json data/seed/train \
        data/nmc/annotations/train.json
"""
import argparse
import os.path as osp

from libnet_mmdet.cli import add_debug_arg, add_overwrite_arg, exit_on_error
from libnet_mmdet.datasets import via_to_coco

TOOL = osp.basename(__file__)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Convert VIA annotations to COCO JSON (RLE masks)')
    parser.add_argument('via_json', help='VIA file: via_region_data.json, a VIA 2 export or project file')
    parser.add_argument('img_dir', help='folder the VIA filename entries are relative to')
    parser.add_argument('out_json', help='COCO JSON to write (atomically)')
    parser.add_argument('--tolerance', type=float, default=1.0,
                        help='pixels a region may stick out of its image before it is an error (default 1)')
    parser.add_argument('--seed-pixels', action='store_true',
                        help="pixel centres at integer coordinates, as the seed LIBNet rasterised VIA polygons "
                        "(default: at +0.5, VIA's display and COCO)")
    add_overwrite_arg(parser, help='replace an existing OUT_JSON')
    add_debug_arg(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with exit_on_error(TOOL, args.debug, interrupted='nothing was written; run the same command again'):
        coco = via_to_coco(args.via_json, args.img_dir, args.out_json, args.tolerance,
                           pixel_centre_offset=0.0 if args.seed_pixels else 0.5, overwrite=args.overwrite)
    print(f'{args.out_json}: {len(coco["images"])} images, {len(coco["annotations"])} particles')


if __name__ == '__main__':
    main()
