"""Command-line plumbing shared by ``tools/train.py``, ``tools/test.py`` and the other tools."""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction


def add_runner_args(parser):
    """Add the arguments every MMDetection-style tool takes: ``--work-dir``, ``--cfg-options``, ``--launcher``."""
    parser.add_argument('--work-dir', help='the directory to save logs, checkpoints and results')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, xxx=yyy pairs merged into the config, e.g. '
        'train_cfg.max_epochs=2 "model.backbone.depth=50"')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher (pytorch = torchrun)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)  # set by old launchers
    return parser


def load_config(args):
    """Read ``args.config`` and apply ``--cfg-options``, ``--launcher`` and ``--work-dir`` as mmdet's tools do.

    The work dir defaults to ``./work_dirs/<config name>``. Raises FileNotFoundError naming the config path.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def build_runner(cfg):
    """``mmengine.Runner`` from a config, honouring a custom ``runner_type`` like mmdet's tools."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)
