"""The shape-aware configs change only ``loss_mask`` and train through ``tools/train.py``."""
import pytest
from mmengine.config import Config

from helpers import R101_CONFIG, TINY_CONFIG, flatten, run_tool, write_config

SHAPE_AWARE = {
    'r101': (R101_CONFIG.with_name('mask-rcnn_r101_fpn_shape-aware.py'), R101_CONFIG),
    'tiny': (TINY_CONFIG.with_name('mask-rcnn_r18-gn_fpn-c64_cpu-tiny_shape-aware.py'), TINY_CONFIG),
}
# The R101 recipe on CPU in a test: no ImageNet download, batch 2, 128 px crops instead of 512.
R101_CPU_OPTIONS = ['model.backbone.init_cfg=None', 'train_dataloader.batch_size=2',
                    'train_dataloader.num_workers=1', 'train_dataloader.dataset.pipeline.2.crop_size=(128,128)']


@pytest.mark.parametrize('name', sorted(SHAPE_AWARE))
def test_shape_aware_config_changes_only_loss_mask(name):
    config, base = SHAPE_AWARE[name]
    shape_aware, stock = flatten(Config.fromfile(str(config)).to_dict()), flatten(Config.fromfile(str(base)).to_dict())
    changed = {key for key in shape_aware.keys() | stock.keys() if shape_aware.get(key) != stock.get(key)}
    assert changed and all(key.startswith('model.roi_head.mask_head.loss_mask.') for key in changed), changed
    assert shape_aware['model.roi_head.mask_head.loss_mask.type'] == 'ShapeAwareMaskLoss'
    assert 'model.roi_head.mask_head.loss_mask.use_mask' not in shape_aware  # the stock BCE's keys are gone


@pytest.fixture(scope='module', params=sorted(SHAPE_AWARE))
def trained(request, tiny_coco, tmp_path_factory):
    """2 iterations (one epoch of 4 images, batch 2) of a shape-aware config; returns (name, work dir, log)."""
    config, _ = SHAPE_AWARE[request.param]
    tmp = tmp_path_factory.mktemp(f'train_{request.param}')
    work_dir = tmp / 'work'
    options = ['train_cfg.max_epochs=1', 'default_hooks.logger.interval=1']
    options += R101_CPU_OPTIONS if request.param == 'r101' else []
    result = run_tool('tools/train.py', write_config(tmp / 'cfg.py', config, tiny_coco), '--work-dir', work_dir,
                      '--cfg-options', *options)
    assert result.returncode == 0, result.stderr[-3000:]
    return request.param, work_dir, result.stdout + result.stderr


@pytest.mark.slow
def test_shape_aware_config_trains_through_tools_train(trained):
    name, work_dir, log = trained
    assert (work_dir / 'epoch_1.pth').is_file()
    assert "type='ShapeAwareMaskLoss'" in log  # the config the runner printed
    losses = [line for line in log.splitlines() if 'Epoch(train)' in line and 'loss_mask:' in line]
    assert len(losses) == 2, log[-3000:]  # both iterations logged a (finite) mask loss
    assert all('nan' not in line and 'inf' not in line for line in losses)
