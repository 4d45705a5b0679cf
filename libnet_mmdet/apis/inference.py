"""Loading a trained model and segmenting 2D slices into instance label images (tiled when they are large).

>>> model = init_segmenter('configs/nmc/mask-rcnn_r101_fpn.py', 'work_dirs/nmc/best.pth', device='cuda:0')
>>> labels_hw, details = segment_image(model, 'slice_0100.tif')  # doctest: +SKIP
>>> details['scores'], details['boxes']  # (N,), (N, 4) x0, y0, x1, y1 of instance k = labels_hw == k + 1

Input slices are prepared exactly as the model's test pipeline prepares files: when its first transform is
:class:`~libnet_mmdet.datasets.transforms.LoadTomoImageFromFile`, with that transform's intensity normalisation
and channels; with MMDetection's stock ``LoadImageFromFile``, 8-bit slices are used as stored and other dtypes are
percentile-normalised to 0-255 (the stock loader would pass raw 16-bit values, which no model trained on 8-bit
PNGs expects). Normalisation is per whole slice, before tiling, so that all tiles of a slice see the same
intensity mapping. The rest of the test pipeline (``Resize``, ``PackDetInputs``) runs unchanged on each array;
``LoadAnnotations`` is dropped.

Besides an MMDetection detector, every function here accepts a *predictor*: any callable taking a list of 2D
slices (or tiles) and returning, for each, ``(labels_hw, scores)`` (integer instance labels 1..n, float scores
with ``scores[k - 1]`` for label k). Tests use a deterministic predictor; another segmenter can be wrapped so.
"""
import copy
import hashlib
import os
import os.path as osp
import pickle
import warnings

import numpy as np
import torch
from skimage.transform import resize

from ..datasets.image_io import (ImageFormatError, check_finite, normalize_intensity, read_image, read_image_info,
                                 to_channels)
from ..volume.tiling import DEFAULT_MERGE_IOU, check_tiling, order_by_score, segment_tiled

DEFAULT_SCORE_THR = 0.5
TOMO_LOADER = 'LoadTomoImageFromFile'


class CheckpointMismatchError(ValueError):
    """The checkpoint's weights do not fit the model the config builds."""


def _check_device(device):
    if str(device).startswith('cuda') and not torch.cuda.is_available():
        raise RuntimeError(f'device {device!r} requested but CUDA is not available here; use device="cpu"')


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


def init_segmenter(config, checkpoint=None, device='cuda:0', cfg_options=None):
    """Build the detector of ``config`` and load ``checkpoint`` into it, for inference.

    Wraps :func:`mmdet.apis.init_detector` (importing :mod:`libnet_mmdet` first registers our datasets and
    transforms and allow-lists MMEngine checkpoint objects for torch's safe loading), but loads the weights
    strictly: a checkpoint trained with another config fails here instead of running with random layers.

    Args:
        config (str | mmengine.Config): config file or object.
        checkpoint (str | None): ``.pth`` file (an MMEngine runner checkpoint or a bare state dict); None keeps
            the random initialisation (only for speed and memory measurements).
        device (str): ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        cfg_options (dict | None): config overrides (``{'model.test_cfg.rcnn.score_thr': 0.3}``).

    Returns:
        torch.nn.Module: the detector in eval mode, with ``cfg`` (the config) and ``dataset_meta``.

    Raises:
        FileNotFoundError: missing config or checkpoint file.
        ValueError: a checkpoint file that torch cannot load.
        CheckpointMismatchError: the checkpoint's weights do not fit the config's model ("config/checkpoint
            mismatch"; lists missing/unexpected keys and shape mismatches).
        RuntimeError: a CUDA device without CUDA.
    """
    from mmengine.config import Config
    from mmengine.runner import CheckpointLoader, load_state_dict
    from mmdet.apis import init_detector

    _check_device(device)
    if isinstance(config, (str, os.PathLike)):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config file not found: {config}')
        config = Config.fromfile(config)
    else:
        config = copy.deepcopy(config)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {checkpoint}')
    if cfg_options:
        config.merge_from_dict(cfg_options)
    config.model.backbone.init_cfg = None  # the checkpoint (or nothing) gives the weights: no download
    with warnings.catch_warnings(record=True) as caught:  # init_detector resets the filters: record instead
        model = init_detector(config, None, device='cpu')
    for warning in caught:  # the weights are loaded below: only that warning is moot
        if 'checkpoint is None' not in str(warning.message):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if checkpoint is not None:
        try:
            loaded = CheckpointLoader.load_checkpoint(os.fspath(checkpoint), map_location='cpu')
        except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:
            raise ValueError(f'{checkpoint}: not a readable checkpoint file ({type(exc).__name__}: {exc})') from exc
        state_dict = loaded.get('state_dict', loaded) if isinstance(loaded, dict) else None
        if not isinstance(state_dict, dict):
            raise CheckpointMismatchError(f'config/checkpoint mismatch: {checkpoint} holds no state dict')
        state_dict = {key[len('module.'):] if key.startswith('module.') else key: value
                      for key, value in state_dict.items()}
        problems = _checkpoint_mismatch(model, state_dict)
        if problems:
            raise CheckpointMismatchError(
                f'config/checkpoint mismatch: the weights in {checkpoint} do not fit the model of the config '
                f'({getattr(config, "filename", None) or "<Config>"}): ' + '; '.join(problems))
        load_state_dict(model, state_dict, strict=True)
        meta = loaded.get('meta', {}).get('dataset_meta')
        if meta:
            model.dataset_meta = {key.lower(): value for key, value in meta.items()}
    model.to(device)
    model.eval()
    return model


