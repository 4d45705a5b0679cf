"""Shared pytest fixtures: real-data location and a tiny COCO particle dataset."""
import numpy as np
import pytest

from helpers import REAL_DATA_DIR, write_coco_split


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
