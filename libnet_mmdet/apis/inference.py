"""Segmenting 2D slices into instance label images with a loaded model (tiled when they are large).

>>> model = init_segmenter('configs/nmc/mask-rcnn_r101_fpn.py', 'work_dirs/nmc/best.pth', device='cuda:0')
>>> labels_hw, details = segment_image(model, 'slice_0100.tif')  # doctest: +SKIP
>>> details['scores'], details['boxes']  # (N,), (N, 4) x0, y0, x1, y1 of instance k = labels_hw == k + 1

Input slices are prepared as the model's test pipeline prepares files, by the loader that takes arrays in place
of the pipeline's file loader (swapped by type, as MMDetection's ``DetInferencer._init_pipeline`` does):
:class:`~libnet_mmdet.datasets.transforms.LoadTomoImageFromNDArray`, with the settings of the pipeline's
:class:`~libnet_mmdet.datasets.transforms.LoadTomoImageFromFile` (intensity normalisation, channels), or with
``normalize='auto'`` for MMDetection's stock ``LoadImageFromFile``: 8-bit slices are used as stored and other
dtypes are percentile-normalised to 0-255 (the stock loader would pass raw 16-bit values, which no model trained
on 8-bit PNGs expects). Normalisation is per whole slice, before tiling, so that all tiles of a slice see the same
intensity mapping. The rest of the test pipeline (``Resize``, ``PackDetInputs``) runs unchanged on each array
(slice or tile) after ``mmdet.LoadImageFromNDArray``; ``LoadAnnotations`` is dropped.

Besides an MMDetection detector, every function here accepts a *predictor*: any callable taking a list of 2D
slices (or tiles) and returning, for each, ``(labels_hw, scores)`` (integer instance labels 1..n, float scores
with ``scores[k - 1]`` for label k). Tests use a deterministic predictor; another segmenter can be wrapped so.
"""
import os

import numpy as np
import torch
from skimage.transform import resize

from ..evaluation import instances_to_labels
from ..io.images import ImageFormatError, check_finite, read_image, read_image_info
from ..volume.tiling import DEFAULT_MERGE_IOU, check_tiling, order_by_score, segment_tiled
from .model import default_batch_size, is_detector, model_test_pipeline, training_tile_size

DEFAULT_SCORE_THR = 0.5


def slice_loader_cfg(model):
    """The config of the transform that prepares a whole slice (an array) as the test pipeline's loader of a
    detector prepares a file: that loader swapped by type (see the module docstring)."""
    loader = model_test_pipeline(model)[0]
    if str(loader['type']).split('.')[-1] == 'LoadTomoImageFromFile':
        return dict(loader, type='LoadTomoImageFromNDArray')
    return dict(type='LoadTomoImageFromNDArray', normalize='auto')  # stock loader: 8-bit as stored, else 0-255


def slice_preparer(model):
    """``prepare(slice_hw) -> array`` that normalises a whole slice as the model's test pipeline would (see the
    module docstring): (H, W, C) float32 in [0, 255] (uint8 with ``to_float32=False``); identity for a predictor
    callable."""
    if not is_detector(model):
        return lambda image: image
    from mmdet.registry import TRANSFORMS
    loader = TRANSFORMS.build(slice_loader_cfg(model))
    return lambda image: loader(dict(img=image))['img']


def _detections_to_labels(pred_instances, shape_hw, score_thr):
    """Paint the masks of one image's predictions with score >= ``score_thr`` into an instance label image; each
    pixel belongs to the highest-scoring mask covering it (ties: the later detection).

    Returns:
        tuple: ``(labels_hw, scores)``: (H, W) int32 labels 1..n and float32 (n,) scores of labels 1..n.
    """
    if 'masks' not in pred_instances:
        raise ValueError('the model predicts no masks: segment_image needs an instance segmentation model '
                         '(e.g. Mask R-CNN)')
    scores = pred_instances.scores.detach().cpu().numpy()
    keep = np.flatnonzero(scores >= score_thr)
    order = keep[np.argsort(scores[keep], kind='stable')[::-1]]  # by decreasing score, ties: the later first
    labels = instances_to_labels(pred_instances.masks, shape_hw, order=order,
                                 boxes=pred_instances.bboxes.detach().cpu().numpy())
    return labels, scores[order]


def detector_predictor(model, score_thr=DEFAULT_SCORE_THR, batch_size=1):
    """A predictor (see the module docstring) running an MMDetection detector on prepared arrays.

    The model's test pipeline is built once with its loader swapped for ``mmdet.LoadImageFromNDArray`` (the
    arrays are prepared already, :func:`slice_preparer`) and ``LoadAnnotations`` dropped; arrays go through the
    model in batches of ``batch_size``.
    """
    from mmcv.transforms import Compose
    pipeline_cfg = [t for t in model_test_pipeline(model) if 'LoadAnnotations' not in str(t['type'])]
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
            results += [_detections_to_labels(sample.pred_instances, image.shape[:2], score_thr)
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
    """An (H, W) slice resized by ``scale`` (bilinear, anti-aliased when shrinking), in its own dtype (resampled in
    float32, or in float64 for dtypes float32 cannot hold, such as float64 values beyond 3.4e38)."""
    shape = tuple(max(1, round(n * scale)) for n in image.shape[:2])
    work_dtype = np.float32 if np.can_cast(image.dtype, np.float32) else np.float64
    resized = resize(image.astype(work_dtype), shape, order=1, anti_aliasing=scale < 1, preserve_range=True)
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
        model: a detector from :func:`~libnet_mmdet.apis.init_segmenter`, or a predictor callable (module
            docstring).
        image (np.ndarray | str | list): an (H, W) slice (uint8, uint16, float32, ...) or an image file path, or
            a list of them.
        score_thr (float): detections scoring below are dropped.
        tile_size (int | 'auto' | None): slices larger than this are segmented in overlapping tiles of this
            size; ``'auto'`` uses the model's training size
            (:func:`~libnet_mmdet.apis.model.training_tile_size`); None never tiles.
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
