"""Evaluate a trained particle segmentation model (MMDetection's ``tools/test.py`` conventions).

Usage:
    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl [--overwrite]] [--show-dir DIR]
                                          [--cfg-options k=v ...] [--launcher pytorch] [--debug]

Prints COCO bbox and segm AP (and whatever else ``test_evaluator`` holds). ``--out`` dumps the raw
predictions (pickle) for later analysis; ``--show-dir`` writes prediction overlays under the work dir.
"""
import argparse
import os.path as osp

import libnet_mmdet  # noqa: F401  (registers our modules, allow-lists checkpoint objects for torch.load)
from libnet_mmdet.cli import (add_debug_arg, add_overwrite_arg, add_runner_args, build_runner, exit_on_error,
                              load_config)
from libnet_mmdet.io import InputError, check_output_file

TOOL = osp.basename(__file__)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) an NMC particle segmentation model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump predictions to this pickle file (.pkl / .pickle)')
    parser.add_argument('--show', action='store_true', help='show prediction overlays in a window')
    parser.add_argument('--show-dir', help='write prediction overlays into this directory (under the work dir)')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds each --show window stays')
    add_overwrite_arg(parser, help='replace an existing --out file')
    add_runner_args(parser)
    add_debug_arg(parser)
    return parser.parse_args(argv)


def run(args):
    """Check the arguments and the config, then test."""
    from mmdet.engine.hooks.utils import trigger_visualization_hook
    from mmdet.evaluation import DumpDetResults

    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {args.checkpoint}')
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise InputError(f'--out {args.out}: must be a .pkl or .pickle file')
        check_output_file(args.out, args.overwrite, inputs=(args.config, args.checkpoint))
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    runner = build_runner(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    runner.test()


def main(argv=None):
    args = parse_args(argv)
    with exit_on_error(TOOL, args.debug, interrupted='the test stopped before its results; run the same command again'):
        run(args)


if __name__ == '__main__':
    main()
