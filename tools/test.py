"""Evaluate a trained particle segmentation model (MMDetection's ``tools/test.py`` conventions).

Usage:
    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--show-dir DIR]
                                          [--cfg-options k=v ...] [--launcher pytorch]

Prints COCO bbox and segm AP (and whatever else ``test_evaluator`` holds). ``--out`` dumps the raw
predictions (pickle) for later analysis; ``--show-dir`` writes prediction overlays under the work dir.
"""
import argparse
import os.path as osp

import libnet_mmdet  # noqa: F401  (registers our modules, allow-lists checkpoint objects for torch.load)
from libnet_mmdet.cli import add_runner_args, build_runner, load_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) an NMC particle segmentation model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump predictions to this pickle file (.pkl / .pickle)')
    parser.add_argument('--show', action='store_true', help='show prediction overlays in a window')
    parser.add_argument('--show-dir', help='write prediction overlays into this directory (under the work dir)')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds each --show window stays')
    add_runner_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    from mmdet.engine.hooks.utils import trigger_visualization_hook
    from mmdet.evaluation import DumpDetResults

    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint file not found: {args.checkpoint}')
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise SystemExit(f'--out must be a .pkl or .pickle file, got {args.out}')
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    runner = build_runner(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    main()