def is_detector(model):
    """True for an MMDetection detector (as opposed to a plain predictor callable)."""
    return isinstance(model, torch.nn.Module) and hasattr(model, 'cfg')


def _test_pipeline_cfg(model):
    from mmdet.utils import get_test_pipeline_cfg
    return copy.deepcopy(get_test_pipeline_cfg(model.cfg))


def _train_pipeline_cfg(model):
    """The training pipeline of the model's config (through dataset wrappers), or [] if there is none."""
    dataset = model.cfg.get('train_dataloader', {}).get('dataset', {})
    while 'pipeline' not in dataset and ('dataset' in dataset or 'datasets' in dataset):
        dataset = dataset['dataset'] if 'dataset' in dataset else dataset['datasets'][0]
    return dataset.get('pipeline', [])


def _transform(pipeline, name):
    return next((t for t in pipeline if str(t['type']).split('.')[-1] == name), None)


def _smaller_side(size):
    return min(size) if isinstance(size, (tuple, list)) else size


def training_tile_size(model):
    """The slice size, in input pixels, the model was trained on (None for a predictor, or if unknown).

    It is the smaller side of the test pipeline's ``Resize`` scale when the pipeline resizes every image to a
    fixed scale (MMDetection's stock recipes), else the training ``RandomCrop`` size divided by the test
    ``Resize`` scale factor (our recipes: native-scale crops for training, whole slices for testing). Tiling at
    this size keeps each tile within the per-image detection limits (``test_cfg.rcnn.max_per_img``) the model
    was configured for.
    """
    if not is_detector(model):
        return None
    resize = _transform(_test_pipeline_cfg(model), 'Resize') or {}
    if resize.get('scale') is not None:
        return int(_smaller_side(resize['scale']))
    crop = _transform(_train_pipeline_cfg(model), 'RandomCrop')
    if crop is None or crop.get('crop_type', 'absolute') != 'absolute':
        return None
    return int(_smaller_side(crop['crop_size']) / _smaller_side(resize.get('scale_factor') or 1.0))


def _loader_settings(model):
    """(normalize mode or None for 'by dtype', percentiles, channels, to_float32) of the test pipeline's loader."""
    from mmdet.registry import TRANSFORMS
    loader = _test_pipeline_cfg(model)[0]
    if str(loader['type']).split('.')[-1] == TOMO_LOADER:
        tomo = TRANSFORMS.build(loader)
        return tomo.normalize, tomo.percentiles, tomo.channels, tomo.to_float32
    return None, (0.5, 99.5), 3, True


def slice_preparer(model):
    """``prepare(slice_hw) -> array`` that normalises a whole slice as the model's test pipeline would (see the
    module docstring); identity for a predictor callable."""
    if not is_detector(model):
        return lambda image: image
    normalize, percentiles, channels, to_float32 = _loader_settings(model)

    def prepare(image):
        mode = normalize or ('none' if image.dtype == np.uint8 else 'percentile')
        prepared = to_channels(normalize_intensity(image, mode, percentiles), channels)
        return prepared if to_float32 else np.round(prepared).astype(np.uint8)
    return prepare


def _instances_to_labels(pred_instances, shape_hw, score_thr):
    """Paint the masks of one image's predictions with score >= ``score_thr`` into an instance label image, in
    increasing score order so that each pixel belongs to the highest-scoring mask covering it."""
    if 'masks' not in pred_instances:
        raise ValueError('the model predicts no masks: segment_image needs an instance segmentation model '
                         '(e.g. Mask R-CNN)')
    scores = pred_instances.scores.detach().cpu().numpy()
    keep = np.flatnonzero(scores >= score_thr)
    keep = keep[np.argsort(scores[keep], kind='stable')]
    masks = pred_instances.masks[torch.as_tensor(keep, dtype=torch.long)].detach().cpu().numpy().astype(bool)
    boxes = pred_instances.bboxes[torch.as_tensor(keep, dtype=torch.long)].detach().cpu().numpy()
    labels = np.zeros(shape_hw, np.int32)
    height, width = shape_hw
    for k, (mask, (x0, y0, x1, y1)) in enumerate(zip(masks, boxes), start=1):
        # Mask R-CNN pastes each mask inside its box (+1 px); 2 px of margin covers rounding.
        ys = slice(max(int(np.floor(y0)) - 2, 0), min(int(np.ceil(y1)) + 2, height))
        xs = slice(max(int(np.floor(x0)) - 2, 0), min(int(np.ceil(x1)) + 2, width))
        labels[ys, xs][mask[ys, xs]] = k
    return labels, scores[keep]


