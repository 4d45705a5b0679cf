"""Checkpoints load under torch >= 2.6 safe loading, and ``--weights`` resolves as documented."""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer, MessageHub

import libnet_mmdet  # noqa: F401  (allow-lists MMEngine checkpoint objects)
from libnet_mmdet.checkpoint import COCO_CHECKPOINTS, apply_weights

from helpers import TINY_CONFIG


def test_runner_checkpoint_objects_load_with_weights_only(tmp_path):
    hub = MessageHub('test_ckpt')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', np.float32(0.25))
    hub.update_info('best_score', np.float64(0.7))
    checkpoint = dict(meta=dict(epoch=1, iter=2, seed=np.int64(3)), message_hub=hub.state_dict(),
                      state_dict={'w': torch.ones(2)}, extra=np.arange(3, dtype=np.int32))
    path = tmp_path / 'ckpt.pth'
    torch.save(checkpoint, path)
    loaded = torch.load(path, weights_only=True)
    assert isinstance(loaded['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    assert loaded['message_hub']['log_scalars']['train/loss'].current() == pytest.approx(0.25)
    assert loaded['extra'].tolist() == [0, 1, 2]
    assert loaded['meta']['seed'] == 3


def test_safe_loading_is_not_switched_off(tmp_path):
    import argparse
    path = tmp_path / 'other.pth'
    torch.save({'x': argparse.Namespace(a=1)}, path)  # an arbitrary class we did not allow-list
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(path)


def tiny_cfg(tmp_path):
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.work_dir = str(tmp_path)
    return cfg


def test_weights_choices(tmp_path):
    cfg = apply_weights(tiny_cfg(tmp_path), 'imagenet')
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint='torchvision://resnet18')
    with pytest.raises(ValueError, match='ResNet-18'):
        apply_weights(tiny_cfg(tmp_path), 'coco')
    cfg = tiny_cfg(tmp_path)
    cfg.model.backbone.depth = 101
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint='torchvision://resnet101')
    assert apply_weights(cfg, 'coco').load_from == COCO_CHECKPOINTS[101]
    assert cfg.model.backbone.init_cfg is None  # MMEngine would download it before loading the checkpoint
    (tmp_path / 'mine.pth').write_bytes(b'')
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint='torchvision://resnet101')
    assert apply_weights(cfg, str(tmp_path / 'mine.pth')).model.backbone.init_cfg is None
    (tmp_path / 'mine.pth').unlink()
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        apply_weights(tiny_cfg(tmp_path), 'last')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        apply_weights(tiny_cfg(tmp_path), str(tmp_path / 'missing.pth'))
    (tmp_path / 'epoch_1.pth').write_bytes(b'')
    with pytest.raises(FileNotFoundError, match='has no last_checkpoint'):  # MMEngine would train afresh
        apply_weights(tiny_cfg(tmp_path), 'last')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    cfg = apply_weights(tiny_cfg(tmp_path), 'last')
    assert cfg.resume is True and cfg.load_from is None
    # a work dir moved off scratch: MMEngine's record names the old absolute path; its namesake here is resumed
    (tmp_path / 'last_checkpoint').write_text('/old/scratch/work/epoch_1.pth')
    assert apply_weights(tiny_cfg(tmp_path), 'last').load_from == str(tmp_path / 'epoch_1.pth')
    (tmp_path / 'last_checkpoint').write_text('/old/scratch/work/epoch_2.pth')  # and none here: one line, now
    with pytest.raises(FileNotFoundError, match=f"last_checkpoint names /old/scratch/work/epoch_2.pth, which does not "
                       f"exist; give the checkpoint: --resume {tmp_path / 'epoch_1.pth'}"):
        apply_weights(tiny_cfg(tmp_path), 'last')


def test_pretrained_backbone_loads_from_a_local_file(tmp_path):
    """The ``imagenet`` path is MMEngine's Pretrained init; exercise it with a local ResNet-18 file."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    cfg = tiny_cfg(tmp_path)
    backbone_cfg = cfg.model.backbone.copy()
    source = MODELS.build(backbone_cfg)
    torch.nn.init.constant_(source.conv1.weight, 0.123)
    torch.save(source.state_dict(), tmp_path / 'resnet18.pth')
    backbone_cfg.init_cfg = dict(type='Pretrained', checkpoint=str(tmp_path / 'resnet18.pth'))
    backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    assert torch.allclose(backbone.conv1.weight, torch.full_like(backbone.conv1.weight, 0.123))


def test_getattr_stand_in_resolves_only_history_buffer_statistics(tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return getattr, (np.ones(2), 'tofile')  # would reach ndarray.tofile -> arbitrary file write

    path = tmp_path / 'evil.pth'
    torch.save({'x': Payload()}, path)
    with pytest.raises(pickle.UnpicklingError, match='only HistoryBuffer statistics methods'):
        torch.load(path)
