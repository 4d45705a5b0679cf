"""A 16-bit TIFF stack (LabelTiffDataset) and float32 TIFF slices (labels2coco -> ParticleCocoDataset) train
through the CPU-tiny config with the proposed tomography pipeline for a couple of iterations."""
import math

import numpy as np
import pytest
import tifffile
from mmengine.config import Config

from helpers import TINY_CONFIG
from libnet_mmdet.datasets.label_tiff import labels_to_coco
from tomo_data import TINY_TRAIN_PIPELINE, scene_stack

pytestmark = pytest.mark.slow


def train_two_iterations(dataset_cfg, work_dir):
    """Train the tiny config for one epoch over a 4-image dataset (batch 2: 2 iterations); return the runner."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.train_dataloader.dataset = dict(dataset_cfg, pipeline=TINY_TRAIN_PIPELINE)
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=100)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100, save_last=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.work_dir = str(work_dir)
    cfg.visualizer.name = str(work_dir)  # one visualizer instance per runner of this process
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def assert_trained(runner):
    assert runner.iter == 2
    for name in ('loss', 'loss_mask', 'loss_rpn_cls'):
        values = runner.message_hub.get_scalar(f'train/{name}').data[0]
        assert len(values) == 2 and all(math.isfinite(v) for v in values), (name, values)


def test_uint16_stack_trains_through_the_tiny_config(tmp_path):
    image, labels = scene_stack(np.random.default_rng(0), dtype=np.uint16)
    tifffile.imwrite(tmp_path / 'image.tif', image, photometric='minisblack')
    tifffile.imwrite(tmp_path / 'labels.tif', labels, photometric='minisblack')
    runner = train_two_iterations(
        dict(type='LabelTiffDataset', data_root=str(tmp_path), data_prefix=dict(img='image.tif', label='labels.tif'),
             filter_cfg=dict(filter_empty_gt=True, min_size=32)), tmp_path / 'work')
    assert_trained(runner)


def test_float32_slices_train_through_the_tiny_config_as_coco(tmp_path):
    image, labels = scene_stack(np.random.default_rng(1), dtype=np.float32)
    (tmp_path / 'slices').mkdir()
    (tmp_path / 'labels').mkdir()
    for z in range(len(image)):
        tifffile.imwrite(tmp_path / 'slices' / f'{z}.tif', image[z], photometric='minisblack')
        tifffile.imwrite(tmp_path / 'labels' / f'{z}.tif', labels[z], photometric='minisblack')
    labels_to_coco(str(tmp_path / 'slices'), str(tmp_path / 'labels'), str(tmp_path / 'coco'))
    runner = train_two_iterations(
        dict(type='ParticleCocoDataset', data_root=str(tmp_path / 'coco'), ann_file='annotations.json',
             data_prefix=dict(img='images/'), filter_cfg=dict(filter_empty_gt=True, min_size=32)),
        tmp_path / 'work')
    assert tifffile.imread(tmp_path / 'coco' / 'images' / '0.tif').dtype == np.float32
    assert_trained(runner)
