"""Command-line plumbing shared by every tool in ``tools/``: common arguments, config loading, and the one way a
tool reports a user error or an interruption.

>>> parser = add_debug_arg(add_overwrite_arg(argparse.ArgumentParser()))
>>> args = parser.parse_args(argv)
>>> with exit_on_error('segment.py', args.debug, interrupted='finished slabs are kept in OUT.work; ...'):
...     run(args)

A user error (:data:`USER_ERRORS`: :class:`~libnet_mmdet.io.InputError` and the library's other ``ValueError``\\ s,
a file the system cannot read or write, memory running out, also on the GPU, a config ``type`` no registry holds)
ends the tool with one line ``<tool>: error: <file>: <problem>`` and exit status 1; Ctrl-C with one line saying what
was kept and how to continue, exit status 130, and SIGTERM (a batch system's time limit) the same way, status 143.
A ``ValueError`` or ``TypeError`` raised inside another library (numpy, mmengine) may be a bug of ours as well as
the user's; its line ends ``(--debug shows where it was raised)``. ``--debug`` shows the full traceback instead; any
other exception is a bug and shows its traceback as always.
"""
import argparse
import contextlib
import datetime
import math
import os
import os.path as osp
import signal
import sys
import threading
import traceback
import warnings

import numpy as np
import torch
from mmengine.config import DictAction

from .apis.model import is_device_name, read_config
from .io import InputError, is_inside

