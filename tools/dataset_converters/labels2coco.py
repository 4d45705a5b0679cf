"""Convert instance-label images (StarDist / Cellpose convention) or 3D image + label stacks to a COCO dataset.

Writes OUT_DIR/images/ (2D images copied; each kept slice of a stack as <stem>_<axis><index>.tif in the stack's
dtype) and OUT_DIR/annotations.json (one ``particle`` annotation per label id and image / slice, exact RLE).
Use OUT_DIR/annotations.json as ``ann_file`` and OUT_DIR/images/ as ``data_prefix.img`` of a
``ParticleCocoDataset``.

Usage:
    python tools/dataset_converters/labels2coco.py IMAGES LABELS OUT_DIR [--label-suffix SUFFIX]
                                                   [--axes zyx] [--step N] [--keep-empty] [--overwrite] [--debug]

IMAGES / LABELS: an image and its label file (2D, or (Z, Y, X) stacks), or two folders of them matched by file
name (LABELS may be the IMAGES folder with --label-suffix, e.g. Cellpose's _masks). OUT_DIR must be new or empty;
--overwrite empties an OUT_DIR of an earlier conversion first, so that it never mixes the images of two runs.

Examples:
    python tools/dataset_converters/labels2coco.py data/stardist/train/images data/stardist/train/masks data/nmc_2d
    python tools/dataset_converters/labels2coco.py synth/image.tif synth/labels.tif data/synth_coco --axes zyx \
        --step 2
"""
import argparse
import os.path as osp

from libnet_mmdet.cli import add_debug_arg, add_overwrite_arg, exit_on_error, positive_int
from libnet_mmdet.datasets import labels_to_coco
from libnet_mmdet.io import check_slicing

TOOL = osp.basename(__file__)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Convert instance-label images / stacks to COCO JSON (RLE)')
    parser.add_argument('images', help='image file or stack, or folder of them')
    parser.add_argument('labels', help='label file or stack, or folder of them (0 = background, 1..N particles)')
    parser.add_argument('out_dir', help='output folder: images/ and annotations.json')
    parser.add_argument('--label-suffix', default='', help="label file stem = image stem + suffix (e.g. '_masks')")
    parser.add_argument('--axes', default='z', help='axes to slice 3D stacks along: any of z, y, x (default z)')
    parser.add_argument('--step', type=positive_int, default=1, help='keep every N-th slice (default 1)')
    parser.add_argument('--keep-empty', action='store_true', help='keep slices / images without particles')
    add_overwrite_arg(parser, help='empty the OUT_DIR of an earlier conversion first')
    add_debug_arg(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with exit_on_error(TOOL, args.debug, interrupted=f'{args.out_dir} is as it was (written whole or not at'
                       ' all); run the same command again'):
        check_slicing(args.axes, args.step, names=('--axes', '--step'))
        coco = labels_to_coco(args.images, args.labels, args.out_dir, args.label_suffix, tuple(args.axes),
                              args.step, not args.keep_empty, overwrite=args.overwrite)
    print(f'{args.out_dir}: {len(coco["images"])} images, {len(coco["annotations"])} particles')


if __name__ == '__main__':
    main()
