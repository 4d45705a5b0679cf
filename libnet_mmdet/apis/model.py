"""Loading a trained model for inference, and what its config says about inference.

>>> model = init_segmenter('configs/nmc/mask-rcnn_r101_fpn.py',
...                        'work_dirs/mask-rcnn_r101_fpn/best_coco_segm_mAP_50_epoch_36.pth', device='cuda:0')
>>> training_tile_size(model), default_batch_size(model)  # slice size the model was trained on, images per pass
>>> trained_diameter_range(model)  # particle diameters (model pixels) it was trained for: None here, (12, 48) for the
>>> # generalist (its config records particle_diameter_px)
>>> model = init_segmenter(config, checkpoint, device='cuda:0', amp=True)  # mixed-precision backbone and neck
>>> proposal_budget(model, 256 * 256)  # RPN proposals and detections one 256 x 256 image needs (test_cfg overrides)
>>> generalist_files()  # (config, checkpoint) of the generalist `make model` builds, or None
>>> phase_model_files()  # (config, checkpoint) of the phase model `make model` builds, or None
"""
import contextlib
import copy
import functools
import glob
import hashlib
import json
import math
import os
import os.path as osp
import uuid
import warnings

import numpy as np
import torch
from mmengine.config import Config

from ..io.errors import InputError


class CheckpointMismatchError(InputError):
    """The checkpoint's weights do not fit the model the config builds."""


#: Config file types MMEngine reads (``Config.fromfile``).
CONFIG_SUFFIXES = ('.py', '.json', '.yaml', '.yml')

_MODELS_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'models')
#: Where ``make model`` (``tools/make_model.py``) writes the generalist: ``<repository>/models/generalist``.
GENERALIST_DIR = osp.join(_MODELS_DIR, 'generalist')
#: Where ``make model`` writes the phase model: ``<repository>/models/phases``.
PHASE_MODEL_DIR = osp.join(_MODELS_DIR, 'phases')


def is_device_name(text):
    """Whether ``text`` is spelt 'cpu', 'cuda' or 'cuda:N' (what ``--device`` accepts; :func:`check_device` also
    checks that this machine has it)."""
    return text in ('cpu', 'cuda') or (text.startswith('cuda:') and text[5:].isdigit())


def check_device(device):
    """Raise :class:`InputError` unless ``device`` ('cpu', 'cuda' or 'cuda:N') can be used here: CUDA available,
    and N below the number of visible GPUs. What the tools check before they load a model or write anything.

    Returns:
        str: ``device``.
    """
    device = str(device)
    if not is_device_name(device):
        raise InputError(f"device {device!r} (--device): expected 'cpu', 'cuda' or 'cuda:N'")
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise InputError(f'device {device!r} (--device): CUDA is not available here; use device="cpu" (--device cpu)')
    if device.startswith('cuda:') and int(device[5:]) >= torch.cuda.device_count():
        raise InputError(f'device {device!r} (--device): only {torch.cuda.device_count()} GPU(s) visible here '
                         f'(cuda:0 ... cuda:{torch.cuda.device_count() - 1})')
    return device


def _describe(exc):
    """``'<type>: <first line of the message>'`` of an exception raised by another library, for a one-line error."""
    lines = str(exc).strip().splitlines()
    return f'{type(exc).__name__}: {lines[0]}' if lines else type(exc).__name__