#: Exceptions that are the user's to fix, reported as one line: InputError (a ValueError) and the library's other
#: argument checks (ValueError), the file system (OSError: missing file, permission, full disk), memory (the
#: machine's, or the GPU's: torch's OutOfMemoryError), and the TypeError that ``io.check_labels`` and
#: ``analysis.check_phases`` still raise for a volume of the wrong dtype.
USER_ERRORS = (ValueError, OSError, MemoryError, TypeError, torch.cuda.OutOfMemoryError)
#: What torch's ``RuntimeError`` says when the CPU allocator cannot get the memory (:func:`is_out_of_memory`).
CPU_OUT_OF_MEMORY = ("DefaultCPUAllocator: can't allocate memory", 'DefaultCPUAllocator: not enough memory')
#: Environment variables a launcher sets in every process it starts (``LOCAL_RANK`` comes from ``--local_rank``
#: with old launchers); without them the process was not started by that launcher.
LAUNCHER_ENV = dict(pytorch=('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
                    slurm=('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'))
#: Exit status of a tool stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
INTERRUPTED_EXIT_STATUS = 130
#: ... and by SIGTERM (128 + SIGTERM): ``kill``, a batch system's time limit (SLURM sends it, then SIGKILL 30 s later).
TERMINATED_EXIT_STATUS = 143
#: the warning lines :func:`exit_on_error` has printed (each is printed once).
_SHOWN_WARNINGS = set()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread while a tool works (:func:`exit_on_error`), so that it stops as on Ctrl-C:
    ``finally`` blocks and context managers run (partial outputs removed, finished work kept)."""


def add_debug_arg(parser):
    """Add ``--debug``: show the full traceback of a user error or an interruption instead of one line."""
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error instead of one line (for bug reports)')
    return parser


def add_overwrite_arg(parser, help='replace existing outputs (an output folder of an earlier run is emptied '
                      'first); without it an existing output is an error'):
    """Add ``--overwrite`` (False when not given): the one switch that lets a tool replace what exists."""
    parser.add_argument('--overwrite', action='store_true', help=help)
    return parser


def positive_int(text):
    """``argparse`` type: an integer >= 1 (a 0 or negative value is refused while parsing, before any work)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer >= 1, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected an integer >= 1, got {text!r}')
    return value


def unit_fraction(text):
    """``argparse`` type: a number in [0, 1] (a score threshold; NaN and values outside refused while parsing)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number in [0, 1], got {text!r}') from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f'expected a number in [0, 1], got {text!r}')
    return value


def iou_threshold(text):
    """``argparse`` type: an IoU threshold, a number in (0, 1] (refused while parsing, before any work)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an IoU threshold in (0, 1], got {text!r}') from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f'expected an IoU threshold in (0, 1], got {text!r}')
    return value


def error_line(exc):
    """The one line that reports a user error: the exception's message (ours start with the file or argument; the
    lines of another library's message are joined with ``'; '``), or ``<file>: <reason>`` for an error of the
    operating system."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f'{exc.filename}: {exc.strerror}'
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)  # a KeyError's str quotes it
    message = '; '.join(line.strip() for line in text.splitlines() if line.strip())
    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)) or is_out_of_memory(exc):
        return f'out of memory ({message})' if message else 'out of memory'
    return message or type(exc).__name__


@contextlib.contextmanager
def exit_on_error(tool, debug=False, interrupted='nothing was finished; run the same command again', kept=None):
    """Run a tool's work: a user error (:data:`USER_ERRORS`) exits with one line and status 1, Ctrl-C with one line
    ``<tool>: interrupted: <interrupted>`` and status 130, SIGTERM likewise (``<tool>: terminated (SIGTERM): …``,
    status 143; it raises :class:`Terminated` where the tool is); with ``debug`` they propagate with their traceback.
    A warning of this package is one line, ``<tool>: warning: <message>``, shown once.

    Args:
        tool (str): the tool's name, first on the line (``'segment.py'``).
        debug (bool): ``--debug`` was given.
        interrupted (str): what was kept and how to continue, for the line printed on Ctrl-C.
        kept (str | callable | None): what is finished and how to do the rest, appended to a user error's line (a
            step after the main output was written); a callable is asked at the error, with it (None: nothing to
            add).
    """
    def terminate(signum, frame):
        raise Terminated()

    in_main_thread = threading.current_thread() is threading.main_thread()  # where Python runs signal handlers
    previous = signal.signal(signal.SIGTERM, terminate) if in_main_thread else None
    show_warning = warnings.showwarning
    if in_main_thread:  # one process-wide hook: a tool's thread, not a worker's
        warnings.showwarning = _plain_warnings(tool, show_warning)
    try:
        yield
    except KeyboardInterrupt as exc:
        if debug:
            raise
        how = 'terminated (SIGTERM)' if isinstance(exc, Terminated) else 'interrupted'
        print(f'{tool}: {how}: {interrupted}', file=sys.stderr, flush=True)
        raise SystemExit(TERMINATED_EXIT_STATUS if isinstance(exc, Terminated) else INTERRUPTED_EXIT_STATUS) from None
    except (*USER_ERRORS, KeyError, RuntimeError) as exc:
        if debug or (isinstance(exc, KeyError) and not is_registry_miss(exc)):  # any other KeyError is a bug
            raise
        if not isinstance(exc, USER_ERRORS + (KeyError,)) and not is_out_of_memory(exc):  # other RuntimeErrors: bugs
            raise
        note = kept(exc) if callable(kept) else kept
        where = '' if _names_its_cause(exc) else ' (--debug shows where it was raised)'
        raise SystemExit(f"{tool}: error: {error_line(exc)}{where}{f'; {note}' if note else ''}") from None
    finally:
        warnings.showwarning = show_warning
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _plain_warnings(tool, show_warning):
    """A ``warnings.showwarning`` that prints a warning of this package (a UserWarning raised in it) as
    ``<tool>: warning: <message>``, once
    (not with its source line, nor again when the file is opened a second time); others as ``show_warning`` does."""
    package = osp.dirname(osp.abspath(__file__))

    def show(message, category, filename, lineno, file=None, line=None):
        if not (issubclass(category, UserWarning) and is_inside(filename, package)):  # numpy's RuntimeWarnings too
            return show_warning(message, category, filename, lineno, file, line)
        text = f'{tool}: warning: {message}'
        if text not in _SHOWN_WARNINGS:  # over every exit_on_error block of the process
            _SHOWN_WARNINGS.add(text)
            print(text, file=sys.stderr if file is None else file, flush=True)
    return show


@contextlib.contextmanager
def exclusive_lock(path, what):
    """Hold an exclusive lock on the file ``path`` (created with its folder if missing, left in place; it records
    the holder's pid) while the block runs, so that a second ``what`` on the same files stops at once instead of
    writing beside the first. A filesystem that refuses locks gets a warning and no lock; on an NFS mount with
    ``local_lock`` the lock holds on one node only.

    Raises:
        InputError: another process holds the lock.
    """
    import fcntl
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'a+', encoding='utf-8') as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or 'another process'
            raise InputError(f'{path}: {what} is running already ({holder}); wait for it to end') from None
        except OSError as exc:  # a filesystem without locks (Lustre without -o flock, NFS without lockd)
            warnings.warn(f'{path}: cannot lock ({exc}); {what} goes on unguarded: run one at a time')
            locked = False
        if locked:
            f.seek(0)
            f.truncate()
            f.write(f'pid {os.getpid()}\n')
            f.flush()
        try:
            yield
        finally:
            if locked:
                fcntl.flock(f, fcntl.LOCK_UN)


def is_out_of_memory(exc):
    """Whether ``exc`` is torch's ``RuntimeError`` for an allocation the machine's memory cannot hold (on the CPU
    torch raises no ``MemoryError``: ``[enforce fail at alloc_cpu.cpp] ... DefaultCPUAllocator: can't allocate
    memory``)."""
    return isinstance(exc, RuntimeError) and any(text in str(exc) for text in CPU_OUT_OF_MEMORY)


def _names_its_cause(exc):
    """Whether a user error's line says all there is: ours (:class:`InputError`, or an error raised in this package
    or in ``tools/``: its message names the file or argument), the system's (a file, memory) and a config type no
    registry holds. A ValueError or TypeError raised inside another library may come from a bug of ours."""
    if (isinstance(exc, (InputError, OSError, MemoryError, torch.cuda.OutOfMemoryError)) or is_out_of_memory(exc)
            or is_registry_miss(exc)):
        return True
    frames = traceback.extract_tb(exc.__traceback__)
    package = osp.dirname(osp.abspath(__file__))
    return bool(frames) and any(is_inside(frames[-1].filename, folder)
                                for folder in (package, osp.join(osp.dirname(package), 'tools')))


def is_registry_miss(exc):
    """Whether ``exc`` is MMEngine's ``KeyError`` for a config ``type`` that no registry holds (a misspelt dataset,
    transform or model type in the user's config: the user's to fix)."""
    return isinstance(exc, KeyError) and 'is not in the' in str(exc) and 'registry' in str(exc)


def add_voxel_size_arg(parser, help='voxel edge in nm (or Z Y X edges); overrides the TIFF metadata'):
    """Add ``--voxel-size-nm``: one edge length in nm (cubic voxels) or three (Z Y X); None when not given."""
    parser.add_argument('--voxel-size-nm', type=float, nargs='+', metavar='NM', help=help)
    return parser


def add_phase_model_arg(parser):
    """Add ``--phase-model`` (default ``'auto'``): where the pore / carbon-binder / NMC phases come from
    (:func:`~libnet_mmdet.apis.phases.resolve_phase_model`)."""
    parser.add_argument('--phase-model', default='auto', metavar='DIR|auto|none',
                        help='phase model folder (config.py + model.pth); auto (default): models/phases of `make '
                        'model` when built; none: multi-Otsu phases of the image (approximate, flagged as such)')
    return parser


class _KeyValueAction(DictAction):
    """MMEngine's ``DictAction`` with a usage error for a word that is not ``key=value`` (it raised a ValueError)."""

    def __call__(self, parser, namespace, values, option_string=None):
        for word in values:
            if '=' not in word:
                raise argparse.ArgumentError(self, f'expected key=value pairs, got {word!r}')
        super().__call__(parser, namespace, values, option_string)


