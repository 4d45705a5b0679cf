"""libnet_mmdet.cli: one line per user error, Ctrl-C, config reading (issue 17, defect 5) and a fuzz test of the
config and command-line arguments: any input either loads or raises InputError naming the file or argument."""
import argparse
import json
import os
import sys
import threading

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from helpers import REPO_ROOT, TINY_CONFIG, import_tool
from libnet_mmdet import cli
from libnet_mmdet.apis import read_config
from libnet_mmdet.io import InputError


@pytest.mark.parametrize('error, line', [
    (InputError('stack.tif [z=3]: 2 NaN/Inf pixels'), 'tool.py: error: stack.tif [z=3]: 2 NaN/Inf pixels'),
    (FileNotFoundError('config file not found: a.py'), 'tool.py: error: config file not found: a.py'),
    (PermissionError(13, 'Permission denied', '/out/labels.tif'), 'tool.py: error: /out/labels.tif: Permission denied'),
    (MemoryError('Unable to allocate 8.00 GiB'), 'tool.py: error: out of memory (Unable to allocate 8.00 GiB)'),
    (TypeError("unsupported operand type(s) for +: 'int' and 'str'"),  # a library's, or a bug of ours
     "tool.py: error: unsupported operand type(s) for +: 'int' and 'str' (--debug shows where it was raised)"),
])
def test_a_user_error_is_one_line(error, line):
    with pytest.raises(SystemExit) as info:
        with cli.exit_on_error('tool.py'):
            raise error
    assert info.value.code == line
    with pytest.raises(type(error)):  # --debug: the exception itself, with its traceback
        with cli.exit_on_error('tool.py', debug=True):
            raise error


@pytest.mark.parametrize('bug', [KeyError('x'), AttributeError('y'), RuntimeError('z'), AssertionError()])
def test_a_bug_keeps_its_traceback(bug):
    with pytest.raises(type(bug)):
        with cli.exit_on_error('tool.py'):
            raise bug


def test_ctrl_c_is_one_line_and_status_130(capsys):
    with pytest.raises(SystemExit) as info:
        with cli.exit_on_error('tool.py', interrupted='half the slabs are kept in x.work; run it again'):
            raise KeyboardInterrupt
    assert info.value.code == cli.INTERRUPTED_EXIT_STATUS == 130
    assert capsys.readouterr().err == 'tool.py: interrupted: half the slabs are kept in x.work; run it again\n'
    with pytest.raises(KeyboardInterrupt):
        with cli.exit_on_error('tool.py', debug=True):
            raise KeyboardInterrupt


def test_positive_int_refuses_zero_while_parsing(capsys):
    parser = argparse.ArgumentParser(prog='tool.py')
    parser.add_argument('--n', type=cli.positive_int)
    assert parser.parse_args(['--n', '3']).n == 3
    for bad in ('0', '-2', '1.5', 'x'):
        with pytest.raises(SystemExit):
            parser.parse_args(['--n', bad])
        assert f'argument --n: expected an integer >= 1, got {bad!r}' in capsys.readouterr().err


def test_check_memory(monkeypatch):
    assert cli.available_memory_bytes() > 0
    monkeypatch.setattr(cli, 'available_memory_bytes', lambda: 2 ** 30)
    cli.check_memory(2 ** 29, '--shape 8 8 8')
    with pytest.raises(InputError, match=r'--shape 9 9 9: needs at least 2.0 GiB of memory, 1.0 GiB are available'):
        cli.check_memory(2 ** 31, '--shape 9 9 9')


