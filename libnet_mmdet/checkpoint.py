"""Where weights come from: torch safe loading of MMEngine checkpoints, and the tools' ``--weights`` choices.

torch >= 2.6 loads checkpoints with ``weights_only=True``; MMEngine 0.10.7 calls ``torch.load`` without that
argument, so a runner checkpoint (its ``message_hub`` holds ``HistoryBuffer`` objects and numpy arrays and
scalars) fails to load on ``--resume`` or ``load_from``. Instead of switching safe loading off, importing this
module adds exactly those classes to torch's allow-list of safe globals.
"""
import copy
import glob
import math
import os.path as osp
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

from numpy._core import multiarray as np_multiarray  # numpy >= 2 (requirements/runtime.txt)

from .apis.model import checkpoint_state_dict, weights_coverage
from .io import InputError

# MMDetection model-zoo Mask R-CNN FPN 1x COCO weights, by ResNet depth (used by ``--weights coco``).
COCO_CHECKPOINTS = {
    50: 'https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_r50_fpn_1x_coco/'
        'mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth',
    101: 'https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_r101_fpn_1x_coco/'
         'mask_rcnn_r101_fpn_1x_coco_20200204-1efe0ed5.pth',
}
WEIGHTS_CHOICES = ('imagenet', 'coco', 'last')
#: A head that a checkpoint fills less than this share of is left untrained by fine-tuning from it:
#: :func:`check_weights_fit` refuses such a checkpoint (a new class count changes only the last layers of the heads,
#: far less; the backbone and neck: :data:`MIN_TRUNK_COVERAGE`).
MIN_PART_COVERAGE = 0.5
#: The backbone and neck must be filled almost whole: they are not initialised otherwise (``apply_weights`` drops the
#: ImageNet ``init_cfg``), and a ResNet of another depth fills over half of them (R50 into R101 55 %, R101 into R152
#: 73 %); another normalisation (BN weights into a GN model) leaves only the small norm layers.
MIN_TRUNK_COVERAGE = 0.95


def _history_buffer_method(owner, name):
    """``getattr`` as a runner checkpoint needs it, and no more.

    ``HistoryBuffer`` pickles its statistics methods (``HistoryBuffer.mean`` ...), which pickle protocol 2
    writes as ``getattr(HistoryBuffer, 'mean')``. Allow-listing the real ``getattr`` would let a checkpoint
    reach any method of any loaded object, so this stand-in resolves only those statistics methods.
    """
    allowed = {'min', 'max', 'current', 'mean', *HistoryBuffer._statistics_methods}
    if owner is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'checkpoint asks for {owner!r}.{name}: only HistoryBuffer statistics methods '
                                 'are allowed')


def _checkpoint_safe_globals():
    """Globals that MMEngine runner checkpoints pickle besides tensors and plain containers."""
    numpy_dtype_classes = [getattr(np.dtypes, name) for name in np.dtypes.__all__]
    numpy_functions = [np_multiarray._reconstruct, np_multiarray.scalar]
    numpy1_names = [(func, f'numpy.core.multiarray.{func.__name__}') for func in numpy_functions]  # numpy-1 pickles
    return [HistoryBuffer, (_history_buffer_method, 'builtins.getattr'), np.ndarray, np.dtype,
            *numpy_functions, *numpy1_names, *numpy_dtype_classes]


torch.serialization.add_safe_globals(_checkpoint_safe_globals())


