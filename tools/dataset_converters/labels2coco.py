"""Convert instance-label images (StarDist / Cellpose convention) or 3D image + label stacks to a COCO dataset.

Writes OUT_DIR/images/ (2D images copied; each kept slice of a stack as <stem>_<axis><index>.tif in the stack's
dtype) and OUT_DIR/annotations.json (one ``particle`` annotation per label id and image / slice, exact RLE).
Use OUT_DIR/annotations.json as ``ann_file`` and OUT_DIR/images/ as ``data_prefix.img`` of a
``ParticleCocoDataset``.

Usage:
    python tools/dataset_converters/labels2coco.py IMAGES LABELS OUT_DIR [--label-suffix SUFFIX]
                                                   [--axes zyx] [--step N] [--keep-empty]

IMAGES / LABELS: an image and its label file (2D, or (Z, Y, X) stacks), or two folders of them matched by file
name (LABELS may be the IMAGES folder with --label-suffix, e.g. Cellpose's _masks).

Examples:
    python tools/dataset_converters/labels2coco.py data/stardist/train/images data/stardist/train/masks data/nmc_2d
    python tools/dataset_converters/labels2coco.py synth/image.tif synth/labels.tif data/synth_coco --axes zyx \
        --step 2
"""
import argparse

from libnet_mmdet.datasets import labels_to_coco


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Convert instance-label images / stacks to COCO JSON (RLE)')
    parser.add_argument('images', help='image file or stack, or folder of them')
    parser.add_argument('labels', help='label file or stack, or folder of them (0 = background, 1..N particles)')
    parser.add_argument('out_dir', help='output folder: images/ and annotations.json')
    parser.add_argument('--label-suffix', default='', help="label file stem = image stem + suffix (e.g. '_masks')")
    parser.add_argument('--axes', default='z', help='axes to slice 3D stacks along: any of z, y, x (default z)')
    parser.add_argument('--step', type=int, default=1, help='keep every N-th slice (default 1)')
    parser.add_argument('--keep-empty', action='store_true', help='keep slices / images without particles')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    coco = labels_to_coco(args.images, args.labels, args.out_dir, args.label_suffix, tuple(args.axes),
                          args.step, not args.keep_empty)
    print(f'{args.out_dir}: {len(coco["images"])} images, {len(coco["annotations"])} particles')


if __name__ == '__main__':
    main()