def add_cfg_options_arg(parser, help='override config settings, xxx=yyy pairs merged into the config, e.g. '
                        'train_cfg.max_epochs=2 "model.backbone.depth=50"'):
    """Add ``--cfg-options``: ``key=value`` pairs parsed by MMEngine's ``DictAction`` (None when not given; a word
    without ``=`` is a usage error)."""
    parser.add_argument('--cfg-options', nargs='+', action=_KeyValueAction, help=help)
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
    """Read ``args.config`` and apply ``--cfg-options``, ``--launcher`` and ``--work-dir`` as mmdet's tools do;
    ``--launcher slurm`` or ``mpi`` without CUDA raises :class:`~libnet_mmdet.io.InputError` before the config is read.

    The work dir defaults to ``./work_dirs/<config name>``. Raises FileNotFoundError naming a missing config and
    :class:`~libnet_mmdet.io.InputError` naming a file that is not a readable config
    (:func:`~libnet_mmdet.apis.model.read_config`).
    """
    if args.launcher not in ('none', 'pytorch') and not torch.cuda.is_available():
        raise _cpu_launcher_error(args.launcher)
    check_launcher_env(args.launcher)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = read_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def leaf_datasets(dataset_cfg):
    """The dataset configs that read files: ``dataset_cfg`` itself, or those a wrapper holds, however deep
    (MMEngine's ``RepeatDataset``, ``ClassBalancedDataset``, ``ConcatDataset``, MMDetection's
    ``MultiImageMixDataset``: their ``dataset`` / ``datasets``)."""
    for key in ('dataset', 'datasets'):
        inner = dataset_cfg.get(key)
        if isinstance(inner, dict):
            return leaf_datasets(inner)
        if isinstance(inner, (list, tuple)):
            return [leaf for one in inner for leaf in leaf_datasets(one)]
    return [dataset_cfg]


