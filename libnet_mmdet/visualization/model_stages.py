"""Recording what a two-stage detector (Mask R-CNN) computes at every stage for one 2D slice.

>>> model = init_segmenter(config, checkpoint, device='cpu')
>>> stages = record_stages(model, 'slice_0100.png')
>>> stages['rpn_after_nms']['bboxes'].shape, stages['detections']['scores'].shape  # (P, 4), (N,)

Nothing is re-implemented: the slice goes through the same path as :func:`libnet_mmdet.apis.segment_image`
(:func:`~libnet_mmdet.apis.inference.slice_preparer`: the test pipeline's loader swapped for one that takes
arrays; then the rest of the test pipeline and ``model.test_step``), with the config's test settings (not the
per-image proposal budget, ``proposals='config'``) while forward hooks and pass-through wrappers
copy what the model's own modules and methods receive and return:

* ``model.backbone`` / ``model.neck`` outputs (forward hooks): activation maps per ResNet stage and FPN level;
* ``model.rpn_head`` output (forward hook): objectness logits per FPN level and anchor;
* ``rpn_head._bbox_post_process`` (wrapped): the decoded top-``nms_pre`` proposals per level before NMS (its
  input) and the proposals after NMS (its output);
* ``roi_head.bbox_head.predict_by_feat`` (wrapped): the RoIs with their classification and regression outputs,
  and the detections after the per-class NMS; the refined boxes of *all* RoIs (before NMS) come from the same
  method called again with ``rcnn_test_cfg=None``, its documented "no post-processing" mode;
* ``roi_head.mask_head`` output (forward hook): the 28x28 mask logits of every detection;
* ``model.predict`` output: the final detections (boxes, scores, pasted masks) exactly as ``segment_image`` and
  ``tools/test.py`` get them;
* ``rpn_head.prior_generator.grid_priors``: the anchors of every FPN level (called with the feature map sizes).

Coordinates of every stage before the final detections are in the model's input frame (``img_shape`` of the
test pipeline); the final detections are in the frame of the input slice.
"""
import contextlib
import copy
import os

import numpy as np
import torch

from ..apis.inference import describe_scale, detector_predictor, load_slice, resolve_scale, slice_preparer
from ..apis.model import is_detector, read_config
from ..io import InputError


def _numpy(tensor):
    return tensor.detach().cpu().float().numpy()


def _feature_list(output):
    """The feature maps of a backbone/neck output (a tensor or a tuple of tensors) as (C, H, W) arrays of image 0."""
    maps = output if isinstance(output, (tuple, list)) else (output,)
    return [_numpy(m[0]) for m in maps]


