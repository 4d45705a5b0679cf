"""Shared pytest fixtures: real-data location, a tiny COCO particle dataset and a CPU-tiny model trained on it."""
import numpy as np
import pytest

from helpers import REAL_DATA_DIR, TINY_CONFIG, run_tool, write_coco_split, write_config

TRAINING_FIXTURES = {'trained_tiny', 'trained_phase_model'}  # a test using one (even through another fixture) is slow


def pytest_collection_modifyitems(items):
    """Mark ``slow`` every test that needs a fixture which trains a model (``-m 'not slow'`` trains nothing)."""
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, 'fixturenames', ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def real_data_dir():
    """``../shared/data/real`` (real NMC tomography); the test is skipped when it is absent."""
    if not REAL_DATA_DIR.is_dir():
        pytest.skip(f'real sample data not found at {REAL_DATA_DIR}')
    return REAL_DATA_DIR


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory):
    """A tiny COCO particle dataset in the ``data/nmc`` layout: 4 train and 2 val 128x128 PNGs of discs."""
    root = tmp_path_factory.mktemp('tiny_coco')
    rng = np.random.default_rng(0)
    write_coco_split(root, 'train', 4, rng)
    write_coco_split(root, 'val', 2, rng)
    return root


@pytest.fixture(scope='session')
def trained_tiny(tiny_coco, tmp_path_factory):
    """(config path, checkpoint path) of the CPU-tiny config trained for one epoch on ``tiny_coco``."""
    tmp = tmp_path_factory.mktemp('tiny_train')
    config = write_config(tmp / 'tiny.py', TINY_CONFIG, tiny_coco)
    work_dir = tmp / 'work'
    result = run_tool('tools/train.py', config, '--work-dir', work_dir, '--cfg-options', 'train_cfg.max_epochs=1',
                      'randomness.seed=1')  # seeded, so that no test depends on luck; a 1-epoch model is barely
    # trained: seed 0's finds no particle in the synthetic stack of the dist_segment test, seed 1's does
    assert result.returncode == 0, result.stderr[-3000:]
    return config, work_dir / 'epoch_1.pth'