def dataset_paths(dataset_cfg, data_root=True):
    """The files and folders a dataset config reads (of every dataset a wrapper holds: :func:`leaf_datasets`): its
    ``data_root`` (with ``data_root``), the ``ann_file`` and the ``data_prefix`` folders (or files) under it. An
    output folder must hold none of them (:func:`~libnet_mmdet.io.check_output_dir`), and lie in none but the data
    root (:func:`~libnet_mmdet.io.check_outside_inputs` of those without it: a folder the dataset lists must not gain
    files)."""
    return [path for leaf in leaf_datasets(dataset_cfg) for _, path in _dataset_files(leaf, data_root)]


def _dataset_files(dataset_cfg, data_root=True):
    """(config key, path) of what one dataset config reads, as MMEngine joins them (an absolute path stays)."""
    root = dataset_cfg.get('data_root') or ''
    files = [('data_root', root)] if root and data_root else []
    if dataset_cfg.get('ann_file'):
        files.append(('ann_file', osp.join(root, dataset_cfg['ann_file'])))
    return files + [(f'data_prefix.{key}', osp.join(root, prefix)) for key, prefix in
                    (dataset_cfg.get('data_prefix') or {}).items() if isinstance(prefix, str) and prefix]


def check_dataset_files(cfg, splits, config_name):
    """Raise FileNotFoundError for the first file or folder that the ``<split>_dataloader`` datasets or the
    ``<split>_evaluator`` of ``cfg`` read and that does not exist, naming the config key: a wrong data path is one
    line before any model is built or any work dir written (the datasets check the rest when the Runner builds
    them). Splits without a dataloader, and remote paths (``s3://...``), are not checked.

    Args:
        cfg (mmengine.Config): the tool's config (after ``--cfg-options``).
        splits (tuple[str]): ``'train'``, ``'val'``, ``'test'``.
        config_name (str): the config file, for the message.
    """
    for split in splits:
        dataloader = cfg.get(f'{split}_dataloader') or {}
        if not isinstance(dataloader.get('dataset'), dict):
            continue
        files = [(f'{split}_dataloader.dataset {key}', path) for leaf in leaf_datasets(dataloader.dataset)
                 for key, path in _dataset_files(leaf)]
        evaluators = cfg.get(f'{split}_evaluator') or []
        for evaluator in evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]:
            if isinstance(evaluator, dict) and isinstance(evaluator.get('ann_file'), str):
                files.append((f'{split}_evaluator ann_file', evaluator['ann_file']))
        for key, path in files:
            if '://' not in path and not osp.exists(path):
                raise FileNotFoundError(f'{config_name}: {key} not found: {path} (README, "Train on your data": a '
                                        'config of your own points at your data)')


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