def default_batch_size(model):
    """Images per forward pass: 4 on a GPU; 1 on the CPU, where batching is no faster and multiplies the peak
    memory (2 GB instead of 1 GB for the CPU-tiny model, 256 px slices)."""
    parameter = next(model.parameters(), None) if isinstance(model, torch.nn.Module) else None
    return 4 if parameter is not None and parameter.device.type == 'cuda' else 1


def detector_predictor(model, score_thr=DEFAULT_SCORE_THR, batch_size=1):
    """A predictor (see the module docstring) running an MMDetection detector on prepared arrays.

    The model's test pipeline is built once with its loader swapped for ``LoadImageFromNDArray`` (and
    ``LoadAnnotations`` dropped); arrays go through the model in batches of ``batch_size``.
    """
    from mmcv.transforms import Compose
    pipeline_cfg = [t for t in _test_pipeline_cfg(model) if 'LoadAnnotations' not in str(t['type'])]
    pipeline_cfg[0] = dict(type='mmdet.LoadImageFromNDArray')
    pipeline = Compose(pipeline_cfg)

    def predict(images):
        results = []
        for first in range(0, len(images), batch_size):
            chunk = images[first:first + batch_size]
            packed = [pipeline(dict(img=image, img_id=i)) for i, image in enumerate(chunk)]
            batch = dict(inputs=[p['inputs'] for p in packed], data_samples=[p['data_samples'] for p in packed])
            with torch.no_grad():
                samples = model.test_step(batch)
            results += [_instances_to_labels(sample.pred_instances, image.shape[:2], score_thr)
                        for sample, image in zip(samples, chunk)]
        return results
    return predict


def resolve_tiling(model, tile_size='auto', overlap=None):
    """``(tile_size, overlap)`` with ``'auto'`` resolved to the model's training size (None: no tiling) and the
    overlap defaulting to a quarter tile."""
    if tile_size == 'auto':
        tile_size = training_tile_size(model)
    if tile_size is None:
        return None, None
    overlap = int(tile_size) // 4 if overlap is None else overlap
    check_tiling(tile_size, overlap)
    return int(tile_size), int(overlap)


def resample_slice(image, scale):
    """An (H, W) slice resized by ``scale`` (bilinear, anti-aliased when shrinking), in its own dtype."""
    shape = tuple(max(1, round(n * scale)) for n in image.shape[:2])
    resized = resize(image.astype(np.float32), shape, order=1, anti_aliasing=scale < 1, preserve_range=True)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        return np.clip(np.round(resized), info.min, info.max).astype(image.dtype)
    return resized.astype(image.dtype)


def labels_to_shape(labels_hw, shape_hw):
    """Instance labels resampled to ``shape_hw`` by nearest neighbour (pixel centres)."""
    rows, cols = (np.minimum(((np.arange(n) + 0.5) * old / n).astype(np.int64), old - 1)
                  for n, old in zip(shape_hw, labels_hw.shape))
    return labels_hw[np.ix_(rows, cols)]


def slice_segmenter(model, score_thr=DEFAULT_SCORE_THR, tile_size='auto', overlap=None, batch_size=None,
                    merge_iou=DEFAULT_MERGE_IOU, scale=1.0):
    """``segment(slices) -> [(labels_hw, details), ...]`` for a list of checked 2D slices: what
    :func:`segment_image` and :func:`~libnet_mmdet.apis.segment_volume` run per slice."""
    if not 0 <= score_thr <= 1:
        raise ValueError(f'score_thr must be in [0, 1], got {score_thr!r}')
    if not 0 < scale <= 16:
        raise ValueError(f'scale must be in (0, 16], got {scale!r}')
    batch_size = default_batch_size(model) if batch_size is None else batch_size
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
    tile_size, overlap = resolve_tiling(model, tile_size, overlap)
    predict = detector_predictor(model, score_thr, batch_size) if is_detector(model) else model
    if not callable(predict):
        raise TypeError(f'model: expected an MMDetection detector (init_segmenter) or a predictor callable, got '
                        f'{type(model).__name__}')
    prepare = slice_preparer(model)

    def segment(slices):
        shapes = [image.shape[:2] for image in slices]
        prepared = [prepare(image if scale == 1 else resample_slice(image, scale)) for image in slices]
        small = [i for i, image in enumerate(prepared) if tile_size is None or max(image.shape[:2]) <= tile_size]
        results = dict(zip(small, predict([prepared[i] for i in small]) if small else []))
        for i in sorted(set(range(len(prepared))) - set(small)):
            results[i] = segment_tiled(prepared[i], predict, tile_size, overlap, merge_iou)
        output = []
        for i in range(len(prepared)):
            labels = np.asarray(results[i][0])
            labels, scores, boxes = order_by_score(labels if scale == 1 else labels_to_shape(labels, shapes[i]),
                                                   results[i][1])
            output.append((labels, dict(ids=np.arange(1, len(scores) + 1, dtype=np.int64), scores=scores,
                                        boxes=boxes)))
        return output
    return segment