def _fake_cgroups(monkeypatch, tmp_path, proc_lines, files):
    """A cgroup tree under ``tmp_path`` (``files``: path relative to the mount -> text) and /proc/self/cgroup."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / 'self_cgroup').write_text(''.join(line + '\n' for line in proc_lines))
    monkeypatch.setattr(cli, 'CGROUP_ROOT', str(tmp_path))
    monkeypatch.setattr(cli, 'PROC_SELF_CGROUP', str(tmp_path / 'self_cgroup'))


def test_a_cgroup_v2_memory_limit_and_cpu_quota_bound_what_a_tool_plans_for(monkeypatch, tmp_path):
    """A SLURM job's --mem or docker --memory: /proc/meminfo shows the whole machine, the kernel kills the job at its
    cgroup's limit; the room is the limit less the usage that cannot be reclaimed (inactive file cache can)."""
    machine_cores = cli.usable_cores()
    _fake_cgroups(monkeypatch, tmp_path, ['0::/user.slice/job_1'], {
        'user.slice/memory.max': 'max\n',
        'user.slice/job_1/memory.max': f'{64 * 2 ** 20}\n',
        'user.slice/job_1/memory.current': f'{24 * 2 ** 20}\n',
        'user.slice/job_1/memory.stat': f'anon {8 * 2 ** 20}\ninactive_file {16 * 2 ** 20}\nactive_file 0\n',
        'user.slice/job_1/cpu.max': '50000 100000\n',  # half a core
    })
    assert cli.available_memory_bytes() == (64 - 8) * 2 ** 20
    assert cli.usable_cores() == 1
    with pytest.raises(InputError, match=r'needs at least 0.1 GiB of memory, 0.1 GiB are available'):
        cli.check_memory(57 * 2 ** 20 + 2 ** 26, '--shape 9 9 9')
    (tmp_path / 'user.slice/memory.max').write_text(f'{32 * 2 ** 20}\n')  # the tighter parent counts
    (tmp_path / 'user.slice/memory.current').write_text(f'{2 ** 20}\n')
    assert cli.available_memory_bytes() == 31 * 2 ** 20
    (tmp_path / 'user.slice/job_1/cpu.max').write_text('max 100000\n')
    assert cli.usable_cores() == machine_cores


def test_a_cgroup_v1_limit_counts_and_no_limit_or_no_cgroups_changes_nothing(monkeypatch, tmp_path):
    unlimited = '9223372036854771712\n'
    before = cli.usable_cores()
    _fake_cgroups(monkeypatch, tmp_path, ['4:memory:/slurm/uid_1/job_2', '3:cpu,cpuacct:/slurm/uid_1/job_2', '0::/'], {
        'memory/memory.limit_in_bytes': unlimited,
        'memory/slurm/uid_1/job_2/memory.limit_in_bytes': f'{512 * 2 ** 20}\n',
        'memory/slurm/uid_1/job_2/memory.usage_in_bytes': f'{100 * 2 ** 20}\n',
        'memory/slurm/uid_1/job_2/memory.stat': 'cache 0\ntotal_inactive_file 0\n',
        'cpu,cpuacct/slurm/uid_1/job_2/cpu.cfs_quota_us': '-1\n',
        'cpu,cpuacct/slurm/uid_1/job_2/cpu.cfs_period_us': '100000\n',
    })
    assert cli.available_memory_bytes() == 412 * 2 ** 20
    assert cli.usable_cores() == before  # -1: no quota
    (tmp_path / 'cpu,cpuacct/slurm/uid_1/job_2/cpu.cfs_quota_us').write_text('100000\n')
    assert cli.usable_cores() == 1
    (tmp_path / 'memory/slurm/uid_1/job_2/memory.limit_in_bytes').write_text(unlimited)
    assert cli.available_memory_bytes() > 412 * 2 ** 20  # the machine's again
    monkeypatch.setattr(cli, 'PROC_SELF_CGROUP', str(tmp_path / 'nowhere'))  # macOS, or no cgroups
    assert cli.available_memory_bytes() > 0 and cli.usable_cores() == before