def read_config(config, cfg_options=None):
    """An MMEngine config read from a file (or a copy of a ``Config``), with ``cfg_options`` merged into it.

    A config is a Python program (or JSON/YAML) that MMEngine runs to read it, so reading one can fail in any way
    (a syntax error, an undefined name, a missing ``_base_`` file, a YAML list where a mapping belongs): every
    such failure is reported as an :class:`~libnet_mmdet.io.InputError` naming the file.

    Args:
        config (str | os.PathLike | mmengine.Config): config file (``.py``, ``.json``, ``.yaml``, ``.yml``) or
            object.
        cfg_options (dict | None): overrides, ``{'model.test_cfg.rcnn.score_thr': 0.3}`` (``--cfg-options``).

    Returns:
        mmengine.Config: the config (``filename`` set when read from a file).

    Raises:
        FileNotFoundError: missing config file.
        InputError: not a config file, a config that cannot be read, or overrides that do not fit it.
    """
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        if not osp.isfile(path):
            raise FileNotFoundError(f'config file not found: {path}')
        if osp.splitext(path)[1].lower() not in CONFIG_SUFFIXES:
            raise InputError(f'{path}: not a config file (expected {", ".join(CONFIG_SUFFIXES)})')
        try:
            config = Config.fromfile(path)
        except Exception as exc:  # running the config's own code: any error is the config's
            raise InputError(f'{path}: cannot read this config ({_describe(exc)})') from exc
    else:
        config = copy.deepcopy(config)
    if cfg_options:
        try:
            config.merge_from_dict(cfg_options)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f'cfg_options (--cfg-options) {cfg_options}: do not fit the config '
                             f'{getattr(config, "filename", None) or "<Config>"} ({_describe(exc)})') from exc
    return config


def read_checkpoint(checkpoint):
    """The contents of a checkpoint file (an MMEngine runner checkpoint or a bare state dict), read on the CPU.

    Raises:
        FileNotFoundError: missing file.
        InputError: a file that is not a PyTorch checkpoint (torch's unpickler fails on such bytes with any
            error: ``IndexError`` for a file starting with ``.``, ``KeyError`` for text, ...).
    """
    from mmengine.runner import CheckpointLoader
    path = os.fspath(checkpoint)
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    try:
        return CheckpointLoader.load_checkpoint(path, map_location='cpu')
    except Exception as exc:  # decoding untrusted bytes: every failure means "not a checkpoint"
        raise InputError(f'{path}: not a readable checkpoint file ({_describe(exc)})') from exc