def _cpu_launcher_error(launcher):
    """The one line for a launcher other than torchrun on CPUs (MMEngine's Slurm path sets a CUDA device)."""
    return InputError(f'--launcher {launcher} needs CUDA; on CPUs start the job with torchrun (tools/dist_train.sh, '
                      'dist_test.sh or dist_segment.sh: --launcher pytorch)')


def check_launcher_env(launcher):
    """Raise :class:`~libnet_mmdet.io.InputError` when this process was not started by ``launcher`` (torchrun for
    ``'pytorch'``, srun for ``'slurm'``): one of its :data:`LAUNCHER_ENV` variables is missing."""
    missing = [name for name in LAUNCHER_ENV.get(launcher, ()) if name not in os.environ]
    if missing:
        starter = 'torchrun (tools/dist_*.sh)' if launcher == 'pytorch' else 'srun (tools/slurm_*.sh)'
        raise InputError(f"--launcher {launcher}: {', '.join(missing)} not set; start the job with {starter}, or "
                         'leave --launcher out for one process')


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
        check_launcher_env(launcher)
        from mmengine.dist import init_dist
        init_dist(launcher, backend='nccl', timeout=timeout_s)
        return f'cuda:{torch.cuda.current_device()}'
    if launcher != 'pytorch':
        raise _cpu_launcher_error(launcher)
    check_launcher_env(launcher)
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


def auto_or(number):
    """``argparse`` type of a word that is ``'auto'`` or a ``number`` (``int``: ``--min-voxels``, ``float``: one
    ``--scale`` word)."""
    def parse(value):
        if value == 'auto':
            return value
        try:
            return number(value)
        except ValueError:
            kind = 'a whole number' if number is int else 'a number'
            raise argparse.ArgumentTypeError(f"expected 'auto' or {kind}, got {value!r}") from None
    return parse


def device_name(text):
    """``argparse`` type: 'cpu', 'cuda' or 'cuda:N' (a typo such as 'gpu' is refused while parsing)."""
    if is_device_name(text):
        return text
    raise argparse.ArgumentTypeError(f"expected 'cpu', 'cuda' or 'cuda:N', got {text!r}")