BAD_CONFIGS = {
    'syntax.py': ('model = dict(\n', 'cannot read this config (SyntaxError'),
    'undefined.py': ('model = dict(type=MaskRCNN)\n', 'cannot read this config (NameError'),
    'base.py': ("_base_ = 'nowhere.py'\n", 'cannot read this config'),
    'list.yaml': ('- 1\n- 2\n', 'cannot read this config'),
    'broken.json': ('{"model": ', 'cannot read this config'),
    'weights.pth': ('PK\x03\x04', 'not a config file (expected .py, .json, .yaml, .yml)'),
    'notes.txt': ('hello', 'not a config file'),
}


@pytest.mark.parametrize('name', sorted(BAD_CONFIGS))
def test_a_bad_config_is_one_input_error_naming_it(tmp_path, name):
    """Issue 17, defect 5: a config with a syntax error or a non-config path gave a raw traceback."""
    text, message = BAD_CONFIGS[name]
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_config(path)
    assert str(info.value).startswith(f'{path}: ') and message in str(info.value)


def test_train_and_test_tools_report_a_bad_config_in_one_line(tmp_path):
    path = tmp_path / 'syntax.py'
    path.write_text('model = dict(\n')
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'x')
    for tool, argv in (('train.py', [str(path)]), ('test.py', [str(path), str(checkpoint)])):
        with pytest.raises(SystemExit) as info:
            import_tool(tool[:-len('.py')]).main(argv + ['--work-dir', str(tmp_path / 'work')])
        assert info.value.code.startswith(f'{tool}: error: {path}: cannot read this config (SyntaxError')
        assert '\n' not in info.value.code


def test_cfg_options_that_do_not_fit_are_named():
    with pytest.raises(InputError, match=r'cfg_options \(--cfg-options\) .*do not fit the config .*cpu-tiny.py'):
        read_config(TINY_CONFIG, {'model.backbone.depth.x': 1})


# ---- fuzz: config files -------------------------------------------------------------------------------------------

CONFIG_LINES = st.sampled_from([
    f'_base_ = {str(TINY_CONFIG)!r}', "_base_ = 'missing.py'", "_base_ = ['a.py', 3]", 'model = dict(type="MaskRCNN")',
    'model = dict(', 'x = undefined_name', 'import os', 'y = 1 / 0', 'train_dataloader = [1, 2]',
    "model = dict(backbone=dict(depth='{{ _base_.model.backbone.depth }}'))", 'del x', '"""', 'if True:',
    'z = {{ _base_.nothing }}', 'model = None', "custom_imports = dict(imports=['no_such_module'])",
])
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
                           lambda children: st.lists(children, max_size=3)
                           | st.dictionaries(st.text(max_size=5), children, max_size=3), max_leaves=8)
config_texts = (st.lists(CONFIG_LINES, max_size=4).map('\n'.join) | st.text(max_size=40)
                | json_values.map(json.dumps))


@pytest.fixture(scope='module')
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('fuzz_config')


@settings(max_examples=60, deadline=None)
@given(text=config_texts, suffix=st.sampled_from(['.py', '.json', '.yaml', '.yml', '.txt', '.pth', '']),
       options=st.none() | st.dictionaries(st.sampled_from(['model.backbone.depth', 'model.backbone.depth.x', 'a.b',
                                                             'train_dataloader.dataset.pipeline.99.type']),
                                           json_values, max_size=2))
def test_fuzzed_configs_load_or_name_the_file(fuzz_dir, text, suffix, options):
    path = fuzz_dir / f'fuzz{suffix}'
    path.write_text(text)
    try:
        config = read_config(path, options)
    except InputError as exc:
        assert str(path) in str(exc) and '\n' not in str(exc)
        event('refused')
    else:
        assert config.filename == str(path)
        event('loaded')


# ---- fuzz: segment.py arguments -----------------------------------------------------------------------------------

NUMBERS = st.sampled_from(['0', '-1', '1', '2', '16', '255', '0.5', '1.5', '1e9', 'nan', 'inf', '-inf', 'x', ''])
OPTIONS = ['--slab', '--min-voxels', '--score-thr', '--scale', '--batch-size', '--tile-size', '--overlap',
           '--voxel-size-nm', '--overlay-step']
