"""Fixtures of the tools tests: one tiny Mask R-CNN checkpoint per session, and running a tool in-process."""
import runpy
import sys

import pytest

from helpers import REPO_ROOT, TINY_CONFIG, write_config


@pytest.fixture(scope='session')
def tiny_model(tiny_coco, tmp_path_factory):
    """(config path, checkpoint path) of the CPU-tiny Mask R-CNN pointed at ``tiny_coco``.

    The weights are the model's seeded random initialisation saved as an MMEngine checkpoint: the tools under test
    must picture whatever a model computes, and training (covered by tests/test_train_test_tools.py) would only
    cost time here. A random Mask R-CNN scores every RoI near 0.5, so it returns its full quota of detections.
    """
    import torch
    from libnet_mmdet.apis import init_segmenter
    tmp = tmp_path_factory.mktemp('tiny_model')
    config = write_config(tmp / 'tiny.py', TINY_CONFIG, tiny_coco)
    torch.manual_seed(0)
    model = init_segmenter(config, None, device='cpu')
    checkpoint = tmp / 'random_init.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': {'classes': ('particle',)}}}, checkpoint)
    return config, checkpoint


@pytest.fixture
def run_script(monkeypatch):
    """``run_script('tools/x.py', *args)`` runs a tool's ``__main__`` in this process (no second start-up of
    torch and MMDetection); a failing tool raises its SystemExit."""
    def run(path, *args):
        monkeypatch.setattr(sys, 'argv', [str(path), *map(str, args)])
        runpy.run_path(str(REPO_ROOT / path), run_name='__main__')
    return run