def _checkpoint_mismatch(model, state_dict):
    """Lines describing missing keys, unexpected keys and shape mismatches (empty when the weights fit)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shapes = [f'{key}: checkpoint {tuple(state_dict[key].shape)} vs model {tuple(value.shape)}'
              for key, value in expected.items()
              if key in state_dict and hasattr(state_dict[key], 'shape') and state_dict[key].shape != value.shape]
    problems = []
    for what, items in (('missing in the checkpoint', missing), ('not in the model', unexpected),
                        ('shape mismatches', shapes)):
        if items:
            problems.append(f'{len(items)} {what} (e.g. {"; ".join(items[:3])})')
    return problems


def checkpoint_state_dict(loaded, checkpoint):
    """The weights of a :func:`read_checkpoint` result (a runner checkpoint's ``state_dict``, or a bare state dict),
    without the ``module.`` prefix of a distributed wrapper.

    Raises:
        CheckpointMismatchError: ``checkpoint`` (its path, for the message) holds no state dict.
    """
    state_dict = loaded.get('state_dict', loaded) if isinstance(loaded, dict) else None
    if not isinstance(state_dict, dict):
        raise CheckpointMismatchError(f'config/checkpoint mismatch: {checkpoint} holds no state dict')
    return {key[len('module.'):] if key.startswith('module.') else key: value for key, value in state_dict.items()}


def weights_coverage(model, state_dict):
    """Per top-level part of ``model`` (``backbone``, ``neck``, ``rpn_head``, ``roi_head`` ...), the share of its
    weights (tensor elements, buffers included) that ``state_dict`` holds with the same name and shape: what a
    lenient load (MMEngine's ``load_from``) would fill; the rest keeps its initialisation.

    Returns:
        dict[str, float]: part name -> share in [0, 1], for the parts that hold weights.
    """
    total, given = {}, {}
    for key, value in model.state_dict().items():
        part = key.split('.')[0]
        total[part] = total.get(part, 0) + value.numel()
        other = state_dict.get(key)
        if hasattr(other, 'shape') and tuple(other.shape) == tuple(value.shape):
            given[part] = given.get(part, 0) + value.numel()
    return {part: given.get(part, 0) / count for part, count in total.items() if count}


def init_segmenter(config, checkpoint=None, device='cuda:0', cfg_options=None, amp=False):
    """Build the instance segmentation detector of ``config`` and load ``checkpoint`` into it, for inference:
    :func:`init_model`, refusing a phase model's config (it segments phases, not particles: ``init_phase_model``).
    Arguments as :func:`init_model`.

    Raises:
        InputError: ``<config>: a phase model (PhaseSegmentor), not an instance segmentation model; …``, before
            the model is built; the errors of :func:`init_model`.
    """
    config = read_config(config, cfg_options)
    if str(config.get('model', {}).get('type', '')).split('.')[-1] == PHASE_MODEL_TYPE:
        raise InputError(f"{model_name(config)}: a phase model ({PHASE_MODEL_TYPE}), "
                         'not an instance segmentation model; phase models go to --phase-model (init_phase_model)')
    return init_model(config, checkpoint, device=device, amp=amp)


def init_model(config, checkpoint=None, device='cuda:0', cfg_options=None, amp=False):
    """Build the model of ``config`` (a detector or a phase model) and load ``checkpoint`` into it, for inference.

    Wraps :func:`mmdet.apis.init_detector` (importing :mod:`libnet_mmdet` first registers our datasets and
    transforms and allow-lists MMEngine checkpoint objects for torch's safe loading), but loads the weights
    strictly: a checkpoint trained with another config fails here instead of running with random layers.

    Args:
        config (str | mmengine.Config): config file or object.
        checkpoint (str | None): ``.pth`` file (an MMEngine runner checkpoint or a bare state dict); None keeps
            the random initialisation (only for speed and memory measurements).
        device (str): ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        cfg_options (dict | None): config overrides (``{'model.test_cfg.rcnn.score_thr': 0.3}``).
        amp (bool): mixed-precision inference (:func:`mixed_precision`), recorded in the config as
            ``test_cfg.fp16 = True`` (MMEngine's ``TestLoop`` key; the same as passing it in ``cfg_options``).

    Returns:
        torch.nn.Module: the detector in eval mode, with ``cfg`` (the config) and ``dataset_meta``.

    Raises:
        FileNotFoundError: missing config or checkpoint file.
        InputError: a config that cannot be read or has no model (:func:`read_config`), a model its settings do not
            build (``model.backbone.depth=7``, a misspelt type), a file that is not a checkpoint
            (:func:`read_checkpoint`), a CUDA device without CUDA.
        CheckpointMismatchError: the checkpoint's weights do not fit the config's model ("config/checkpoint
            mismatch"; lists missing/unexpected keys and shape mismatches).
    """
    from mmengine.runner import load_state_dict
    from mmdet.apis import init_detector

    check_device(device)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {checkpoint}')
    config = read_config(config, {**(cfg_options or {}), **({AMP_CFG_KEY: True} if amp else {})})
    config_name = model_name(config)
    if not isinstance(config.get('model'), dict) or 'backbone' not in config.model:
        raise InputError(f'{config_name}: not a detector config (no model dict with a backbone)')
    config.model.backbone.init_cfg = None  # the checkpoint (or nothing) gives the weights: no download
    with warnings.catch_warnings(record=True) as caught:  # init_detector resets the filters: record instead
        try:
            model = init_detector(config, None, device='cpu')
        except (KeyError, TypeError, ValueError, AssertionError) as exc:  # mmdet's checks of the model settings
            raise InputError(f'{config_name}: cannot build its model ({_describe(exc)})') from exc
    for warning in caught:  # the weights are loaded below: only that warning is moot
        if 'checkpoint is None' not in str(warning.message):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if checkpoint is not None:
        loaded = read_checkpoint(checkpoint)
        state_dict = checkpoint_state_dict(loaded, checkpoint)
        problems = _checkpoint_mismatch(model, state_dict)
        if problems:
            raise CheckpointMismatchError(
                f'config/checkpoint mismatch: the weights in {checkpoint} do not fit the model of the config '
                f'({config_name}): ' + '; '.join(problems))
        load_state_dict(model, state_dict, strict=True)
        meta = loaded.get('meta', {}).get('dataset_meta')
        if meta:
            model.dataset_meta = {key.lower(): value for key, value in meta.items()}
    model.to(device)
    model.eval()
    return model


#: The model type of a phase model (``libnet_mmdet.models.PhaseSegmentor``).
PHASE_MODEL_TYPE = 'PhaseSegmentor'
#: The config key that asks for mixed-precision inference (MMEngine's ``TestLoop(fp16=True)``).
AMP_CFG_KEY = 'test_cfg.fp16'


def uses_amp(model):
    """Whether ``model``'s config asks for mixed-precision inference (``test_cfg.fp16 = True``:
    ``init_segmenter(..., amp=True)``, ``tools/segment.py --amp``)."""
    cfg = getattr(model, 'cfg', None)
    return bool(cfg is not None and (cfg.get('test_cfg') or {}).get('fp16', False))


@contextlib.contextmanager
def mixed_precision(model):
    """Run ``model``'s feature extraction (``extract_feat``: backbone and neck, where its convolutions are) in
    mixed precision when :func:`uses_amp`, else as it is: MMEngine's ``autocast`` on the model's device (float16 on
    a GPU, bfloat16 on the CPU), the features handed on to the heads as float32, because mmcv's CPU NMS and RoIAlign
    take float32 only (whole-model autocast fails there) and the heads' box and mask arithmetic stays exact.
    Nested calls run the features once in mixed precision."""
    if not uses_amp(model) or 'extract_feat' in vars(model):
        yield
        return
    attributes = vars(model)
    from mmengine.runner import autocast
    extract_feat, device_type = model.extract_feat, next(model.parameters()).device.type

    def extract(batch_inputs):
        with autocast(device_type=device_type):
            features = extract_feat(batch_inputs)
        return features.float() if torch.is_tensor(features) else tuple(level.float() for level in features)
    attributes['extract_feat'] = extract  # an instance attribute over the class's method
    try:
        yield
    finally:
        attributes.pop('extract_feat')


def is_detector(model):
    """True for an MMDetection detector (as opposed to a plain predictor callable)."""
    return isinstance(model, torch.nn.Module) and hasattr(model, 'cfg')


def model_test_pipeline(model):
    """A copy of the test pipeline of the model's config, or of a config (a list of transform dicts)."""
    from mmdet.utils import get_test_pipeline_cfg
    return copy.deepcopy(get_test_pipeline_cfg(model if isinstance(model, Config) else model.cfg))


def uses_context_slices(model):
    """Whether ``model`` reads each slice of a volume with its two neighbours as channels (2.5D input): a detector
    whose test pipeline loads with ``LoadTomoImageFromFile(context_slices=True)``, or a predictor callable with a
    true ``context_slices`` attribute (it is then given (H, W, 3) (previous, slice, next) stacks)."""
    if not is_detector(model):
        return bool(getattr(model, 'context_slices', False))
    return bool(model_test_pipeline(model)[0].get('context_slices', False))


def scaled_test_pipeline(model, scale=1.0):
    """The test pipeline of a detector (or of its config, to check a ``scale`` before the model is built) for arrays
    at ``scale``: its loader replaced by
    ``mmdet.LoadImageFromNDArray`` (arrays are prepared by :func:`~libnet_mmdet.apis.inference.slice_preparer`),
    ``LoadAnnotations`` dropped, and the ``Resize`` scale factor multiplied by ``scale`` (a
    ``Resize(scale_factor=scale, keep_ratio=True)`` inserted after the loader when there is none). The model then
    sees each array resized by ``scale`` and, with ``rescale=True`` (``model.test_step``), pastes its masks at the
    array's own resolution, as MMDetection rescales any test image.

    Raises:
        ValueError: ``scale != 1`` and the pipeline resizes every image to a fixed ``scale`` (stock COCO recipes):
            a fixed output size leaves nothing to multiply.
    """
    pipeline = [t for t in model_test_pipeline(model) if 'LoadAnnotations' not in str(t['type'])]
    pipeline[0] = dict(type='mmdet.LoadImageFromNDArray')
    if scale == 1:
        return pipeline
    resize = _transform(pipeline, 'Resize')
    if resize is None:
        pipeline.insert(1, dict(type='mmdet.Resize', scale_factor=float(scale), keep_ratio=True))
    elif resize.get('scale') is not None:
        raise ValueError(f'scale={scale}: the test pipeline of {model_name(model)} resizes every image to the '
                         f'fixed size {resize["scale"]}, so slices cannot be rescaled; use scale=1 (--scale 1), or '
                         'a Resize with scale_factor in the config')
    else:
        factor = resize.get('scale_factor') or 1.0
        resize['scale_factor'] = (tuple(float(f) * scale for f in factor) if isinstance(factor, (tuple, list))
                                  else float(factor) * scale)
    return pipeline


def _train_pipeline_cfg(cfg):
    """The training pipeline of a config (through dataset wrappers), or [] if there is none."""
    dataset = cfg.get('train_dataloader', {}).get('dataset', {})
    while 'pipeline' not in dataset and ('dataset' in dataset or 'datasets' in dataset):
        dataset = dataset['dataset'] if 'dataset' in dataset else dataset['datasets'][0]
    return dataset.get('pipeline', [])


def transform_name(step):
    """The class name of a pipeline step: a transform dict whose ``type`` is a registry name (``'mmdet.Resize'``:
    ``'Resize'``) or a class."""
    kind = step['type']
    return kind.split('.')[-1] if isinstance(kind, str) else kind.__name__


def _transform(pipeline, name):
    return next((t for t in pipeline if transform_name(t) == name), None)


def _smaller_side(size):
    return min(size) if isinstance(size, (tuple, list)) else size


def training_tile_size(model):
    """The slice size, in input pixels, the model was trained on (None for a predictor, or if unknown):
    :func:`config_tile_size` of a detector's config, or of a config."""
    if isinstance(model, Config):
        return config_tile_size(model)
    return config_tile_size(model.cfg) if is_detector(model) else None


def config_tile_size(cfg):
    """The slice size, in input pixels, a config trains its model on (None if unknown), read before any model is
    built (``tools/segment.py`` checks ``--overlap`` against it).

    It is the smaller side of the test pipeline's ``Resize`` scale when the pipeline resizes every image to a
    fixed scale (MMDetection's stock recipes), else the training ``RandomCrop`` size divided by the test
    ``Resize`` scale factor (our recipes: native-scale crops for training, whole slices for testing). Tiling at
    this size keeps each tile within the per-image detection limits (``test_cfg.rcnn.max_per_img``) the model
    was configured for.

    Args:
        cfg (mmengine.Config): a detector's config (:func:`read_config`).
    """
    from mmdet.utils import get_test_pipeline_cfg
    resize = _transform(get_test_pipeline_cfg(cfg), 'Resize') or {}
    if resize.get('scale') is not None:
        return int(_smaller_side(resize['scale']))
    crop = _transform(_train_pipeline_cfg(cfg), 'RandomCrop')
    if crop is None or crop.get('crop_type', 'absolute') != 'absolute':
        return None
    return int(_smaller_side(crop['crop_size']) / _smaller_side(resize.get('scale_factor') or 1.0))


def model_name(model):
    """What error messages call ``model``: its config file for a detector or a config, else its type's name."""
    if not (is_detector(model) or isinstance(model, Config)):
        return type(model).__name__
    return getattr(model.cfg if is_detector(model) else model, 'filename', None) or '<Config>'


def trained_diameter_range(model):
    """The typical particle diameters ``(low, high)``, in pixels as the model sees slices, that the model was
    trained for: the config key ``particle_diameter_px`` of a detector or of its config (:func:`read_config`,
    before the model is built; top level, the generalist configs record it), the attribute
    ``particle_diameter_px`` of a predictor callable; None when it records none. The diameter of a slice is the
    median equivalent diameter ``sqrt(4 * area / pi)`` of its particle cross-sections.

    Raises:
        InputError: a recorded value that is not two finite numbers ``0 < low <= high``.
    """
    if is_detector(model) or isinstance(model, Config):
        cfg = model.cfg if is_detector(model) else model
        value, name = cfg.get('particle_diameter_px'), f'{model_name(model)}: particle_diameter_px'
    else:
        value, name = getattr(model, 'particle_diameter_px', None), f'{type(model).__name__}.particle_diameter_px'
    if value is None:
        return None
    try:
        low, high = (float(v) for v in value) if isinstance(value, (list, tuple)) else (np.nan, np.nan)
    except (TypeError, ValueError):  # not two numbers
        low = high = np.nan
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low <= high):
        raise InputError(f'{name}: expected (low, high) particle diameters in pixels with 0 < low <= high, got '
                         f'{value!r}')
    return low, high


#: The proposal budget (:func:`proposal_budget`), chosen on validation slices of every synthetic preset (22 px
#: particles, 192 x 192 px, seeds 500-501; ``benchmarks/bench_slice_speed.py --tune``, results in
#: ``benchmarks/results/slice_speed_tuning.json``) with the demo's CPU-tiny model.
#: ``BUDGET_DIAMETER_PX``: the smallest particle diameter (model pixels) assumed for a model that records no
#: trained diameters: the recipes' own limit (particles under ~16 px across are to be upsampled).
#: ``BUDGET_PACKING``: the most particle cross-sections a validation slice held (106, densest preset ``hard``), in
#: units of ``area / (pi / 4 * d**2)``. ``BUDGET_SAFETY``: headroom for denser packings, the synthetic generator's
#: densest (solid fraction 0.75) over ``hard``'s (0.6).
#: ``BUDGET_PROPOSALS_PER_PARTICLE``: RPN proposals kept per particle; the validation slices reached the config's
#: F1@0.5 (2000 proposals) with 625 (``clean``), 500 (``typical``) and 750 (``hard``): 7.1 per particle of the
#: densest slice, rounded up. ``BUDGET_DETECTIONS_PER_PARTICLE``: detections kept per particle (room for
#: duplicates and false positives above the score threshold). ``BUDGET_MIN_PARTICLES``: the floor for small tiles.
#: ``BUDGET_MIN_OBJECTNESS``: proposals whose RPN objectness is below are not passed to the RoI heads, so that
#: the budget also follows the particles an image actually holds: sparse images fill it with background boxes
#: (validation: F1@0.5 as high as with a floor of 0.02 on every preset; 1064 -> 509 proposals per sparse slice).
#: The RPN's ``nms_pre`` (candidates per feature level before its NMS) is left as configured: lowering it loses
#: small particle sections (validation: 1000 instead of 2000 cost up to 0.013 F1@0.5) and it costs little.
BUDGET_DIAMETER_PX = 16.0
BUDGET_PACKING = 0.58
BUDGET_SAFETY = 1.25
BUDGET_PROPOSALS_PER_PARTICLE = 8
BUDGET_DETECTIONS_PER_PARTICLE = 2
BUDGET_MIN_PARTICLES = 10
BUDGET_MIN_OBJECTNESS = 0.1


def two_stage_heads(model):
    """``{'rpn': rpn_head, 'rcnn': roi_head}`` of a two-stage detector (the heads whose ``test_cfg`` holds the
    proposal and detection limits), or None for anything else."""
    if not (is_detector(model) and getattr(model, 'with_rpn', False) and getattr(model, 'with_roi_head', False)):
        return None
    return dict(rpn=model.rpn_head, rcnn=model.roi_head)


def _capped(value, configured):
    """``value`` limited to the config's ``configured`` limit (no limit when that is <= 0, mmdet's "all")."""
    return value if configured is None or configured <= 0 else min(value, int(configured))


def proposal_budget(model, area_px):
    """The proposal and detection limits of a two-stage detector for one forward pass on images of ``area_px``
    pixels (as the model sees them: after the test pipeline's ``Resize``).

    The configs keep the worst case of the densest slices they were written for (the R101 recipe: 2000 RPN
    proposals per image), and the RoI heads' cost grows with the proposals kept. The budget follows the image:

    * particles an image can hold: ``n = max(BUDGET_SAFETY * BUDGET_PACKING * area_px / (pi / 4 * d**2),
      BUDGET_MIN_PARTICLES)``, rounded up, with ``d`` the smallest particle diameter the model is trained for (the
      low end of ``particle_diameter_px``, :func:`trained_diameter_range`; :data:`BUDGET_DIAMETER_PX` when the
      model records none);
    * ``test_cfg.rpn.max_per_img = BUDGET_PROPOSALS_PER_PARTICLE * n`` proposals, of which only those with an
      objectness of at least ``min_objectness = BUDGET_MIN_OBJECTNESS`` reach the RoI heads (our key, applied by
      :func:`temporary_test_cfg`);
    * ``test_cfg.rcnn.max_per_img = BUDGET_DETECTIONS_PER_PARTICLE * n`` detections;

    each at most the config's own value (the budget only lowers limits; ``rpn.nms_pre`` is kept). The constants
    were chosen on validation data of every synthetic preset, the packing on the densest (see their comments).

    Args:
        model: a detector (:func:`init_segmenter`) or predictor callable.
        area_px (int): pixels of the largest image of the forward pass (H x W).

    Returns:
        dict | None: ``{'rpn': {'max_per_img': int, 'min_objectness': float}, 'rcnn': {'max_per_img': int}}``,
        overrides
        for :func:`temporary_test_cfg`; None for a model without RPN and RoI heads (a predictor callable, a
        one-stage detector).
    """
    heads = two_stage_heads(model)
    if heads is None:
        return None
    diameter_px = (trained_diameter_range(model) or (BUDGET_DIAMETER_PX,))[0]
    particles = math.ceil(max(BUDGET_SAFETY * BUDGET_PACKING * area_px / (math.pi / 4 * diameter_px ** 2),
                              BUDGET_MIN_PARTICLES))
    proposals, detections = BUDGET_PROPOSALS_PER_PARTICLE * particles, BUDGET_DETECTIONS_PER_PARTICLE * particles
    rpn_cfg, rcnn_cfg = heads['rpn'].test_cfg, heads['rcnn'].test_cfg
    return dict(rpn=dict(max_per_img=_capped(proposals, rpn_cfg.get('max_per_img')),
                         min_objectness=BUDGET_MIN_OBJECTNESS),
                rcnn=dict(max_per_img=_capped(detections, rcnn_cfg.get('max_per_img'))))


def _objectness_filter(predict_by_feat, min_objectness):
    """An RPN head's bound ``predict_by_feat`` that drops proposals whose objectness is below
    ``min_objectness``."""
    def predict(*args, **kwargs):
        return [proposals[proposals.scores >= min_objectness] for proposals in predict_by_feat(*args, **kwargs)]
    return predict


@contextlib.contextmanager
def temporary_test_cfg(model, overrides):
    """Run a two-stage detector with ``overrides`` (``{'rpn': {key: value}, 'rcnn': {key: value}}``, e.g. from
    :func:`proposal_budget`) merged into the test settings of its RPN and RoI heads, restored on exit even after
    an error. ``rpn.min_objectness`` (ours, not mmdet's) drops the RPN's proposals of lower objectness. The heads
    get copies: neither ``model.cfg`` nor the heads' own settings objects are changed. No-op for empty
    ``overrides``."""
    heads = two_stage_heads(model) if overrides else None
    saved = {stage: heads[stage].test_cfg for stage in overrides} if heads else {}
    min_objectness = overrides.get('rpn', {}).get('min_objectness') if heads else None
    rpn_attributes = vars(heads['rpn']) if heads else {}
    outer_filter = rpn_attributes.get('predict_by_feat')  # that of an enclosing call, if any
    try:
        for stage, values in saved.items():
            settings = copy.deepcopy(values)
            settings.update(overrides[stage])
            heads[stage].test_cfg = settings
        if min_objectness is not None:  # an instance attribute over the class's method
            rpn_attributes['predict_by_feat'] = _objectness_filter(heads['rpn'].predict_by_feat, min_objectness)
        yield
    finally:
        for stage, values in saved.items():
            heads[stage].test_cfg = values
        if min_objectness is not None:
            rpn_attributes.pop('predict_by_feat')
            if outer_filter is not None:
                rpn_attributes['predict_by_feat'] = outer_filter


def generalist_files(model_dir=None):
    """``(config, checkpoint)`` paths of the generalist model (``config.py`` and ``model.pth`` in ``model_dir``,
    default :data:`GENERALIST_DIR`, written by ``make model``), or None when it is not built: ``make model`` writes
    ``model.json`` last, so a folder without it holds an unfinished build."""
    return _built_model_files(GENERALIST_DIR if model_dir is None else model_dir)


def phase_model_files(model_dir=None):
    """``(config, checkpoint)`` paths of the phase model (in ``model_dir``, default :data:`PHASE_MODEL_DIR`, written
    by ``make model``), or None when it is not built (as :func:`generalist_files`)."""
    return _built_model_files(PHASE_MODEL_DIR if model_dir is None else model_dir)


def _built_model_files(model_dir):
    model_dir = os.fspath(model_dir)
    files = osp.join(model_dir, 'config.py'), osp.join(model_dir, 'model.pth')
    return files if all(osp.isfile(path) for path in (*files, osp.join(model_dir, 'model.json'))) else None


def default_batch_size(model):
    """Images per forward pass: 4 on a GPU; 1 on the CPU, where batching is no faster and multiplies the peak
    memory (2 GB instead of 1 GB for the CPU-tiny model, 256 px slices)."""
    parameter = next(model.parameters(), None) if isinstance(model, torch.nn.Module) else None
    return 4 if parameter is not None and parameter.device.type == 'cuda' else 1


def code_fingerprint():
    """The versions of the code that turns a model's output into 2D labels: a hash of every ``.py`` file of this
    package (an upgrade or a local edit need not change ``__version__``) and the versions of the libraries the
    inference runs on, so that an interrupted volume run does not resume slabs a changed program segmented.

    Returns:
        dict: ``libnet_mmdet`` (version), ``source`` (hex digest), ``torch``, ``mmcv``, ``mmdet``, ``mmengine``,
        ``numpy`` (versions).
    """
    import mmcv
    import mmdet
    import mmengine

    from .. import __version__
    return dict(libnet_mmdet=__version__, source=_source_digest(), torch=torch.__version__, mmcv=mmcv.__version__,
                mmdet=mmdet.__version__, mmengine=mmengine.__version__, numpy=np.__version__)


@functools.lru_cache(maxsize=None)
def _source_digest():
    """Hex digest (blake2b, 128 bit) of this package's ``.py`` files, their paths and bytes (0.7 MB: a few ms)."""
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(glob.glob(osp.join(package, '**', '*.py'), recursive=True)):
        digest.update(osp.relpath(path, package).encode())
        with open(path, 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()


def model_fingerprint(model):
    """A short hash identifying a model's weights and config (or a predictor's ``fingerprint`` attribute), so that
    an interrupted volume run only resumes with the same model. The config is hashed as sorted JSON (its
    ``pretty_text`` runs a code formatter: 1.7 s per call on the CPU-tiny config). A predictor callable without a
    ``fingerprint`` gets one of its own per call: its name does not say what it computes (two functions named
    ``predict``, two instances of one class with other settings), so its runs never resume."""
    digest = hashlib.blake2b(digest_size=16)
    if is_detector(model):
        digest.update(json.dumps(model.cfg.to_dict(), sort_keys=True,
                                 default=lambda value: getattr(value, '__qualname__', None) or repr(value)).encode())
        for key, value in model.state_dict().items():
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()
    digest.update(str(getattr(model, 'fingerprint', None) or uuid.uuid4()).encode())
    return digest.hexdigest()
