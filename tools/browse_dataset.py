"""Browse a dataset as the model sees it: ground-truth masks and boxes drawn over the images after the pipeline.

The seed's "inspect training data" notebook cells as a tool: writes one PNG per sample (written atomically) to
DIR, named <n>_<image stem>[_<axis><slice>].png: each ground-truth particle in its own colour with a yellow
outline, boxes in cyan. With --no-aug only the loading transforms (``Load*``) run, so
the images show the data as loaded and normalised; without it the config's whole pipeline (crops, rotations,
flips, noise, artefacts) runs, freshly random for each sample.

Usage:
    python tools/browse_dataset.py CONFIG --out DIR [--split {train,val,test}] [--no-aug] [--n N]
                                   [--cfg-options k=v ...] [--overwrite] [--debug]

DIR must be new or empty; --overwrite empties a DIR of an earlier run first.

Examples:
    python tools/browse_dataset.py configs/nmc/mask-rcnn_r101_fpn.py --out work_dirs/browse --n 20
    python tools/browse_dataset.py configs/nmc/mask-rcnn_r101_fpn.py --out work_dirs/browse_raw --no-aug
"""
import argparse
import os.path as osp

import numpy as np
from mmengine.registry import init_default_scope
from skimage.draw import rectangle_perimeter

import libnet_mmdet  # noqa: F401  (registers our datasets and transforms)
from libnet_mmdet.apis import read_config, transform_name
from libnet_mmdet.cli import (add_cfg_options_arg, add_debug_arg, add_overwrite_arg, check_dataset_files,
                              dataset_paths, exit_on_error, leaf_datasets, positive_int)
from libnet_mmdet.evaluation import instances_to_labels
from libnet_mmdet.io import InputError, check_output_dir, check_outside_inputs, output_folder
from libnet_mmdet.visualization import render_labels, with_slice_keys, write_png

TOOL = osp.basename(__file__)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Draw ground truth over the images after the data pipeline')
    parser.add_argument('config', help='config file')
    parser.add_argument('--out', required=True, help='folder for the PNG overlays')
    parser.add_argument('--split', choices=['train', 'val', 'test'], default='train',
                        help='which dataloader dataset to browse (default train)')
    parser.add_argument('--no-aug', action='store_true', help='only load: no augmentation or resizing')
    parser.add_argument('--n', type=positive_int, default=10, help='number of samples to draw (default 10)')
    add_cfg_options_arg(parser)
    add_overwrite_arg(parser, help='empty the --out folder of an earlier run first')
    add_debug_arg(parser)
    return parser.parse_args(argv)


def browse_pipeline(pipeline, no_aug):
    """The pipeline to draw: ``Load*`` + ``PackDetInputs`` for ``no_aug``; slice keys kept in the metainfo; the
    annotations loaded right after the image (a test pipeline loads them after its ``Resize``, as MMDetection's do,
    which would leave the masks at the slice's own size), so that every transform moves them with the image."""
    steps, annotations = [], []
    for step in with_slice_keys(pipeline):
        name = transform_name(step)
        if no_aug and not name.startswith('Load') and name != 'PackDetInputs':
            continue
        (annotations if name == 'LoadAnnotations' else steps).append(step)
    return steps[:1] + annotations + steps[1:]


def overlay_name(count, metainfo):
    """``0003_image_z0012.png`` for the ``count``-th sample."""
    name = f'{count:04d}_{osp.splitext(osp.basename(metainfo["img_path"]))[0]}'
    if 'slice_axis' in metainfo:
        name += f'_{metainfo["slice_axis"]}{metainfo["slice_index"]:04d}'
    return name + '.png'


def draw_overlay(image_bgr, masks, boxes):
    """RGB uint8 picture of an (H, W, C) image with one colour per instance mask, their outlines and boxes.

    Args:
        image_bgr (np.ndarray): (H, W, 1 | 3) image (BGR, as the pipeline gives it; a 2.5D model's (previous,
            slice, next) channels: the middle one is drawn, the slice the masks belong to).
        masks (np.ndarray): (N, H, W) bool instance masks (a later mask wins where masks overlap); mask ``i`` is
            drawn as label id ``i + 1``, so in the colour of that id however many masks the picture has.
        boxes (np.ndarray): (N, 4) [x1, y1, x2, y2] pixel-corner boxes.
    """
    painted = instances_to_labels(masks, image_bgr.shape[:2], order=np.arange(len(masks))[::-1])
    labels = np.where(painted > 0, len(masks) + 1 - painted, 0)  # mask i has id i + 1, its colour in every picture
    # as the model gets it (0-255); its middle channel: the slice itself also for a 2.5D (previous, slice, next) input
    picture = render_labels(image_bgr[..., image_bgr.shape[-1] // 2], labels, intensity_range=(0, 255))
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float64):
        rows, cols = rectangle_perimeter((y1, x1), end=(y2 - 1, x2 - 1), shape=labels.shape, clip=True)
        picture[rows, cols] = (0, 255, 255)
    return picture


def run(args):
    """Check the config and the output folder, build the dataset and write the overlays; returns their count."""
    from mmdet.models.utils import mask2ndarray
    from mmdet.registry import DATASETS

    cfg = read_config(args.config, args.cfg_options)
    dataloader = cfg.get(f'{args.split}_dataloader')
    if not dataloader or not dataloader.get('dataset'):
        raise InputError(f'{args.config}: no {args.split}_dataloader with a dataset (--split {args.split}); try '
                         'another --split')
    dataset_cfg = dataloader.dataset
    check_dataset_files(cfg, (args.split,), args.config)
    inputs = (args.config, *dataset_paths(dataset_cfg))
    check_output_dir(args.out, args.overwrite, inputs=inputs)
    check_outside_inputs(args.out, dataset_paths(dataset_cfg, data_root=False))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    for leaf in leaf_datasets(dataset_cfg):  # a wrapper (RepeatDataset, ConcatDataset) holds the pipelines
        leaf.pipeline = browse_pipeline(leaf.get('pipeline') or [], args.no_aug)
    dataset = DATASETS.build(dataset_cfg)
    count = min(args.n, len(dataset))
    with output_folder(args.out, args.overwrite, inputs=inputs) as folder:
        for index in range(count):
            item = dataset[index]
            gt_instances = item['data_samples'].gt_instances
            masks = mask2ndarray(gt_instances.masks).astype(bool) if 'masks' in gt_instances else np.zeros((0, 1, 1))
            picture = draw_overlay(item['inputs'].permute(1, 2, 0).numpy(), masks, gt_instances.bboxes.numpy())
            write_png(osp.join(folder, overlay_name(index, item['data_samples'].metainfo)), picture)
    return count


def main(argv=None):
    args = parse_args(argv)
    with exit_on_error(TOOL, args.debug, interrupted=f'{args.out} is as it was (the overlays are written whole or '
                       'not at all); run the same command again'):
        count = run(args)
    print(f'{count} overlays written to {args.out}')


if __name__ == '__main__':
    main()
