"""Two CPU processes under torchrun (gloo) train the CPU-tiny config and write one checkpoint."""
import os
import subprocess
import sys

import pytest

from helpers import REPO_ROOT, TINY_CONFIG, write_config

pytestmark = pytest.mark.slow


def test_two_process_training_writes_one_checkpoint(tiny_coco, tmp_path):
    config = write_config(tmp_path / 'tiny.py', TINY_CONFIG, tiny_coco)
    work_dir = tmp_path / 'work'
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='', PORT='29531')
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir', str(work_dir),
         '--cfg-options', 'train_cfg.max_epochs=1', 'train_dataloader.num_workers=1'],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # MMEngine's name for the world size
    # rank 0 alone writes: the epoch checkpoint and the best-by-segm-mAP one from the final validation
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['best_coco_segm_mAP_50_epoch_1.pth', 'epoch_1.pth']
    # 4 images, batch 2 per process: the two ranks split the epoch, so it takes 1 iteration, not 2
    import torch
    import libnet_mmdet  # noqa: F401  (safe-loading allow-list)
    assert torch.load(work_dir / 'epoch_1.pth', map_location='cpu')['meta']['iter'] == 1

    # the test of that checkpoint on two processes dumps its results: rank 0 writes and renames them (every rank
    # renamed, and the job failed on the rank that found nothing to rename)
    out = tmp_path / 'results.pkl'
    result = subprocess.run(
        ['bash', 'tools/dist_test.sh', str(config), str(work_dir / 'epoch_1.pth'), '2', '--work-dir', str(work_dir),
         '--out', str(out), '--cfg-options', 'test_dataloader.num_workers=1'],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert out.is_file() and not list(tmp_path.glob('*.partial.pkl'))


def test_the_launch_scripts_give_a_usage_line_without_their_arguments():
    """They stopped with bash's "$2: unbound variable"."""
    scripts = sorted((REPO_ROOT / 'tools').glob('*_*.sh'))
    assert [script.name for script in scripts] == [f'{launcher}_{job}.sh' for launcher in ('dist', 'slurm')
                                                   for job in ('run', 'segment', 'test', 'train')]
    for script in scripts:
        result = subprocess.run(['bash', str(script)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and result.stderr.startswith('usage: '), script.name
        assert script.name in result.stderr, script.name