def usable_cores():
    """CPU cores this process may run on: its affinity where the OS tells it (a SLURM job's cores, ``docker
    --cpuset-cpus``), else all, and no more than its cgroup's CPU quota allows (``docker --cpus 4``: the quota
    rounded up; v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``, the tightest along its cgroup path)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
    quotas = _cgroup_values('cpu', _cpu_quota)
    return max(1, min([cores, *(math.ceil(quota) for quota in quotas)]))


def wait_through_interrupts(child):
    """``child.wait()`` until the child has ended, through a first Ctrl-C (the terminal sends it to the child too,
    which stops on it), then that interrupt raised again; a second Ctrl-C leaves at once (a child that does not
    stop). Without this the tool said "interrupted: run again" and exited while the child still wrote its last
    checkpoint, for a rerun to meet (``Popen``'s exit waits 0.25 s)."""
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.wait()
        raise


def run_train_tool(config, work_dir, device='cpu', ranks=1):
    """Train ``config`` with ``tools/train.py`` in a child process (the README's training command), resuming from
    ``work_dir``'s last checkpoint when an earlier run was interrupted.

    Args:
        config (str): config file.
        work_dir (str): checkpoints and logs.
        device (str): 'cpu' hides CUDA from the child, 'cuda:N' shows it GPU N only, 'cuda' leaves
            CUDA_VISIBLE_DEVICES as it is (:func:`device_name`).
        ranks (int): processes on this machine; above 1 the training runs under torchrun (``--standalone``,
            ``--launcher pytorch``: gloo on CPUs), each process with its share of the cores as threads unless
            ``OMP_NUM_THREADS`` is set. The config's ``train_dataloader.batch_size`` is then per process.

    Returns:
        float: seconds the training took.

    Raises:
        ChildProcessError: training failed (its message is printed above by the child).
    """
    import subprocess
    import time
    train_py = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools', 'train.py')
    command = [sys.executable, train_py, config, '--work-dir', work_dir]
    env = dict(os.environ)
    if ranks > 1:
        command[1:1] = ['-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={ranks}']
        command += ['--launcher', 'pytorch']
        env.setdefault('OMP_NUM_THREADS', str(max(1, usable_cores() // ranks)))
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        command.append('--resume')  # an interrupted run continues from its last checkpoint
    if device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    elif device.startswith('cuda:'):
        env['CUDA_VISIBLE_DEVICES'] = device.split(':')[1]
    print(' '.join(command), flush=True)
    started = time.time()
    with subprocess.Popen(command, env=env) as child:
        # `kill` of this process stops the training too (left running, it wrote on into the work dir a rerun resumes
        # from); Ctrl-C reaches the child from the terminal, and this process waits for it to end
        forward = threading.current_thread() is threading.main_thread()
        terminated = []

        def pass_on(signum, frame):  # this process stops as on SIGTERM (Terminated) once the child has ended
            terminated.append(signum)
            child.terminate()

        previous = signal.signal(signal.SIGTERM, pass_on) if forward else None
        try:
            returncode = wait_through_interrupts(child)
        finally:
            if forward:
                signal.signal(signal.SIGTERM, previous)
    if terminated:
        raise Terminated()
    if returncode:
        raise ChildProcessError(f'{" ".join(command)}: exited with status {returncode} (its message is above)')
    return time.time() - started


def available_memory_bytes():
    """Bytes of memory a new allocation can use now: ``MemAvailable`` of ``/proc/meminfo`` (Linux), else the
    physical memory; no more than the memory limit of this process's cgroup leaves (a SLURM job's ``--mem``, ``docker
    --memory``: the limit less the memory in use that cannot be reclaimed; v2 ``memory.max``, v1
    ``memory.limit_in_bytes``, the tightest along its cgroup path), which the kernel enforces by killing the job."""
    available = None
    try:
        with open('/proc/meminfo', encoding='ascii') as meminfo:
            for line in meminfo:
                if line.startswith('MemAvailable:'):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if available is None:
        available = os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
    return max(0, min([available, *_cgroup_values('memory', _memory_room)]))


#: Where the cgroup file systems are mounted, and the file naming this process's cgroups (Linux).
CGROUP_ROOT = '/sys/fs/cgroup'
PROC_SELF_CGROUP = '/proc/self/cgroup'
#: cgroup v1 writes "no limit" as a number near 2 ** 63 (the largest page count times the page size).
_CGROUP_V1_UNLIMITED = 2 ** 62


def _cgroup_values(controller, read):
    """``read(folder, version)`` of every folder of this process's cgroup of ``controller`` ('memory' or 'cpu'), from
    the mount's root down to its own (v2, or v1 ``CGROUP_ROOT/<controller>``), the ``None`` values left out; ``[]``
    where the system has no cgroups. A container's cgroup namespace shows its own cgroup as the root."""
    try:
        with open(PROC_SELF_CGROUP, encoding='utf-8') as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    values = []
    for line in lines:
        hierarchy, controllers, path = (line.split(':', 2) + ['', ''])[:3]
        if hierarchy == '0' and not controllers:
            mount, version = CGROUP_ROOT, 2
        elif controller in controllers.split(','):
            mount, version = osp.join(CGROUP_ROOT, controllers), 1
            if not osp.isdir(mount):  # mounted as 'cpu,cpuacct' with a 'cpu' link on most systems
                mount = osp.join(CGROUP_ROOT, controller)
        else:
            continue
        parts = [part for part in path.split('/') if part]
        if '..' in parts:  # a cgroup outside this process's cgroup namespace: only the mount's root is ours
            parts = []
        for depth in range(len(parts) + 1):
            folder = osp.join(mount, *parts[:depth])
            if osp.isdir(folder):
                value = read(folder, version)
                if value is not None:
                    values.append(value)
    return values


def _read_cgroup_file(folder, name):
    try:
        with open(osp.join(folder, name), encoding='ascii') as f:
            return f.read().split()
    except (OSError, UnicodeDecodeError):
        return None


def _memory_room(folder, version):
    """Bytes a cgroup's memory limit leaves: the limit less its usage without the inactive file cache (the
    kernel reclaims that first); ``None`` without a limit."""
    limit, usage, stat = (_read_cgroup_file(folder, name) for name in (
        ('memory.max', 'memory.current', 'memory.stat') if version == 2 else
        ('memory.limit_in_bytes', 'memory.usage_in_bytes', 'memory.stat')))
    if not limit or not limit[0].isdigit() or int(limit[0]) >= _CGROUP_V1_UNLIMITED:  # v2 writes 'max'
        return None
    used = int(usage[0]) if usage and usage[0].isdigit() else 0
    stat = dict(zip(stat[::2], stat[1::2])) if stat else {}
    cache = stat.get('inactive_file' if version == 2 else 'total_inactive_file', '0')
    return int(limit[0]) - max(0, used - (int(cache) if cache.isdigit() else 0))


def _cpu_quota(folder, version):
    """Cores a cgroup's CPU quota amounts to (quota / period, a float); ``None`` without a quota."""
    if version == 2:
        quota_period = _read_cgroup_file(folder, 'cpu.max')  # 'max 100000' or '400000 100000'
    else:
        quota_period = [(_read_cgroup_file(folder, name) or [''])[0] for name in ('cpu.cfs_quota_us',
                                                                                    'cpu.cfs_period_us')]
    if not quota_period or len(quota_period) < 2 or not all(text.isdigit() for text in quota_period[:2]):
        return None  # v1 writes -1 for no quota
    quota, period = (int(text) for text in quota_period[:2])
    return quota / period if quota > 0 and period > 0 else None


def check_memory(n_bytes, what, advice='choose a smaller size'):
    """Raise :class:`~libnet_mmdet.io.InputError` (before anything is allocated) when ``n_bytes`` exceed
    :func:`available_memory_bytes`; ``what`` names the request, e.g. ``'--shape 2048 2048 2048'``, ``advice`` ends
    the line."""
    available = available_memory_bytes()
    if n_bytes > available:
        raise InputError(f'{what}: needs at least {n_bytes / 2 ** 30:.1f} GiB of memory, {available / 2 ** 30:.1f} '
                         f'GiB are available; {advice}')


#: Bytes per voxel the phase model holds while it predicts a volume (``predict_phases``: the summed float32
#: probabilities of three phases, the masks and argmax taken from them; 17 measured in all, with a margin).
PHASE_MODEL_BYTES_PER_VOXEL = 20


def report_memory_bytes(shape_zyx, dtypes, phase_model):
    """The least memory a particle report of a (Z, Y, X) volume holds at once (``analyze.py``, ``segment.py
    --report``): one array of each of ``dtypes`` (the labels, the image), the uint8 phases, and
    :data:`PHASE_MODEL_BYTES_PER_VOXEL` more when ``phase_model`` predicts them. The statistics add their own."""
    per_voxel = sum(np.dtype(dtype).itemsize for dtype in dtypes) + 1 + (PHASE_MODEL_BYTES_PER_VOXEL if phase_model
                                                                          else 0)
    return math.prod(shape_zyx) * per_voxel