def load_slice(image, name=None):
    """A checked 2D slice from an array or an image file path.

    Returns:
        np.ndarray: (H, W) or colour (H, W, 3|4), finite.

    Raises:
        FileNotFoundError / ImageFormatError: missing or unreadable file, a (Z, Y, X) stack, NaN/Inf pixels.
        ValueError: an array that is not a 2D slice or is empty.
    """
    if isinstance(image, (str, os.PathLike)):
        name = os.fspath(image)
        shape, _, is_stack = read_image_info(name)
        if is_stack:
            raise ImageFormatError(f'{name}: a (Z, Y, X) stack of shape {shape}, not a 2D slice; use '
                                   'segment_volume')
        image = read_image(name)
    image = np.asarray(image)
    name = name or '<array>'
    is_colour = image.ndim == 3 and image.shape[-1] in (3, 4)
    if image.ndim != 2 and not is_colour:
        hint = '; use segment_volume for a (Z, Y, X) stack' if image.ndim == 3 else ''
        raise ValueError(f'{name}: expected a 2D (H, W) slice, got shape {image.shape}{hint}')
    if image.size == 0:
        raise ValueError(f'{name}: empty image of shape {image.shape}')
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f'{name}: unsupported dtype {image.dtype}; expected uint8/uint16/float32')
    return check_finite(image, name)


def segment_image(model, image, score_thr=DEFAULT_SCORE_THR, tile_size='auto', overlap=None, batch_size=None,
                  merge_iou=DEFAULT_MERGE_IOU, scale=1.0):
    """Segment one 2D slice, or a list of slices (batched), into instance label images.

    Args:
        model: a detector from :func:`init_segmenter`, or a predictor callable (module docstring).
        image (np.ndarray | str | list): an (H, W) slice (uint8, uint16, float32, ...) or an image file path, or
            a list of them.
        score_thr (float): detections scoring below are dropped.
        tile_size (int | 'auto' | None): slices larger than this are segmented in overlapping tiles of this
            size; ``'auto'`` uses the model's training size (:func:`training_tile_size`); None never tiles.
        overlap (int | None): least tile overlap in pixels; make it >= the largest particle diameter (default a
            quarter tile). See :mod:`libnet_mmdet.volume.tiling`.
        batch_size (int | None): images (slices or tiles) per forward pass (default: 4 on a GPU, 1 on the CPU).
        merge_iou (float): seam-merge threshold of the tiling.
        scale (float): resize each slice by this factor before the model, and the labels back (nearest): make
            the particles about as many pixels across as in the training data (``training diameter / your
            diameter``, e.g. 0.33 for 66 px particles and a model trained on 22 px ones). Tile sizes and
            ``overlap`` are in pixels of the resized slice.

    Returns:
        tuple | list: ``(labels_hw, details)`` per slice: ``labels_hw`` uint16 (uint32 above 65535 instances)
        with instances 1..N by decreasing score, pixels of overlapping masks given to the higher score;
        ``details`` dict with ``ids`` (N,) 1..N, ``scores`` (N,) float32 and ``boxes`` (N, 4) float32
        ``x0, y0, x1, y1`` of each instance's painted mask. A list of such tuples for a list input.
    """
    single = not isinstance(image, (list, tuple))
    images = [image] if single else list(image)
    slices = [load_slice(item, '<array>' if single else f'image[{i}]') for i, item in enumerate(images)]
    results = slice_segmenter(model, score_thr, tile_size, overlap, batch_size, merge_iou, scale)(slices)
    return results[0] if single else results


def model_fingerprint(model):
    """A short hash identifying a model's weights and config (or a predictor's ``fingerprint`` attribute / name),
    so that an interrupted volume run only resumes with the same model."""
    digest = hashlib.blake2b(digest_size=16)
    if is_detector(model):
        digest.update(model.cfg.pretty_text.encode())
        for key, value in model.state_dict().items():
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()
    digest.update(str(getattr(model, 'fingerprint', None) or getattr(model, '__qualname__', type(model).__name__))
                  .encode())
    return digest.hexdigest()
