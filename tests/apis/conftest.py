"""Fixtures for the inference API tests: a CPU-tiny model trained for one epoch (once per session)."""
import pytest

from helpers import TINY_CONFIG, run_tool, write_config

# Fewer proposals and detections than the recipe: the 1-epoch model scores everything ~0.5, and inference on
# 2 CPU cores is then 8x faster. Used by the tests that only check the plumbing.
FAST_TEST_CFG = {'model.test_cfg.rpn.max_per_img': 200, 'model.test_cfg.rcnn.max_per_img': 50}


@pytest.fixture(scope='session')
def trained_tiny(tiny_coco, tmp_path_factory):
    """(config path, checkpoint path) of the CPU-tiny config trained for one epoch on ``tiny_coco``."""
    tmp = tmp_path_factory.mktemp('apis_train')
    config = write_config(tmp / 'tiny.py', TINY_CONFIG, tiny_coco)
    work_dir = tmp / 'work'
    result = run_tool('tools/train.py', config, '--work-dir', work_dir, '--cfg-options', 'train_cfg.max_epochs=1')
    assert result.returncode == 0, result.stderr[-3000:]
    return config, work_dir / 'epoch_1.pth'


@pytest.fixture(scope='session')
def tiny_model(trained_tiny):
    """The trained CPU-tiny model on the CPU, with the fast test settings."""
    from libnet_mmdet.apis import init_segmenter
    config, checkpoint = trained_tiny
    return init_segmenter(str(config), str(checkpoint), device='cpu', cfg_options=FAST_TEST_CFG)
