"""Tiny synthetic volumes shared by the synth tests (generated once per session, a few seconds in all), and
tools/make_synthetic.py loaded as a module."""

import pytest

from helpers import import_tool
from libnet_mmdet.synth import generate_volume, preset_params, write_dataset

TINY_SHAPE = (24, 64, 64)


@pytest.fixture(scope='session')
def typical_volume():
    """``typical`` preset, small particles so that a 24x64x64 volume holds a few dozen."""
    return generate_volume(TINY_SHAPE, preset_params('typical', mean_diameter_vox=14.0), seed=3)


@pytest.fixture(scope='session')
def damaged_volume():
    """``hard`` preset with most particles hollow or cracked, float32 image."""
    params = preset_params('hard', mean_diameter_vox=12.0, hollow_fraction=0.6, crack_fraction=0.6,
                           output_dtype='float32')
    return generate_volume(TINY_SHAPE, params, seed=6)


@pytest.fixture(scope='session')
def dataset_dir(tmp_path_factory, typical_volume):
    """``typical_volume`` written with slices along z, y and x."""
    out_dir = tmp_path_factory.mktemp('synth') / 'dataset'
    write_dataset(out_dir, typical_volume, axes=('z', 'y', 'x'))
    return out_dir


@pytest.fixture
def tool():
    """``tools/make_synthetic.py`` as a fresh module (its ``main(argv)`` runs in-process)."""
    return import_tool('make_synthetic')
