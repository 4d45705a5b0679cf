"""Train a particle segmentation model (MMDetection's ``tools/train.py`` conventions).

Usage:
    python tools/train.py CONFIG [--work-dir DIR] [--weights {imagenet,coco,last,PATH}] [--resume [CKPT]]
                                 [--amp] [--auto-scale-lr] [--overwrite] [--cfg-options k=v ...] [--launcher pytorch]
                                 [--debug]

The work dir keeps the checkpoints: an interrupted training continues with ``--resume`` (the same as ``--weights
last``: refused when the work dir holds no checkpoint). A work dir holding the checkpoints of an earlier training is
not trained in afresh unless ``--overwrite`` says so (its checkpoints are then removed first).

Examples:
    python tools/train.py configs/nmc/mask-rcnn_r101_fpn.py --weights coco --amp          # one GPU
    bash tools/dist_train.sh configs/nmc/mask-rcnn_r101_fpn.py 4 --auto-scale-lr           # four GPUs
    python tools/train.py configs/nmc/mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py --work-dir work_dirs/tiny  # CPU
"""
import argparse
import contextlib
import glob
import os
import os.path as osp

import torch

import libnet_mmdet  # noqa: F401  (registers our modules, allow-lists checkpoint objects for torch.load)
from libnet_mmdet.apis import read_checkpoint
from libnet_mmdet.checkpoint import WEIGHTS_CHOICES, apply_weights, check_weights_fit
from libnet_mmdet.cli import (add_debug_arg, add_overwrite_arg, add_runner_args, build_runner, check_dataset_files,
                              exit_on_error, load_config)
from libnet_mmdet.io import InputError, is_inside

TOOL = osp.basename(__file__)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train an NMC particle instance segmentation model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision training (GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate linearly with the total batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint; without a path, resume from the newest checkpoint in the work dir')
    parser.add_argument(
        '--weights', metavar='{' + ','.join(WEIGHTS_CHOICES) + ',PATH}',
        help='start from ImageNet backbone weights, MMDetection COCO weights, the last checkpoint in the work '
        'dir (resume), or a checkpoint file (fine-tune)')
    add_overwrite_arg(parser, help='train afresh in a work dir holding the checkpoints of an earlier training (they '
                      'are removed first)')
    add_runner_args(parser)
    add_debug_arg(parser)
    return parser.parse_args(argv)


def run(args):
    """Check the arguments and the config, then train."""
    if args.resume and args.weights:
        raise InputError('--resume/--weights: give either, not both')
    cfg = load_config(args)
    check_dataset_files(cfg, ('train', 'val') if cfg.get('val_cfg') else ('train',), args.config)
    if args.amp and not torch.cuda.is_available():
        raise InputError('--amp: mixed-precision training needs a GPU and CUDA is not available here; drop --amp')
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise InputError(f'--auto-scale-lr: {args.config} has no auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        apply_weights(cfg, 'last', flag='--resume')  # the same (MMEngine alone would train from scratch without one)
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume: checkpoint file not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume
    if args.weights:
        apply_weights(cfg, args.weights)
    load_from = cfg.get('load_from')
    if load_from and '://' not in str(load_from) and not osp.isfile(load_from):  # before --overwrite removes anything
        raise FileNotFoundError(f'load_from (the config or --cfg-options): checkpoint file not found: {load_from}')
    resuming = args.resume is not None or args.weights == 'last'
    checkpoints = glob.glob(osp.join(cfg.work_dir, '*.pth'))
    if not resuming and checkpoints and not args.overwrite:  # before the (slower) checkpoint checks
        raise InputError(f'{cfg.work_dir}: holds the checkpoints of an earlier training; pass --resume to continue '
                         'it, --overwrite to train afresh there (its checkpoints are removed), or another --work-dir')
    if load_from and osp.isfile(load_from):  # a file that is not a checkpoint: one line, now
        loaded = read_checkpoint(load_from)
        # MMEngine loads both leniently: a checkpoint of another model is refused here
        check_weights_fit(cfg, loaded, load_from, resume=bool(cfg.get('resume')))
    if not resuming and checkpoints:  # removed only once everything else is checked
        if load_from and is_inside(load_from, cfg.work_dir):
            raise InputError(f'--weights {cfg.load_from}: lies in the work dir whose checkpoints --overwrite removes; '
                             'copy it out first, or train in another --work-dir')
        removed = {osp.realpath(path) for path in checkpoints}
        for path in init_checkpoints(cfg.get('model')):  # e.g. a backbone pretrained from an earlier training
            if osp.realpath(path) in removed:
                raise InputError(f'{path}: an init_cfg checkpoint of the config lies in the work dir whose '
                                 'checkpoints --overwrite removes; copy it out first, or train in another --work-dir')
        for path in checkpoints + [osp.join(cfg.work_dir, 'last_checkpoint')]:  # a later --resume must not find them
            with contextlib.suppress(FileNotFoundError):  # every rank removes them: another may be first
                os.remove(path)
    runner = build_runner(cfg)
    runner.train()


def init_checkpoints(node):
    """The local files every ``init_cfg`` below ``node`` (the config's model) loads weights from (its
    ``checkpoint``; URLs and ``torchvision://``-style names left out)."""
    if isinstance(node, (list, tuple)):
        return [path for item in node for path in init_checkpoints(item)]
    if not isinstance(node, dict):
        return []
    own = node.get('checkpoint') if node.get('type') == 'Pretrained' else None
    return ([own] if isinstance(own, str) and '://' not in own else []) + [
        path for value in node.values() for path in init_checkpoints(value)]


def main(argv=None):
    args = parse_args(argv)
    if args.resume == 'auto' or args.weights == 'last':
        again = 'the same command again'
    elif args.resume or args.weights:  # they would start from that checkpoint (or those weights) again
        given = '--resume CKPT' if args.resume else f'--weights {args.weights}'
        again = f'it again with --resume in place of {given}'
    else:
        again = 'the same command with --resume'
    with exit_on_error(TOOL, args.debug, interrupted=f'the checkpoints saved so far are kept in the work dir; run '
                       f'{again} to continue'):
        run(args)


if __name__ == '__main__':
    main()