ARGUMENT_NAMES = ('slab', 'min_voxels', 'score_thr', 'scale', 'batch_size', 'tile_size', 'overlap',
                  'voxel_size_nm', 'views', '--overlay-step')  # --overlay-step without --overlays is refused


@pytest.fixture(scope='module')
def segment_setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp('fuzz_segment')
    tifffile.imwrite(folder / 'stack.tif', np.zeros((4, 16, 16), np.uint8), photometric='minisblack')
    return import_tool('segment'), folder


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chosen=st.dictionaries(st.sampled_from(OPTIONS), st.lists(NUMBERS, min_size=1, max_size=3), max_size=5),
       views=st.lists(st.sampled_from(['xy', 'xz', 'yz']), min_size=1, max_size=3))
def test_fuzzed_segment_arguments_are_accepted_or_refused_in_one_line(segment_setup, chosen, views):
    """Checked before any model or data: argparse refuses malformed values (exit 2), the rest is accepted or an
    InputError naming the argument; nothing is ever written."""
    tool, folder = segment_setup
    argv = [str(folder / 'stack.tif'), '--config', 'c.py', '--checkpoint', 'c.pth', '--out',
            str(folder / 'labels.tif'), '--views', *views]
    for option, values in chosen.items():
        argv += [option, *(values if option == '--voxel-size-nm' else values[:1])]
    try:
        args = tool.parse_args(argv)
    except SystemExit as exc:
        assert exc.code == 2
        event('refused by argparse')
        return
    try:
        kwargs = tool.check_args(args)
    except InputError as exc:
        assert str(exc).startswith(ARGUMENT_NAMES), str(exc)
        event('refused by check_args')
    else:
        assert kwargs['slab'] >= 1 and 0 <= kwargs['score_thr'] <= 1
        event('accepted')
    assert sorted(os.listdir(folder)) == ['stack.tif']


def test_only_an_error_raised_outside_our_code_points_to_debug():
    """Ours name the file or argument; numpy's (or a bug of ours that a library trips over) may need the traceback."""
    from libnet_mmdet.evaluation.matching import check_thresholds

    for work, hint in ((lambda: check_thresholds([2]), False), (lambda: np.zeros(2) + np.zeros(3), True)):
        with pytest.raises(SystemExit) as info:
            with cli.exit_on_error('tool.py'):
                work()
        assert info.value.code.endswith(' (--debug shows where it was raised)') is hint, info.value.code


def test_a_warning_of_ours_is_one_line_shown_once_and_others_as_python_shows_them(tmp_path, capsys, monkeypatch):
    """An ImageJ frames stack warned with its source line, and again each time a tool opened the file (twice in
    segment.py); another library's warning goes to Python's display, and the tool's blocks leave it as it was."""
    from libnet_mmdet.io import open_volume
    frames = tmp_path / 'frames.tif'
    tifffile.imwrite(frames, np.zeros((3, 8, 8), np.uint8), imagej=True, metadata={'axes': 'TYX'})
    shown_by_python = []
    monkeypatch.setattr(cli.warnings, 'showwarning', lambda message, *args, **kwargs: shown_by_python.append(
        str(message)))
    before = cli.warnings.showwarning
    for _ in range(2):  # as segment.py's two blocks
        with cli.exit_on_error('tool.py'):
            open_volume(frames).close()
            open_volume(frames).close()
            cli.warnings.warn_explicit('a numpy warning', UserWarning, np.__file__, 1)
            cli.warnings.warn_explicit('invalid value encountered', RuntimeWarning, cli.__file__, 1)  # numpy's
    assert cli.warnings.showwarning is before
    ours = capsys.readouterr().err.splitlines()
    assert len(ours) == 1 and ours[0].startswith(f'tool.py: warning: {frames}: its 3 images are stored as time points')
    assert shown_by_python and set(shown_by_python) == {'a numpy warning', 'invalid value encountered'}

    hooks = []

    def in_a_thread():  # a worker's block leaves the process-wide hook alone
        with cli.exit_on_error('worker.py'):
            hooks.append(cli.warnings.showwarning)
    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join()
    assert hooks == [before]