def apply_weights(cfg, weights, flag='--weights last'):
    """Set in ``cfg`` where training starts from, for ``tools/train.py --weights``.

    Args:
        cfg (mmengine.Config): the training config; ``cfg.work_dir`` must be set.
        weights (str): ``imagenet`` (backbone from ``torchvision://resnet<depth>``, needs internet the first
            time), ``coco`` (the whole detector from MMDetection's COCO Mask R-CNN of the same depth; the one-class
            heads whose shapes differ are skipped), ``last`` (resume the newest checkpoint in the work dir) or
            the path of a checkpoint file (fine-tune from it: weights only, fresh optimizer and schedule). With
            ``coco`` or a path the config's backbone ``init_cfg`` is dropped: MMEngine initialises (downloads) it
            before it loads the checkpoint, which replaces it.
        flag (str): how the user asked for ``last``, for the message (``train.py --resume`` is the same).

    Raises:
        FileNotFoundError: ``last`` with no checkpoint or no ``last_checkpoint`` file in the work dir, or a path
            that does not exist.
        ValueError: ``coco`` for a backbone depth without a model-zoo checkpoint.
    """
    depth = cfg.model.backbone.get('depth')
    if weights == 'imagenet':
        cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=f'torchvision://resnet{depth}')
        cfg.load_from = None
    elif weights == 'coco':
        if depth not in COCO_CHECKPOINTS:
            raise ValueError(f'--weights coco: no COCO Mask R-CNN checkpoint for ResNet-{depth} '
                             f'(available: {sorted(COCO_CHECKPOINTS)}); use imagenet or a checkpoint path')
        cfg.load_from = COCO_CHECKPOINTS[depth]
        cfg.model.backbone.init_cfg = None  # the checkpoint gives the backbone: no ImageNet download before it
    elif weights == 'last':
        checkpoints = glob.glob(osp.join(cfg.work_dir, '*.pth'))
        if not checkpoints:
            raise FileNotFoundError(f'{flag}: no checkpoint (*.pth) in the work dir {cfg.work_dir}; leave {flag} out '
                                    'to train afresh')
        newest = max(checkpoints, key=osp.getmtime)
        record = osp.join(cfg.work_dir, 'last_checkpoint')
        if not osp.isfile(record):  # MMEngine would train afresh without a word
            raise FileNotFoundError(f'{flag}: {cfg.work_dir} has no last_checkpoint (the file naming the checkpoint '
                                    f'to resume); give the checkpoint: --resume {newest}')
        with open(record, encoding='utf-8') as f:
            named = f.read().strip()  # MMEngine records an absolute path: stale once the work dir has moved
        cfg.resume = True
        cfg.load_from = None  # MMEngine resumes what last_checkpoint names
        if not osp.isfile(named):
            namesake = osp.join(cfg.work_dir, osp.basename(named))
            if not osp.isfile(namesake):
                raise FileNotFoundError(f'{flag}: {record} names {named}, which does not exist; give the checkpoint: '
                                        f'--resume {newest}')
            cfg.load_from = namesake  # the work dir was moved: its own copy
    else:
        if not osp.isfile(weights):
            raise FileNotFoundError(f'--weights: checkpoint file not found: {weights}')
        cfg.load_from = weights
        cfg.resume = False
        cfg.model.backbone.init_cfg = None  # the checkpoint gives the backbone: no ImageNet download before it
    return cfg


def check_weights_fit(cfg, loaded, checkpoint, resume=False):
    """Raise :class:`~libnet_mmdet.io.InputError` when fine-tuning the model of ``cfg`` from ``checkpoint`` would leave
    a part of it untrained: MMEngine loads ``load_from`` leniently, so a checkpoint of another model (a phase model,
    another depth) trains with random heads or backbone blocks after one warning in the log. With ``resume`` every
    weight must be there with its shape: the training resumes the optimizer state too (another model's fails at the
    first step where its shapes differ: torch's AdamW on a new class count).

    Args:
        cfg (mmengine.Config): the training config.
        loaded (dict): the checkpoint's contents (:func:`~libnet_mmdet.apis.model.read_checkpoint`).
        checkpoint (str): its path, for the message.
        resume (bool): ``--resume`` from it, not fine-tuning.
    """
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.get('backbone', {}).pop('init_cfg', None)  # built to be compared, not initialised: no download
    coverage = weights_coverage(MODELS.build(model_cfg), checkpoint_state_dict(loaded, checkpoint))
    if resume:
        # rounded down: a part with one layer missing is not '100%'
        partial = ', '.join(f'{part} {math.floor(share * 1000) / 10:g}%' for part, share in coverage.items()
                            if share < 1)
        if partial:
            raise InputError(f"{checkpoint}: is not a checkpoint of this config's model (share of each part it fills: "
                             f'{partial}), so the training cannot resume from it; fine-tune from it with --weights '
                             'instead, or resume with the config it was trained with')
        return
    untrained = {part: share for part, share in coverage.items()
                 if share < (MIN_TRUNK_COVERAGE if part in ('backbone', 'neck') else MIN_PART_COVERAGE)}
    if untrained:
        shares = ', '.join(f'{part} {share:.0%}' for part, share in untrained.items())
        raise InputError(f"{checkpoint}: holds too few weights of this config's model to fine-tune from (share of "
                         f'each part it fills: {shares}): a checkpoint of another model; to take its backbone alone, '
                         f"set model.backbone.init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')")