@contextlib.contextmanager
def _wrapped(owner, name, record):
    """Temporarily replace the bound method ``owner.name`` by a pass-through that appends (args, kwargs, a copy of
    the result) to ``record``: later stages change some results in place (the mask head rescales the detections'
    boxes to the input slice)."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        record.append((args, kwargs, copy.deepcopy(result)))
        return result
    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        delattr(owner, name)  # the class attribute (the original method) shows again


@contextlib.contextmanager
def _forward_hook(module, record):
    handle = module.register_forward_hook(lambda _module, _inputs, output: record.append(output))
    try:
        yield
    finally:
        handle.remove()


#: The parts of a two-stage instance segmentation model (Mask R-CNN) whose stages :func:`record_stages` pictures.
TWO_STAGE_PARTS = ('backbone', 'neck', 'rpn_head', 'roi_head')


def check_two_stage_config(config, name=None):
    """Raise :class:`~libnet_mmdet.io.InputError` unless ``config`` describes a model :func:`record_stages` can
    picture (a Mask R-CNN: backbone, neck, rpn_head, roi_head with a mask head), before its checkpoint is loaded.

    Args:
        config (str | os.PathLike | mmengine.Config | dict): a config file (read by
            :func:`~libnet_mmdet.apis.model.read_config`) or a config already read.
        name (str, optional): what the message calls the config; default the file, else ``config.filename``.

    Raises:
        FileNotFoundError / InputError: a config file that is missing or cannot be read
            (:func:`~libnet_mmdet.apis.model.read_config`).
        TypeError: ``config`` is neither a path nor a config.
        InputError: not a two-stage instance segmentation config.
    """
    if isinstance(config, (str, os.PathLike)):
        name, config = name or os.fspath(config), read_config(config)
    elif not hasattr(config, 'get'):
        raise TypeError(f'config: expected a config file path or an mmengine Config, got {type(config).__name__}')
    name = name or getattr(config, 'filename', None) or '<Config>'
    model_cfg = config.get('model') or {}
    missing = [part for part in TWO_STAGE_PARTS if part not in model_cfg]
    if missing or 'mask_head' not in model_cfg.get('roi_head', {}):
        raise InputError(f'{name}: not a two-stage instance segmentation config (Mask R-CNN), whose stages this '
                         f'pictures: its model lacks {", ".join(missing) or "roi_head.mask_head"}')


def _check_two_stage(model):
    if not is_detector(model):
        raise TypeError(f'record_stages needs an MMDetection detector (init_segmenter), got {type(model).__name__}')
    missing = [name for name in TWO_STAGE_PARTS if getattr(model, name, None) is None]
    if missing or getattr(model.roi_head, 'mask_head', None) is None:
        raise ValueError(f'record_stages needs a two-stage instance segmentation model (Mask R-CNN: backbone, '
                         f'neck, rpn_head, roi_head with a mask head); {type(model).__name__} lacks '
                         f'{", ".join(missing) or "roi_head.mask_head"}')


def record_stages(model, image, scale=None):
    """Run ``model`` on one slice as :func:`~libnet_mmdet.apis.segment_image` does (no tiling) and record every
    stage (module docstring).

    Args:
        model: a Mask R-CNN from :func:`~libnet_mmdet.apis.init_segmenter`.
        image (np.ndarray | str): an (H, W) slice or an image file path.
        scale (float | str | sequence[float] | None): as in :func:`~libnet_mmdet.apis.segment_image` (None: auto
            for a model that records its trained particle diameters, else 1); one pass, so of several scales (auto
            may add a finer one) the first.

    Returns:
        dict: ``image`` (H, W, C) the prepared slice; ``img_shape`` (h, w) the model's input frame;
        ``backbone`` / ``fpn`` lists of (C, h_l, w_l) float32 activation maps; ``anchors`` list of (A_l, 4) arrays
        and ``anchor_strides``; ``objectness`` list of (A, h_l, w_l) RPN probabilities per FPN level;
        ``rpn_before_nms`` / ``rpn_after_nms`` dicts of ``bboxes`` (P, 4) x0 y0 x1 y1 and ``scores`` (P,)
        (``level_ids`` (P,) before NMS); ``rcnn_before_nms`` dict of ``rois`` (R, 4), ``bboxes`` (R, K, 4) refined
        per class and ``scores`` (R, K + 1) softmax (last column background); ``rcnn_after_nms`` dict of
        ``bboxes``, ``scores``, ``labels``; ``mask_probs`` (N, 28, 28) sigmoid of each detection's mask logits for
        its class; ``detections`` dict of ``bboxes`` (N, 4), ``scores`` (N,), ``labels`` (N,) and ``masks``
        (N, H, W) bool, in the input slice's frame; ``scale`` (float) the one used and ``scale_line`` saying why
        (:func:`~libnet_mmdet.apis.describe_scale`). All numpy, float32 unless stated.
    """
    _check_two_stage(model)
    slice_hw = load_slice(image)
    scales, info = resolve_scale(model, scale, [slice_hw])
    prepared = slice_preparer(model)(slice_hw)
    rpn_head, roi_head = model.rpn_head, model.roi_head
    backbone, fpn, rpn_out, mask_out = [], [], [], []
    rpn_post, bbox_post, predicted = [], [], []
    with contextlib.ExitStack() as stack:
        stack.enter_context(_forward_hook(model.backbone, backbone))
        stack.enter_context(_forward_hook(model.neck, fpn))
        stack.enter_context(_forward_hook(rpn_head, rpn_out))
        stack.enter_context(_forward_hook(roi_head.mask_head, mask_out))
        stack.enter_context(_wrapped(rpn_head, '_bbox_post_process', rpn_post))
        stack.enter_context(_wrapped(roi_head.bbox_head, 'predict_by_feat', bbox_post))
        stack.enter_context(_wrapped(model, 'predict', predicted))
        # the config's own test settings (proposals='config'): what the model is, not segment_image's per-image
        # proposal budget (apis.inference.forward_test_cfg)
        detector_predictor(model, score_thr=0.0, batch_size=1, scale=scales[0], proposals='config')([prepared])
    stages = _collect(model, prepared, backbone, fpn, rpn_out, rpn_post, bbox_post, mask_out, predicted)
    return dict(stages, scale=scales[0], scale_line=describe_scale(scales, info))


def _instances(instances, keys=('bboxes', 'scores', 'labels')):
    return {key: _numpy(instances[key]) if key != 'labels' else instances[key].cpu().numpy()
            for key in keys if key in instances}


def _collect(model, prepared, backbone, fpn, rpn_out, rpn_post, bbox_post, mask_out, predicted):
    """Turn the recorded calls of one forward pass into the dict that :func:`record_stages` returns."""
    fpn_maps = _feature_list(fpn[0])
    cls_scores = rpn_out[0][0]
    objectness = [_numpy(level[0].sigmoid()) for level in cls_scores]
    prior_generator = model.rpn_head.prior_generator
    anchors = prior_generator.grid_priors([level.shape[-2:] for level in cls_scores], device=cls_scores[0].device)

    (pre_nms_args, pre_nms_kwargs, post_nms) = rpn_post[0]
    pre_nms = pre_nms_kwargs.get('results', pre_nms_args[0] if pre_nms_args else None)
    _, bbox_kwargs, rcnn_after = bbox_post[0]
    img_meta = bbox_kwargs['batch_img_metas'][0]
    rcnn_before = {'rois': np.zeros((0, 4), np.float32), 'bboxes': np.zeros((0, 0, 4), np.float32),
                   'scores': np.zeros((0, model.roi_head.bbox_head.num_classes + 1), np.float32)}
    if len(bbox_kwargs['rois'][0]):
        refined = model.roi_head.bbox_head.predict_by_feat(
            rois=bbox_kwargs['rois'], cls_scores=bbox_kwargs['cls_scores'], bbox_preds=bbox_kwargs['bbox_preds'],
            batch_img_metas=bbox_kwargs['batch_img_metas'], rcnn_test_cfg=None, rescale=False)[0]
        rcnn_before = {'rois': _numpy(bbox_kwargs['rois'][0][:, 1:]),
                       'bboxes': _numpy(refined.bboxes).reshape(len(refined.bboxes), -1, 4),
                       'scores': _numpy(refined.scores)}

    final = predicted[0][2][0].pred_instances
    detections = _instances(final)
    detections['masks'] = final.masks.cpu().numpy().astype(bool) if 'masks' in final else None
    labels_after = rcnn_after[0].labels if len(rcnn_after[0]) else torch.zeros(0, dtype=torch.long)
    if mask_out:
        logits = mask_out[0]
        mask_probs = _numpy(logits[torch.arange(len(logits)), labels_after.to(logits.device)].sigmoid())
    else:  # no detection: the mask head never ran
        mask_probs = np.zeros((0, 28, 28), np.float32)
    return {
        'image': prepared,
        'img_shape': tuple(int(s) for s in img_meta['img_shape']),
        'backbone': _feature_list(backbone[0]),
        'fpn': fpn_maps,
        'anchors': [_numpy(level) for level in anchors],
        'anchor_strides': [int(stride[0]) for stride in prior_generator.strides],
        'objectness': objectness,
        'rpn_before_nms': {'bboxes': _numpy(pre_nms.bboxes), 'scores': _numpy(pre_nms.scores),
                           'level_ids': pre_nms.level_ids.cpu().numpy()},
        'rpn_after_nms': _instances(post_nms, ('bboxes', 'scores')),
        'rcnn_before_nms': rcnn_before,
        'rcnn_after_nms': _instances(rcnn_after[0]),
        'mask_probs': mask_probs,
        'detections': detections,
    }
