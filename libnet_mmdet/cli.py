"""Command-line plumbing shared by ``tools/train.py``, ``tools/test.py`` and the other tools."""
import argparse
import datetime
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction


def add_voxel_size_arg(parser, help='voxel edge in nm (or Z Y X edges); overrides the TIFF metadata'):
    """Add ``--voxel-size-nm``: one edge length in nm (cubic voxels) or three (Z Y X); None when not given."""
    parser.add_argument('--voxel-size-nm', type=float, nargs='+', metavar='NM', help=help)
    return parser


def add_cfg_options_arg(parser, help='override config settings, xxx=yyy pairs merged into the config, e.g. '
                        'train_cfg.max_epochs=2 "model.backbone.depth=50"'):
    """Add ``--cfg-options``: ``key=value`` pairs parsed by MMEngine's ``DictAction`` (None when not given)."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help=help)
    return parser


def add_launcher_arg(parser, choices=('none', 'pytorch', 'slurm', 'mpi'), help='job launcher (pytorch = torchrun)'):
    """Add ``--launcher`` (default 'none') and the hidden ``--local_rank`` that old launchers pass."""
    parser.add_argument('--launcher', choices=list(choices), default='none', help=help)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)
    return parser


def add_runner_args(parser):
    """Add the arguments every MMDetection-style tool takes: ``--work-dir``, ``--cfg-options``, ``--launcher``."""
    parser.add_argument('--work-dir', help='the directory to save logs, checkpoints and results')
    add_cfg_options_arg(parser)
    add_launcher_arg(parser)
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


def _init_gloo(timeout_s):
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo', timeout=datetime.timedelta(seconds=timeout_s))


def setup_cpu_distributed(cfg):
    """Run a torchrun job on CPUs (gloo) when there is no CUDA; on GPUs MMEngine's NCCL path is untouched.

    MMEngine's ``init_dist`` always calls ``torch.cuda.set_device`` and its default DDP wrapper passes
    ``device_ids=[LOCAL_RANK]``; both fail on CPU-only torch. The runner skips its own initialisation when a
    process group exists, so this starts one with gloo and wraps the model with ``device_ids=None``.
    """
    if cfg.launcher != 'pytorch' or torch.cuda.is_available():
        return
    _init_gloo(cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout', 1800))
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                                     find_unused_parameters=cfg.get('find_unused_parameters', False))


def init_distributed(launcher, device, timeout_s=3 * 3600):
    """Join the process group of a distributed job for tools that run without a Runner (``segment.py``).

    Args:
        launcher (str): 'none', 'pytorch' (torchrun) or 'slurm' (srun).
        device (str): the requested device; ``cuda``/``cuda:N`` becomes this process's ``cuda:LOCAL_RANK``.
        timeout_s (int): how long a rank waits for the others at a barrier (rank 0 may copy a page-wise input
            before the others start).

    Returns:
        str: the device this process uses. CUDA jobs use NCCL through MMEngine's ``init_dist``; CPU jobs gloo
        (torchrun only: MMEngine's Slurm path needs CUDA).
    """
    if launcher == 'none':
        return device
    if device.startswith('cuda') and torch.cuda.is_available():
        from mmengine.dist import init_dist
        init_dist(launcher, backend='nccl', timeout=timeout_s)
        return f'cuda:{torch.cuda.current_device()}'
    if launcher != 'pytorch':
        raise RuntimeError(f'--launcher {launcher} needs CUDA; on CPUs start the job with torchrun '
                           '(tools/dist_segment.sh, --launcher pytorch)')
    _init_gloo(timeout_s)
    return device


def build_runner(cfg):
    """``mmengine.Runner`` from a config, honouring a custom ``runner_type`` like mmdet's tools.

    Distributed jobs without CUDA run on CPUs with the gloo backend (:func:`setup_cpu_distributed`).
    """
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    setup_cpu_distributed(cfg)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)
