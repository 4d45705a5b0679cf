"""Every script in tools/ and benchmarks/ (sub-folders included; a file with a ``__main__`` guard) starts and
prints its usage with ``--help``.

One fresh process per script, as a user runs it from the repository root: a broken import or argument parser
fails here even for scripts that no other test runs. The start-up (torch, MMDetection) dominates, so the
selected scripts run as many at a time as there are CPUs.
"""
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import REPO_ROOT, run_tool

SCRIPTS = sorted(path.relative_to(REPO_ROOT).as_posix()
                 for folder in ('tools', 'benchmarks') for path in (REPO_ROOT / folder).rglob('*.py')
                 if "if __name__ == '__main__':" in path.read_text())  # not a module such as benchmarks/gpu's shim


@pytest.fixture(scope='module')
def help_runs(request):
    """{script: future ``run_tool(script, '--help')`` result} for the scripts of the selected tests."""
    selected = [item.callspec.params['script'] for item in request.session.items
                if item.path == request.path and hasattr(item, 'callspec')]
    with ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        yield {script: pool.submit(run_tool, script, '--help', timeout=300) for script in selected}


def test_scripts_are_found():
    assert 'tools/train.py' in SCRIPTS and 'tools/analysis/pr_curve.py' in SCRIPTS
    assert 'benchmarks/gpu/pack_model.py' in SCRIPTS and 'benchmarks/gpu/mmcv_ext_torchvision.py' not in SCRIPTS
    assert any(script.startswith('benchmarks/') for script in SCRIPTS)


@pytest.mark.parametrize('script', SCRIPTS)
def test_script_prints_its_usage(script, help_runs):
    result = help_runs[script].result()
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith('usage:'), result.stdout[:1000] + result.stderr[-3000:]
