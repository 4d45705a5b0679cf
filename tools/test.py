"""Evaluate a trained particle segmentation model (MMDetection's ``tools/test.py`` conventions).

Usage:
    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl [--overwrite]] [--show-dir DIR]
                                          [--cfg-options k=v ...] [--launcher pytorch] [--debug]

Prints COCO bbox and segm AP (and whatever else ``test_evaluator`` holds). ``--out`` dumps the raw
predictions (pickle) for later analysis; ``--show-dir`` writes prediction overlays under the work dir
(``WORK_DIR/<timestamp>/DIR``; a path outside it must be a new or empty folder, never one holding the test data),
one ``<image>[_<axis><index>].png`` per sample, drawn on the slice as the dataset reads it
(``visualization.TomoDetVisualizationHook``).
The checkpoint is checked against the config first (``init_segmenter``'s strict check: a checkpoint of another model
is refused instead of scoring a partly untrained one).
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config
from mmengine.dist import get_dist_info

import libnet_mmdet  # noqa: F401  (registers our modules, allow-lists checkpoint objects for torch.load)
from libnet_mmdet.apis import init_segmenter
from libnet_mmdet.cli import (add_debug_arg, add_overwrite_arg, add_runner_args, build_runner, check_dataset_files,
                              dataset_paths, exit_on_error, leaf_datasets, load_config)
from libnet_mmdet.io import (InputError, check_output_dir, check_output_file, check_outside_inputs, is_inside,
                             prepare_output_dir)
from libnet_mmdet.visualization import with_slice_keys

TOOL = osp.basename(__file__)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) an NMC particle segmentation model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump predictions to this pickle file (.pkl / .pickle)')
    parser.add_argument('--show', action='store_true', help='show prediction overlays in a window')
    parser.add_argument('--show-dir', help='write prediction overlays into this directory (under the work dir; a '
                        'path outside it must be new or empty, or emptied with --overwrite)')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds each --show window stays')
    add_overwrite_arg(parser, help='replace an existing --out file, empty a --show-dir outside the work dir')
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
    check_dataset_files(cfg, ('test',), args.config)
    model_paths = (args.config, args.checkpoint)  # never removed with the folder
    show_folder = check_show_dir(cfg, args.show_dir, args.overwrite, model_paths) if args.show_dir else None
    init_segmenter(cfg, args.checkpoint, device='cpu')  # a readable checkpoint of this config's model, or one line
    if show_folder:  # emptied only once the checkpoint is known to fit
        prepare_output_dir(show_folder, args.overwrite,
                           inputs=(*dataset_paths(cfg.test_dataloader.dataset), *model_paths))
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
        # each sample drawn on its own slice (of a stack), whatever its dtype, into a file of its own
        cfg.default_hooks.visualization.type = 'TomoDetVisualizationHook'
        for leaf in leaf_datasets(cfg.test_dataloader.dataset):
            leaf.pipeline = with_slice_keys(leaf.get('pipeline') or [])
    # MMEngine dumps the config to WORK_DIR/<config name>, the training's dump in the same (default) work dir; a
    # config without a file name goes to WORK_DIR/<timestamp>.py, beside this run's log folder
    runner = build_runner(Config(cfg.to_dict()))
    if args.out is not None:  # dumped next to --out, renamed when complete
        partial = f'{args.out}.partial.pkl'
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=partial))
    runner.test()
    if args.out is not None and get_dist_info()[0] == 0:  # DumpDetResults writes on rank 0 only
        os.replace(partial, args.out)


def check_show_dir(cfg, show_dir, overwrite, model_paths=()):
    """--show-dir: MMDetection writes the overlays to ``WORK_DIR/<timestamp>/show_dir``, which is new for every run
    unless ``show_dir`` leads out of that run folder (an absolute path, ``..``; ``../vis`` is ``WORK_DIR/vis``, the
    same for every run): then the folder it leads to must be a new or empty folder (or one of ours, emptied with
    ``overwrite``) that neither holds the test data or ``model_paths`` (the config and checkpoint) nor lies in the
    data's image folder.

    Returns:
        str | None: that folder (to be made with ``prepare_output_dir``), or None for a folder of this run's own.
    """
    run_folder = osp.join(cfg.work_dir, 'timestamp')  # stands for this run's WORK_DIR/<timestamp>
    target = osp.normpath(osp.join(run_folder, show_dir))
    if is_inside(target, run_folder):
        return None
    check_output_dir(target, overwrite, inputs=(*dataset_paths(cfg.test_dataloader.dataset), *model_paths))
    check_outside_inputs(target, dataset_paths(cfg.test_dataloader.dataset, data_root=False))
    return target


def main(argv=None):
    args = parse_args(argv)
    with exit_on_error(TOOL, args.debug, interrupted='the test stopped before its results; run the same command again'):
        run(args)


if __name__ == '__main__':
    main()