def test_a_message_of_several_lines_becomes_one():
    with pytest.raises(SystemExit) as info:
        with cli.exit_on_error('tool.py'):
            raise ValueError('first\n  second\n\nthird')
    assert info.value.code == 'tool.py: error: first; second; third (--debug shows where it was raised)'


def test_run_train_tool_runs_torchrun_for_several_processes(monkeypatch, tmp_path):
    """``ranks`` > 1: ``tools/train.py`` under torchrun (``--standalone``, ``--launcher pytorch``), each process with
    its share of the cores unless OMP_NUM_THREADS says otherwise; resumes from the work dir's last checkpoint."""
    import subprocess
    calls = []

    class Child:
        def __init__(self, command, env):
            calls.append((command, env))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def wait(self):
            return 0
    monkeypatch.setattr(subprocess, 'Popen', Child)
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    cli.run_train_tool('train_config.py', str(tmp_path), 'cpu')
    (tmp_path / 'last_checkpoint').write_text('iter_500.pth')
    cli.run_train_tool('train_config.py', str(tmp_path), 'cpu', ranks=2)
    monkeypatch.setenv('OMP_NUM_THREADS', '3')
    cli.run_train_tool('train_config.py', str(tmp_path), 'cpu', ranks=2)
    (one, _), (two, env_two), (_, env_three) = calls
    assert one[1].endswith('train.py') and '--launcher' not in one and '--resume' not in one
    assert two[1:5] == ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2']
    assert two[5].endswith('train.py') and two[-3:] == ['--launcher', 'pytorch', '--resume']
    assert env_two['OMP_NUM_THREADS'] == str(max(1, cli.usable_cores() // 2))
    assert env_three['OMP_NUM_THREADS'] == '3' and env_two['CUDA_VISIBLE_DEVICES'] == ''


def test_a_kill_of_the_tool_stops_its_training_child(tmp_path):
    """SIGTERM (``kill PID``) ended make_model.py and left tools/train.py training on into the work dir."""
    import signal
    import subprocess
    import textwrap
    import time
    script = tmp_path / 'parent.py'
    child_code = f'import os, time; open({str(tmp_path / "child")!r}, "w").write(str(os.getpid())); time.sleep(60)'
    script.write_text(textwrap.dedent(f"""
        import subprocess, sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from libnet_mmdet import cli
        real_popen = subprocess.Popen
        subprocess.Popen = lambda command, env: real_popen([sys.executable, '-c', {child_code!r}], env=env)
        with cli.exit_on_error('make_model.py', interrupted='the build is kept; run it again'):
            cli.run_train_tool('train_config.py', {str(tmp_path)!r}, 'cpu')
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    for _ in range(900):  # the parent imports torch first
        if (tmp_path / 'child').is_file() and (tmp_path / 'child').read_text():
            break
        time.sleep(0.1)
    child_pid = int((tmp_path / 'child').read_text())
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) == cli.TERMINATED_EXIT_STATUS == 143
    time.sleep(0.5)
    assert not os.path.exists(f'/proc/{child_pid}') or open(f'/proc/{child_pid}/stat').read().split()[2] == 'Z'
    # one line, as on Ctrl-C (it was "exited with status -15" once the child had ended)
    assert parent.stderr.read().decode().splitlines()[-1] == ('make_model.py: terminated (SIGTERM): the build is kept; '
                                                              'run it again')


def test_sigterm_stops_a_tool_as_ctrl_c_does(tmp_path):
    """``kill PID`` or a batch system's time limit (SLURM: SIGTERM, SIGKILL 30 s later) ended a tool at once: no
    ``finally`` ran (an atomic write's temp file was left), no line said what was kept; status 143."""
    import signal
    import subprocess
    import textwrap
    import time
    script = tmp_path / 'tool.py'
    script.write_text(textwrap.dedent(f"""
        import pathlib, sys, time
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from libnet_mmdet import cli
        with cli.exit_on_error('segment.py', interrupted='finished slabs are kept in OUT.work; run it again'):
            try:
                pathlib.Path({str(tmp_path / 'working')!r}).write_text('')
                time.sleep(60)
            finally:
                pathlib.Path({str(tmp_path / 'cleaned')!r}).write_text('')
    """))
    tool = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    for _ in range(900):  # it imports torch first
        if (tmp_path / 'working').is_file():
            break
        time.sleep(0.1)
    tool.send_signal(signal.SIGTERM)
    assert tool.wait(timeout=30) == 143
    assert (tmp_path / 'cleaned').is_file()
    assert tool.stderr.read().decode() == ('segment.py: terminated (SIGTERM): finished slabs are kept in OUT.work; '
                                           'run it again\n')
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # this process: left as it was after a tool's work
    with pytest.raises(SystemExit):
        with cli.exit_on_error('tool.py'):
            raise ValueError('x')
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_usable_cores_falls_back_to_the_cpu_count_where_the_os_has_no_affinity(monkeypatch):
    if hasattr(os, 'sched_getaffinity'):
        assert cli.usable_cores() == len(os.sched_getaffinity(0))
        monkeypatch.delattr(os, 'sched_getaffinity')  # as on macOS and Windows
    assert cli.usable_cores() == (os.cpu_count() or 1)


def test_a_gpu_out_of_memory_is_one_line_and_a_step_after_the_output_says_what_is_left():
    """torch's OutOfMemoryError (a RuntimeError) was a traceback; ``kept`` adds what is finished to the line."""
    import torch
    with pytest.raises(SystemExit) as info:
        with cli.exit_on_error('tool.py', kept='labels.tif is complete, the report is not'):
            raise torch.cuda.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB')
    assert info.value.code == ('tool.py: error: out of memory (CUDA out of memory. Tried to allocate 2.00 GiB); '
                               'labels.tif is complete, the report is not')


def test_a_cpu_out_of_memory_is_one_line_and_other_runtime_errors_keep_their_traceback():
    """On the CPU torch raises a RuntimeError, not a MemoryError, when an allocation fails: it was a traceback."""
    import torch
    with pytest.raises(SystemExit) as info:
        with cli.exit_on_error('segment.py'):
            torch.empty(2 ** 62, dtype=torch.uint8)
    assert str(info.value.code).startswith("segment.py: error: out of memory (") and '\n' not in info.value.code
    assert "can't allocate memory" in info.value.code or 'not enough memory' in info.value.code
    with pytest.raises(RuntimeError, match='a bug'):
        with cli.exit_on_error('segment.py'):
            raise RuntimeError('a bug')


def test_ctrl_c_waits_for_the_training_child_to_end():
    """Popen's exit waited 0.25 s after a Ctrl-C: the tool said 'run again' while the child still wrote. A second
    Ctrl-C leaves at once."""
    class Child:
        def __init__(self, interrupts):
            self.interrupts, self.calls = interrupts, 0

        def wait(self):
            self.calls += 1
            if self.calls <= self.interrupts:  # Ctrl-C while the child finishes its checkpoint
                raise KeyboardInterrupt
            return -2

    for interrupts, calls in ((1, 2), (2, 2)):
        child = Child(interrupts)
        with pytest.raises(KeyboardInterrupt):
            cli.wait_through_interrupts(child)
        assert child.calls == calls  # waited once more after the first
    assert cli.wait_through_interrupts(Child(0)) == -2


def test_a_launcher_needs_the_variables_its_starter_sets(monkeypatch):
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'):
        monkeypatch.delenv(name, raising=False)
    cli.check_launcher_env('none')
    with pytest.raises(InputError, match=r'--launcher slurm: SLURM_PROCID, SLURM_NTASKS, SLURM_NODELIST not set; '
                       r'start the job with srun \(tools/slurm_\*.sh\)'):
        cli.check_launcher_env('slurm')
    for name, value in (('RANK', '0'), ('WORLD_SIZE', '1'), ('MASTER_ADDR', '127.0.0.1')):
        monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match='--launcher pytorch: MASTER_PORT not set'):
        cli.check_launcher_env('pytorch')
    monkeypatch.setenv('MASTER_PORT', '29500')
    cli.check_launcher_env('pytorch')


def test_a_misspelt_config_type_is_one_line():
    """MMEngine's KeyError for a type no registry holds (a typo in the user's config) was a traceback."""
    import mmdet.datasets  # noqa: F401 (registers the datasets)
    from mmdet.registry import DATASETS
    with pytest.raises(SystemExit) as info:
        with cli.exit_on_error('train.py'):
            DATASETS.build(dict(type='ParticleCocoDatset'))
    assert str(info.value.code).startswith('train.py: error: ParticleCocoDatset is not in the mmdet::dataset registry')
    assert '\n' not in str(info.value.code)


def test_the_files_of_wrapped_datasets_and_evaluators_are_checked(tmp_path):
    """``RepeatDataset`` / ``ConcatDataset`` hold the datasets that read files; a missing one is named by its key."""
    from mmengine.config import Config
    from libnet_mmdet.cli import check_dataset_files, dataset_paths, leaf_datasets
    (tmp_path / 'a' / 'images').mkdir(parents=True)
    (tmp_path / 'a' / 'train.json').write_text('{}')
    inner = [dict(type='ParticleCocoDataset', data_root=str(tmp_path / 'a'), ann_file='train.json',
                  data_prefix=dict(img='images/')),
             dict(type='LabelTiffDataset', data_root=str(tmp_path / 'b'), data_prefix=dict(img='i.tif', label=''))]
    cfg = Config(dict(train_dataloader=dict(dataset=dict(type='RepeatDataset', times=2, dataset=dict(
        type='ConcatDataset', datasets=inner))), val_evaluator=[dict(ann_file='s3://bucket/val.json')]))
    assert [leaf.type for leaf in leaf_datasets(cfg.train_dataloader.dataset)] == ['ParticleCocoDataset',
                                                                                   'LabelTiffDataset']
    assert dataset_paths(cfg.train_dataloader.dataset, data_root=False) == [
        str(tmp_path / 'a' / 'train.json'), f"{tmp_path / 'a'}/images/", str(tmp_path / 'b' / 'i.tif')]
    with pytest.raises(FileNotFoundError, match=f'cfg.py: train_dataloader.dataset data_root not found: '
                       f'{tmp_path}/b '):
        check_dataset_files(cfg, ('train', 'val'), 'cfg.py')
    (tmp_path / 'b').mkdir()
    with pytest.raises(FileNotFoundError, match='train_dataloader.dataset data_prefix.img not found: .*i.tif'):
        check_dataset_files(cfg, ('train', 'val'), 'cfg.py')
    (tmp_path / 'b' / 'i.tif').write_bytes(b'')
    check_dataset_files(cfg, ('train', 'val'), 'cfg.py')  # the remote evaluator file is not checked
    cfg.val_dataloader = dict(dataset=inner[0])
    cfg.val_evaluator.append(dict(ann_file=str(tmp_path / 'val.json')))
    with pytest.raises(FileNotFoundError, match=f'val_evaluator ann_file not found: {tmp_path}/val.json'):
        check_dataset_files(cfg, ('train', 'val'), 'cfg.py')
