"""Segmenting 2D slices into instance label images with a loaded model (tiled when they are large).

>>> model = init_segmenter('configs/nmc/mask-rcnn_r101_fpn.py',
...                        'work_dirs/mask-rcnn_r101_fpn/best_coco_segm_mAP_50_epoch_36.pth', device='cuda:0')
>>> labels_hw, details = segment_image(model, 'slice_0100.tif')  # doctest: +SKIP
>>> details['scores'], details['boxes']  # (N,), (N, 4) x0, y0, x1, y1 of instance k = labels_hw == k + 1

Input slices are prepared as the model's test pipeline prepares files, by the loader that takes arrays in place
of the pipeline's file loader (swapped by type, as MMDetection's ``DetInferencer._init_pipeline`` does):
:class:`~libnet_mmdet.datasets.transforms.LoadTomoImageFromNDArray`, with the settings of the pipeline's
:class:`~libnet_mmdet.datasets.transforms.LoadTomoImageFromFile` (intensity normalisation, channels), or with
``normalize='auto'`` for MMDetection's stock ``LoadImageFromFile``: 8-bit slices are used as stored and other
dtypes are percentile-normalised to 0-255 (the stock loader would pass raw 16-bit values, which no model trained
on 8-bit PNGs expects). Normalisation is per whole slice, before tiling, so that all tiles of a slice see the same
intensity mapping; the slices of one volume share one mapping (:func:`shared_intensity_range`, what
:func:`~libnet_mmdet.apis.segment_volume` and :func:`~libnet_mmdet.apis.phases.predict_phases` use), so that an
empty slice (air above the sample) stays dark instead of having its noise stretched into particles. The fill
around a reconstructed field of view (:func:`~libnet_mmdet.io.images.outside_view_mask`) is given the values of its
mirror images inside before the model sees the slice (by the loader, as in training:
:func:`~libnet_mmdet.io.images.fill_outside_view`), so that no flat black edge cuts the particles there, and is
never labelled (an instance found mostly there is dropped: :func:`in_view`). The rest of the test pipeline
(``Resize``, ``PackDetInputs``) runs on each array (slice or tile) after ``mmdet.LoadImageFromNDArray``;
``LoadAnnotations`` is dropped.

Scale: a model knows the particle sizes it was trained for. ``scale`` resizes what the model sees: the test
pipeline's ``Resize`` scale factor is multiplied by it (:func:`~libnet_mmdet.apis.model.scaled_test_pipeline`),
and the model (``test_step``, ``rescale=True``) pastes its masks at the slice's own resolution, as MMDetection
does for any resized test image; tiles are cut from the slice as it is, ``tile_size / scale`` pixels across.
``scale='auto'`` estimates it per call (:func:`estimate_scale`); the default (None) is ``'auto'`` for models that
record the particle diameters they were trained for (:func:`~libnet_mmdet.apis.model.trained_diameter_range`),
else 1. A list of scales segments at each and merges
(:func:`~libnet_mmdet.volume.tiling.merge_segmentations`), for slices that mix very different sizes.

Speed: the configs keep the proposal and detection limits of the densest slices they were written for (the
recipe: 2000 RPN proposals per image), and the RoI heads' cost grows with them. By default (``proposals='auto'``)
each forward pass of a two-stage detector keeps only what an image of its size can need
(:func:`~libnet_mmdet.apis.model.proposal_budget`: from the image or tile area and the smallest particle the model
is trained for), and masks are predicted only for detections that reach ``score_thr`` (:func:`forward_test_cfg`);
the settings are passed per forward pass, the config is not changed. ``proposals='config'`` keeps the config's.

Besides an MMDetection detector, every function here accepts a *predictor*: any callable taking a list of 2D
slices (or tiles) and returning, for each, ``(labels_hw, scores)`` (integer instance labels 1..n, float scores
with ``scores[k - 1]`` for label k); with a true attribute ``context_slices`` it is given (H, W, 3) (previous,
slice, next) stacks instead, as a detector with 2.5D input is (:func:`~libnet_mmdet.apis.model.uses_context_slices`).
Tests use a deterministic predictor; another segmenter can be wrapped so.
A predictor has no pipeline: at a scale other than 1 its slices are resampled (:func:`resample_slice`) and its
labels resampled back by nearest neighbour; its attribute ``particle_diameter_px`` plays the config key's part.
"""
import numbers
import os
import warnings

import numpy as np
import torch
from mmengine.config import Config
from scipy import ndimage
from skimage.transform import resize

from ..evaluation import instances_to_labels
from ..io.errors import InputError, check_int, check_number, is_number_in
from ..io.images import (ImageFormatError, check_finite, check_not_colour, fill_outside_view, read_image,
                         read_image_info, slice_outside_view, to_channels)
from ..volume.tiling import DEFAULT_MERGE_IOU, check_tiling, merge_segmentations, order_by_score, segment_tiled
from .model import (default_batch_size, is_detector, mixed_precision, model_name, model_test_pipeline,
                    proposal_budget, scaled_test_pipeline, temporary_test_cfg, trained_diameter_range,
                    training_tile_size, two_stage_heads, uses_context_slices)

DEFAULT_SCORE_THR = 0.5
PROPOSAL_MODES = ('auto', 'config')  #: ``proposals``: the budget of the image size, or the config's test_cfg
MAX_SCALE = 16  #: the largest ``scale``
#: :func:`estimate_scale`: input particle diameters (px) its candidate scales cover, the side of its window in
#: model pixels, the least score of the detections it measures and the number of slices it samples.
AUTO_DIAMETERS_PX = (6, 600)
AUTO_WINDOW_PX = 384
AUTO_MIN_SCORE = 0.5
AUTO_SAMPLES = 3
#: A candidate scale is judged only if it found at least this many particles, when any candidate did: at a coarse
#: scale a window holds few particles, and a handful of clusters taken for particles can cover as much of it as the
#: particles do at the right scale (chosen on validation volumes of every preset at 12/24/48 px, seed 7000).
AUTO_MIN_DETECTIONS = 20
#: :func:`estimate_scale` resizes by the least that brings the typical particle diameter into this band, in
#: multiples of the geometric middle of the trained range (24-36 px for a 12-48 px model): enlarging small particles
#: past the middle or shrinking large ones down to it lost accuracy on validation volumes (seed 7000, BENCHMARKS.md).
AUTO_TARGET_BAND = (1.0, 1.5)
#: :func:`estimate_scale` adds a finer second scale when the candidate ``AUTO_FINE_STEP`` times finer than the chosen
#: one found at least :data:`AUTO_MIN_DETECTIONS` particles covering at least ``AUTO_FINE_COVERAGE`` of what the
#: chosen one's cover: many particles well below the chosen scale's range, a slice whose particle sizes spread wider
#: than the trained range (the coverage criterion then follows the large particles). Chosen on validation slices
#: (seeds 7100/7101, ``diameter_cv`` 0.3-2.0; BENCHMARKS.md): a finer scale merged in raised 2D F1@0.5 where this
#: ratio was >= 0.25 and cost 0.02-0.07 on ``hard`` slices at 0.10-0.24; the presets' own spread (cv 0.3) gives
#: 0.00-0.11. With these values it fired on 11 of 40 validation slices, 2D F1@0.5 -0.003 to +0.122 (mean +0.080).
AUTO_FINE_STEP = 4
AUTO_FINE_COVERAGE = 0.25
#: An instance with less than this fraction of its pixels inside the field of view is dropped (:func:`in_view`):
#: the model finds things in the fill (reflections of particles near the rim since the mirror fill) that leave slivers
#: of a few pixels at the rim (chosen, with the nearest-pixel fill of before 2026-12-07, on validation volumes with a
#: field of view, seeds 7200/7201/7210/7211: 0.05 better than 0 on all four, 0.1-0.3 lost particles).
MIN_IN_VIEW = 0.05
#: :func:`shared_intensity_range`: slices (evenly spaced) and pixels per slice (strided) it measures.
RANGE_SLICES = 16
RANGE_PIXELS = 2 ** 18


def slice_loader_cfg(model):
    """The config of the transform that prepares a whole slice (an array) as the test pipeline's loader of a
    detector prepares a file: that loader swapped by type (see the module docstring)."""
    loader = model_test_pipeline(model)[0]
    if str(loader['type']).split('.')[-1] == 'LoadTomoImageFromFile':
        return dict(loader, type='LoadTomoImageFromNDArray')
    return dict(type='LoadTomoImageFromNDArray', normalize='auto')  # stock loader: 8-bit as stored, else 0-255


def slice_preparer(model, intensity_range=None):
    """``prepare(slice_hw) -> array`` that normalises a whole slice as the model's test pipeline would (see the
    module docstring), mapping ``intensity_range`` ``(low, high)`` to 0-255 when given (:func:`shared_intensity_range`),
    else the slice's own range: (H, W, C) float32 in [0, 255] (uint8 with ``to_float32=False``); for a predictor
    callable the slice as it is but for the fill outside its field of view
    (:func:`~libnet_mmdet.io.images.fill_outside_view`, what the loader does too).

    Raises:
        InputError: ``intensity_range`` is not two finite numbers, low <= high.
    """
    if intensity_range is not None:
        values = np.asarray(intensity_range, dtype=object).ravel()
        if len(values) != 2 or not all(is_number_in(value) for value in values) or values[0] > values[1]:
            raise InputError(f'intensity_range must be (low, high), two finite numbers with low <= high, got '
                             f'{intensity_range!r}')
    if not is_detector(model):
        return fill_outside_view
    from mmdet.registry import TRANSFORMS
    loader = TRANSFORMS.build(slice_loader_cfg(model))
    return lambda image: loader(dict(img=image, intensity_range=intensity_range))['img']


def evenly_spaced(count, samples):
    """Up to ``samples`` indices of ``range(count)``, evenly spaced with the first and the last (sorted list)."""
    return np.unique(np.linspace(0, count - 1, min(count, samples)).round().astype(int)).tolist()


def shared_intensity_range(model, slices):
    """One intensity mapping for the slices of one volume: ``(low, high)`` that the model's loader maps to 0 and
    255, measured on the pixels of ``slices`` together (give it :data:`RANGE_SLICES` slices spread over the volume,
    :func:`evenly_spaced`; each is strided to at most :data:`RANGE_PIXELS` pixels).

    Per-slice normalisation (what the model was trained with, on slices full of material) stretches the noise of
    an empty slice (air above or below the sample) to the full range, and the model then finds particles in it;
    the volume's range keeps such a slice as dark as the pore it is.

    Args:
        model: a detector or phase model, or a predictor callable.
        slices (list[np.ndarray]): (H, W) slices of the volume, any real dtype.

    Returns:
        tuple[float, float] | None: the range, or None for a predictor callable (it sees the slices as they are)
        and a loader that keeps the values (``normalize='none'``, or ``'auto'`` with 8-bit slices).
    """
    if not is_detector(model) or len(slices) == 0:
        return None
    from mmdet.registry import TRANSFORMS
    loader = TRANSFORMS.build(slice_loader_cfg(model))
    pixels = []
    # 'minmax' counts every pixel: measured, as the loader measures a training slice, with the fill mirrored away
    # ('percentile' leaves a fill value out itself)
    refill = loader.fill_outside_view and loader.normalize == 'minmax'
    for image in slices:
        image = fill_outside_view(np.asarray(image)) if refill else np.asarray(image)
        step = max(1, int(np.ceil(np.sqrt(image.shape[0] * image.shape[1] / RANGE_PIXELS))))
        pixels.append(image[::step, ::step].ravel())
    return loader.intensity_range(np.concatenate(pixels))


def detections_to_labels(pred_instances, shape_hw, score_thr):
    """Paint the masks of one image's predictions with score >= ``score_thr`` into an instance label image; each
    pixel belongs to the highest-scoring mask covering it (ties: the later detection).

    Args:
        pred_instances (InstanceData): one image's ``pred_instances`` of an mmdet detector: ``masks`` (N, H, W)
            bool (a tensor or mmdet mask structure), ``scores`` (N,) and ``bboxes`` (N, 4) float tensors.
        shape_hw (tuple): (H, W) of the image the masks were pasted at.
        score_thr (float): detections with a lower score are left out.

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


def forward_test_cfg(model, area_px, score_thr=DEFAULT_SCORE_THR, proposals='auto'):
    """The test settings of one forward pass of a two-stage detector on images of ``area_px`` model pixels, as
    overrides of its config (:func:`~libnet_mmdet.apis.model.temporary_test_cfg`): the proposal budget
    (:func:`~libnet_mmdet.apis.model.proposal_budget`) with ``proposals='auto'``, none with ``'config'``; and the
    RoI head's score threshold raised to ``score_thr`` (just below it, as mmdet keeps scores *above* its
    threshold), so that no mask is predicted and pasted for a detection the labels leave out: the labels stay the
    same (greedy NMS never lets a lower score suppress a higher one, and the top ``max_per_img`` detections at or
    above ``score_thr`` are the same). Empty for other models."""
    heads = two_stage_heads(model)
    if heads is None:
        return {}
    overrides = proposal_budget(model, area_px) if proposals == 'auto' else {}
    configured = heads['rcnn'].test_cfg.get('score_thr')
    gate = float(np.nextafter(np.float32(score_thr), np.float32(0)))  # scores > gate <=> float32 scores >= score_thr
    if configured is not None and gate > configured:
        overrides.setdefault('rcnn', {})['score_thr'] = gate
    return overrides


def detector_predictor(model, score_thr=DEFAULT_SCORE_THR, batch_size=1, scale=1.0, proposals='auto'):
    """A predictor (see the module docstring) running an MMDetection detector on prepared arrays.

    The model's test pipeline is built once for arrays at ``scale``
    (:func:`~libnet_mmdet.apis.model.scaled_test_pipeline`: the arrays are prepared already,
    :func:`slice_preparer`); arrays go through the model in batches of ``batch_size`` arrays of one shape
    (:func:`same_shape_batches`), each batch with the test settings of :func:`forward_test_cfg` for its arrays, and
    their labels come back at each array's own resolution, in the order given.
    """
    from mmcv.transforms import Compose
    pipeline = Compose(scaled_test_pipeline(model, scale))

    def predict(images):
        results = [None] * len(images)
        for indices in same_shape_batches(images, batch_size):
            chunk = [images[k] for k in indices]
            packed = [pipeline(dict(img=image, img_id=i)) for i, image in enumerate(chunk)]
            batch = dict(inputs=[p['inputs'] for p in packed], data_samples=[p['data_samples'] for p in packed])
            area_px = max(p['inputs'].shape[-2] * p['inputs'].shape[-1] for p in packed)
            with torch.no_grad(), temporary_test_cfg(model, forward_test_cfg(model, area_px, score_thr, proposals)), \
                    mixed_precision(model):
                samples = model.test_step(batch)
            for k, sample, image in zip(indices, samples, chunk):
                results[k] = detections_to_labels(sample.pred_instances, image.shape[:2], score_thr)
        return results
    return predict


def same_shape_batches(slices, batch_size):
    """Lists of at most ``batch_size`` indices of ``slices`` of one (H, W) each, in order within a shape: a batch of
    mixed sizes is padded to its largest, and the padding reaches into the other slices' probabilities through the
    network (normalisation, receptive field)."""
    by_shape = {}
    for k, image in enumerate(slices):
        by_shape.setdefault(np.shape(image)[:2], []).append(k)
    return [indices[first:first + batch_size] for indices in by_shape.values()
            for first in range(0, len(indices), batch_size)]


def scaled_predictor(model, scale=1.0, score_thr=DEFAULT_SCORE_THR, batch_size=1, proposals='auto'):
    """A predictor that runs ``model`` on arrays resized by ``scale`` and returns each array's labels at its own
    resolution: a detector through its test pipeline (:func:`detector_predictor`, with ``proposals``), a predictor
    callable on resampled arrays, its labels resampled back by nearest neighbour.

    Raises:
        TypeError: ``model`` is neither a detector nor callable.
        ValueError: a detector whose test pipeline cannot rescale (see ``scaled_test_pipeline``).
    """
    if is_detector(model):
        return detector_predictor(model, score_thr, batch_size, scale, proposals)
    if not callable(model):
        raise TypeError(f'model: expected an MMDetection detector (init_segmenter) or a predictor callable, got '
                        f'{type(model).__name__}')
    if scale == 1:
        return model

    def predict(images):
        results = model([resample_slice(image, scale) for image in images])
        return [(labels_to_shape(np.asarray(labels), image.shape[:2]), scores)
                for image, (labels, scores) in zip(images, results)]
    return predict


def resolve_tiling(model, tile_size='auto', overlap=None):
    """``(tile_size, overlap)`` with ``'auto'`` resolved to the model's training size (None: no tiling) and the
    overlap defaulting to a quarter tile. ``model`` may be a detector's config (:func:`read_config`), so that
    ``tools/segment.py`` checks the tiling before the model is loaded.

    Raises:
        ValueError: an ``overlap`` where slices are not tiled (``tile_size=None``, or ``'auto'`` for a model that
            gives no training size: no tiles to overlap), a tiling out of range.
    """
    given = tile_size
    if tile_size == 'auto':
        tile_size = training_tile_size(model)
    if tile_size is None:
        if overlap is not None:
            why = ('tile_size=None, --tile-size none' if given is None else
                   f'{model_name(model)} gives no training size to tile at; tile_size=N, --tile-size N, tiles')
            raise ValueError(f'overlap={overlap!r} (--overlap): slices are not tiled ({why}); leave the overlap out')
        return None, None
    tile_size = check_int(tile_size, 'tile_size', 1)
    overlap = tile_size // 4 if overlap is None else overlap
    check_tiling(tile_size, overlap)
    return tile_size, int(overlap)


def resample_slice(image, scale):
    """An (H, W) slice (or (H, W, C) array, channel by channel) resized by ``scale`` (bilinear, anti-aliased when
    shrinking), in its own dtype (resampled in float32, or in float64 for dtypes float32 cannot hold, such as float64
    values beyond 3.4e38)."""
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


def check_scale(scale, allow_auto=True):
    """The ``scale`` argument checked: None, ``'auto'`` (with ``allow_auto``), or a tuple of distinct floats in
    (0, :data:`MAX_SCALE`] (one for a number).

    Raises:
        ValueError: anything else (a scale <= 0, NaN or Inf, an empty list, another string).
    """
    if allow_auto and (scale is None or (isinstance(scale, str) and scale == 'auto')):
        return scale
    values = list(scale) if isinstance(scale, (list, tuple, np.ndarray)) else [scale]
    if not values or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 < v <= MAX_SCALE
                             for v in values):
        other = ", 'auto' or None" if allow_auto else ''
        raise ValueError(f'scale must be in (0, {MAX_SCALE}] (a number or a list of numbers{other}), got {scale!r}')
    return tuple(dict.fromkeys(float(v) for v in values))


def _tiling_at_scale(tile_size, overlap, scale):
    """Tile size and overlap in model pixels -> the tiles cut from a slice that the model sees at ``scale``."""
    if tile_size is None:
        return None, None
    tile = max(1, round(tile_size / scale))
    return tile, min(round(overlap / scale), tile - 1)


def _segment_prepared(prepared, predict, tile_size, overlap, merge_iou):
    """``[(labels_hw, scores), ...]`` of prepared slices: those up to ``tile_size`` in one batch, larger ones
    tiled (:func:`~libnet_mmdet.volume.tiling.segment_tiled`)."""
    small = [i for i, image in enumerate(prepared) if tile_size is None or max(image.shape[:2]) <= tile_size]
    results = dict(zip(small, predict([prepared[i] for i in small]) if small else []))
    for i in sorted(set(range(len(prepared))) - set(small)):
        results[i] = segment_tiled(prepared[i], predict, tile_size, overlap, merge_iou)
    return [results[i] for i in range(len(prepared))]


def _check_settings(model, score_thr, tile_size, overlap, batch_size, proposals='auto',
                    merge_iou=DEFAULT_MERGE_IOU):
    """The 2D inference settings checked: ``(tile_size, overlap, batch_size)`` with their defaults resolved."""
    check_number(score_thr, 'score_thr', high=1)
    check_number(merge_iou, 'merge_iou', high=1, low_open=True)
    if proposals not in PROPOSAL_MODES:
        raise ValueError(f'proposals must be one of {PROPOSAL_MODES}, got {proposals!r}')
    batch_size = default_batch_size(model) if batch_size is None else batch_size
    return (*resolve_tiling(model, tile_size, overlap), check_int(batch_size, 'batch_size', 1))


def _model_input(image, context):
    """A checked slice as the model takes it: with ``context`` (2.5D input), an (H, W) slice repeated into
    (previous, slice, next) channels, as a 2D image has no neighbours (the loader does the same for a detector; a
    predictor callable gets it so); otherwise, or for an (H, W, 3) stack, the slice itself."""
    return to_channels(image, 3) if context else image


def slice_segmenter(model, score_thr=DEFAULT_SCORE_THR, tile_size='auto', overlap=None, batch_size=None,
                    merge_iou=DEFAULT_MERGE_IOU, scale=1.0, proposals='auto', intensity_range=None):
    """``segment(slices) -> [(labels_hw, details), ...]`` for a list of checked 2D slices ((H, W), or (H, W, 3)
    (previous, slice, next) stacks for a model with 2.5D input, :func:`~libnet_mmdet.apis.model.uses_context_slices`):
    what
    :func:`segment_image` and :func:`~libnet_mmdet.apis.segment_volume` run per slice. ``scale`` is a number or
    a list of numbers (resolved already, :func:`resolve_scale`); ``tile_size`` and ``overlap`` are in model
    pixels; ``proposals`` as in :func:`segment_image`; ``intensity_range`` as in :func:`slice_preparer`."""
    tile_size, overlap, batch_size = _check_settings(model, score_thr, tile_size, overlap, batch_size, proposals,
                                                     merge_iou)
    scales = check_scale(scale, allow_auto=False)
    plans = [(scaled_predictor(model, s, score_thr, batch_size, proposals), *_tiling_at_scale(tile_size, overlap, s))
             for s in scales]
    prepare = slice_preparer(model, intensity_range)
    context = uses_context_slices(model)

    def segment(slices):
        slices = [_model_input(image, context) for image in slices]
        outside = [slice_outside_view(image) for image in slices]
        prepared = [prepare(image) for image in slices]
        per_scale = [_segment_prepared(prepared, *plan, merge_iou) for plan in plans]
        output = []
        for results, mask in zip(zip(*per_scale), outside):
            labels, scores = results[0] if len(results) == 1 else merge_segmentations(results)
            labels = np.asarray(labels) if mask is None else in_view(labels, mask)
            labels, scores, boxes = order_by_score(labels, scores)
            output.append((labels, dict(ids=np.arange(1, len(scores) + 1, dtype=np.int64), scores=scores,
                                        boxes=boxes)))
        return output
    return segment


def in_view(labels_hw, outside_hw):
    """The instances of a slice's labels (H, W) as far as they lie inside the field of view: the pixels of
    ``outside_hw`` (H, W bool) cleared, and instances with less than :data:`MIN_IN_VIEW` of their pixels inside
    dropped whole (seen mostly in the fill, they are reflections there or particles the view barely holds)."""
    labels_hw = np.asarray(labels_hw)
    total = np.bincount(labels_hw.ravel())
    inside = total - np.bincount(labels_hw[outside_hw], minlength=total.size)
    keep = inside >= MIN_IN_VIEW * total
    keep[0] = False
    return np.where(keep[labels_hw] & ~outside_hw, labels_hw, 0)


def _candidate_scales(low, high):
    """The ladder of :func:`estimate_scale`: powers of 2 (up to :data:`MAX_SCALE`) at which the geometric middle
    of the trained range ``(low, high)`` stands for input diameters from ``AUTO_DIAMETERS_PX[0]`` to ``[1]``."""
    middle = np.sqrt(low * high)
    first = int(np.floor(np.log2(middle / AUTO_DIAMETERS_PX[1])))
    last = int(np.ceil(np.log2(middle / AUTO_DIAMETERS_PX[0])))
    return [2.0 ** k for k in range(first, last + 1) if 2.0 ** k <= MAX_SCALE]


def _central_window(image, side):
    """The central ``side`` x ``side`` pixels of an (H, W[, C]) array (all of a shorter axis)."""
    y0, x0 = (max(0, (n - side) // 2) for n in image.shape[:2])
    return image[y0:y0 + side, x0:x0 + side]


def _measure_detections(labels, scores, scale, low, high):
    """Pixels of ``labels`` (an (h, w) window segmented at ``scale``) covered by confident detections whose
    equivalent diameter at that scale lies in ``[low, high]``, and those diameters in input pixels, the
    detections cut by the window border last (``(covered, inner_diameters, cut_diameters)``)."""
    labels, scores = np.asarray(labels, np.int64), np.asarray(scores, np.float64)
    areas = np.bincount(labels.ravel(), minlength=scores.size + 1)[1:scores.size + 1]
    diameters = np.sqrt(4 * areas / np.pi)
    keep = (scores >= AUTO_MIN_SCORE) & (diameters * scale >= low) & (diameters * scale <= high)
    height, width = labels.shape
    inner = np.array([box is not None and box[0].start > 0 and box[1].start > 0 and box[0].stop < height
                      and box[1].stop < width for box in ndimage.find_objects(labels, scores.size)], bool)
    return int(areas[keep].sum()), diameters[keep & inner], diameters[keep & ~inner]


def estimate_scale(model, slices, batch_size=None, intensity_range=None):
    """Estimate the scale at which a model sees the particles of ``slices`` at the sizes it was trained for.

    Method (coarse passes, median equivalent diameter): the model records the typical particle diameters
    ``(lo, hi)`` it was trained for, in model pixels (:func:`~libnet_mmdet.apis.model.trained_diameter_range`).
    It runs on a central window of up to 3 sample slices (evenly spaced in the list), at a ladder of candidate
    scales, powers of 2 that cover input particle diameters from about 6 to 600 px; the window is at most 384
    model pixels across, so each pass is cheap. At each candidate, the confident detections (score >= 0.5) whose
    equivalent diameter ``sqrt(4 * area / pi)`` in model pixels lies in ``[lo, hi]`` are kept, and among the
    candidates that kept at least :data:`AUTO_MIN_DETECTIONS` (all, when none did) the one whose kept detections
    cover the largest fraction of the window is taken. The typical input particle diameter
    ``D`` is the median equivalent diameter of its kept detections (those not cut by the window border, unless
    all are) divided by that candidate scale, and the scale is the least resize that brings ``D`` into
    :data:`AUTO_TARGET_BAND` times the geometric middle ``sqrt(lo * hi)`` of the trained range (1 when ``D`` is in
    it: 24-36 px for a 12-48 px model; smaller particles are enlarged to its low end, larger ones shrunk to its
    high end), clipped to the scales that bring 600 px and 6 px particles into it (and to :data:`MAX_SCALE`),
    rounded to 3 significant digits. When no candidate finds a particle, the scale is 1 (with a warning).

    Broad size spreads: when the candidate 4x finer than the chosen one (:data:`AUTO_FINE_STEP`) also found at
    least :data:`AUTO_MIN_DETECTIONS` particles and they cover at least a quarter (:data:`AUTO_FINE_COVERAGE`) of
    what the chosen one's cover, the slices hold many particles too small for the chosen scale: their median
    diameter ``D_fine`` gives a second, finer scale by the same rule, and the slices are segmented at both and
    merged (``info['scales']``).

    Args:
        model: a detector (:func:`~libnet_mmdet.apis.init_segmenter`) or predictor callable that records its
            trained diameters.
        slices (list | np.ndarray | str): 2D slices (arrays or image paths; see :func:`segment_image`), a
            (Z, Y, X) array, or one slice.
        batch_size (int | None): images per forward pass (default as :func:`segment_image`).
        intensity_range (tuple | None): one intensity mapping for all slices (:func:`slice_preparer`).

    Returns:
        tuple: ``(scale, info)``: float scale (of D) and a dict with ``method``, ``scales`` (the scales to
        segment at: ``(scale,)``, or ``(scale, fine scale)``), ``diameter_px`` (D, input pixels; None when nothing
        was found), ``fine_diameter_px`` (D_fine, or None), ``trained_diameter_px`` ``(lo, hi)``, ``candidate``
        (the chosen candidate scale or None), ``candidates`` (per candidate: ``scale``, ``coverage`` (fraction of
        the window covered), ``detections``) and ``slices`` (number of sample slices).

    Raises:
        ValueError: the model records no trained diameters (pass a number as the scale), no slices, a bad
            ``batch_size`` or ``intensity_range`` (``InputError``).
    """
    diameters = trained_diameter_range(model)
    if diameters is None:
        raise ValueError(no_diameters_message(model))
    if isinstance(slices, (str, os.PathLike)) or (isinstance(slices, np.ndarray) and slices.ndim == 2):
        slices = [slices]
    if isinstance(slices, np.ndarray):
        check_not_colour(slices.shape, 'slices')
    if len(slices) == 0:
        raise ValueError('estimate_scale: no slices given')
    batch_size = default_batch_size(model) if batch_size is None else check_int(batch_size, 'batch_size', 1)
    low, high = diameters
    prepare = slice_preparer(model, intensity_range)
    context = uses_context_slices(model)
    samples = [_model_input(load_slice(slices[i], f'slices[{i}]'), context)
               for i in evenly_spaced(len(slices), AUTO_SAMPLES)]
    samples = [prepare(image) for image in samples]
    tried, measures = [], {}
    for scale in _candidate_scales(low, high):
        side = int(np.ceil(AUTO_WINDOW_PX / scale))
        windows = [window for window in (_central_window(sample, side) for sample in samples)
                   if min(window.shape[:2]) * scale >= high]  # room for a particle of the trained range
        if not windows:
            continue
        measured = [_measure_detections(labels, scores, scale, low, high) for labels, scores in
                    scaled_predictor(model, scale, AUTO_MIN_SCORE, batch_size)(windows)]
        coverage = sum(m[0] for m in measured) / sum(window.shape[0] * window.shape[1] for window in windows)
        inner, cut = (np.concatenate([m[k] for m in measured]) for k in (1, 2))
        tried.append(dict(scale=scale, coverage=float(coverage), detections=int(inner.size + cut.size)))
        if coverage > 0:
            measures[scale] = (coverage, inner.size + cut.size, float(np.median(inner if inner.size else cut)))
    supported = {scale: m for scale, m in measures.items() if m[1] >= AUTO_MIN_DETECTIONS} or measures
    best = max(supported, key=lambda scale: supported[scale][0], default=None)
    info = dict(method='coarse passes at candidate scales, median equivalent diameter of confident detections in '
                'the trained range', scales=(1.0,), diameter_px=None, fine_diameter_px=None,
                trained_diameter_px=(low, high), candidate=None, candidates=tried, slices=len(samples))
    if best is None:
        tried_scales = ', '.join(f'{c["scale"]:g}' for c in tried)
        warnings.warn(f'scale=auto: the model found no particle of {low:g}-{high:g} px at any candidate scale '
                      f'({tried_scales}); using scale 1')
        return 1.0, info
    coverage, _, diameter = supported[best]
    scale = _scale_for_diameter(diameter, low, high)
    info.update(candidate=best, diameter_px=diameter, scales=(scale,))
    fine = measures.get(best * AUTO_FINE_STEP)
    if fine is not None and fine[1] >= AUTO_MIN_DETECTIONS and fine[0] >= AUTO_FINE_COVERAGE * coverage:
        fine_scale = _scale_for_diameter(fine[2], low, high)
        if fine_scale > scale:
            info.update(fine_diameter_px=fine[2], scales=(scale, fine_scale))
    return scale, info


def auto_target_band(low, high):
    """``(band_low, band_high)`` px: the particle diameters :func:`estimate_scale` resizes a slice's particles into
    for a model trained for ``(low, high)`` px, :data:`AUTO_TARGET_BAND` times its geometric middle (24-36 px for
    12-48 px)."""
    band_low, band_high = np.sqrt(low * high) * np.asarray(AUTO_TARGET_BAND)
    return float(band_low), float(band_high)


def _scale_for_diameter(diameter, low, high):
    """The least resize that brings particles ``diameter`` px across into :func:`auto_target_band` of the trained
    range ``(low, high)``, clipped (:func:`estimate_scale`), to 3 digits."""
    band_low, band_high = auto_target_band(low, high)
    scale = float(np.clip(np.clip(diameter, band_low, band_high) / diameter, band_high / AUTO_DIAMETERS_PX[1],
                          min(band_low / AUTO_DIAMETERS_PX[0], MAX_SCALE)))
    return float(f'{scale:.3g}')


def no_diameters_message(model):
    """The error of ``scale='auto'`` for a model that records no trained particle diameters."""
    return (f"scale='auto' (--scale auto) needs a model that records the particle diameters it was trained for "
            f"(config key particle_diameter_px, or a predictor's particle_diameter_px attribute); "
            f"{model_name(model)} records none: pass a number instead, e.g. scale=0.5 (--scale 0.5) for "
            'particles twice the size of those the model was trained on')


def check_auto_diameters(model, scale=None, min_voxels=None):
    """Refuse ``scale='auto'`` and ``min_voxels='auto'`` for a model that records no trained particle diameters
    (:func:`trained_diameter_range`); ``model`` may be a detector's config (:func:`read_config`), so that
    ``tools/segment.py`` refuses them before the model is loaded.

    Raises:
        InputError: naming the model (its config file) and what to pass instead.
    """
    if 'auto' not in (scale, min_voxels) or trained_diameter_range(model) is not None:
        return
    if scale == 'auto':
        raise InputError(no_diameters_message(model))
    raise InputError(f"min_voxels='auto' (--min-voxels auto) needs a model that records the particle diameters it "
                     f"was trained for (config key particle_diameter_px); {model_name(model)} records none: give "
                     f"the volume of your smallest particle in voxels")


def check_fixed_resize(model, scale):
    """Refuse a ``scale`` of numbers other than 1 for a detector, or its config (so that the tools refuse it before
    the model is loaded), whose test pipeline resizes every image to one fixed size (MMDetection's COCO recipes):
    there is nothing to rescale.

    Raises:
        ValueError: :func:`~libnet_mmdet.apis.model.scaled_test_pipeline`'s message, naming the config.
    """
    if scale is None or isinstance(scale, str) or not (is_detector(model) or isinstance(model, Config)):
        return  # 'auto' (its scale fits by construction) or a predictor callable: no test pipeline
    for factor in check_scale(scale):
        scaled_test_pipeline(model, factor)


def uses_auto_scale(model, scale):
    """True when ``scale`` (checked by :func:`check_scale`) resolves to ``'auto'`` for ``model``: ``'auto'``,
    or None for a model that records its trained diameters.

    Raises:
        InputError: ``'auto'`` for a model that records no diameters (:func:`check_auto_diameters`).
    """
    check_auto_diameters(model, scale=scale)
    has_diameters = trained_diameter_range(model) is not None
    return scale == 'auto' or (scale is None and has_diameters)


def resolve_scale(model, scale, slices, batch_size=None, intensity_range=None):
    """The scales to segment ``slices`` at: ``(scales, info)``, a tuple of floats and the :func:`estimate_scale`
    info when the scale was estimated (``'auto'``, or None for a model that records its trained diameters), else
    None (None without diameters is 1)."""
    scale = check_scale(scale)
    if uses_auto_scale(model, scale):
        _, info = estimate_scale(model, slices, batch_size, intensity_range)
        return info['scales'], info
    return (1.0,) if scale is None else scale, None


def describe_scale(scales, info):
    """One line for the user: ``scale: auto -> 0.632 (typical particle diameter 57 px; model trained for 12-48 px)``,
    ``scale: auto -> 0.541, 1 (merged; typical particle diameters 67 px and 28 px; ...)``, or ``scale: 0.5`` /
    ``scale: 0.25, 0.5 (merged)``."""
    values = ', '.join(f'{s:g}' for s in scales)
    merged = ['merged'] if len(scales) > 1 else []
    if info is None:
        return f'scale: {values}' + (' (merged)' if merged else '')
    low, high = info['trained_diameter_px']
    if info['diameter_px'] is None:
        found = 'no particle found at any candidate scale'
    elif info['fine_diameter_px'] is None:
        found = f'typical particle diameter {info["diameter_px"]:.0f} px'
    else:
        found = f'typical particle diameters {info["diameter_px"]:.0f} px and {info["fine_diameter_px"]:.0f} px'
    notes = '; '.join(merged + [found, f'model trained for {low:g}-{high:g} px'])
    return f'scale: auto -> {values} ({notes})'


def load_slice(image, name=None):
    """A checked 2D slice from an array or an image file path; ``name``: what an array is called in messages
    (a path names itself; default ``'<array>'``).

    Returns:
        np.ndarray: (H, W) (a single-channel (H, W, 1) array without its channel axis, as files are read) or colour
        (H, W, 3|4), finite.

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
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
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
                  merge_iou=DEFAULT_MERGE_IOU, scale=None, proposals='auto'):
    """Segment one 2D slice, or a list of slices (batched), into instance label images.

    Args:
        model: a detector from :func:`~libnet_mmdet.apis.init_segmenter`, or a predictor callable (module
            docstring).
        image (np.ndarray | str | list): an (H, W) slice (uint8, uint16, float32, ...; an (H, W, 1) array too, and
            a colour (H, W, 3 | 4) one in BGR order as cv2 reads it: :func:`load_slice`) or an image file path, or
            a list of them.
        score_thr (float): detections scoring below are dropped.
        tile_size (int | 'auto' | None): slices that the model sees larger than this (model pixels: the slice
            resized by ``scale``) are segmented in overlapping tiles of this size; ``'auto'`` uses the model's
            training size (:func:`~libnet_mmdet.apis.model.training_tile_size`); None never tiles. Tiles are cut
            from the slice as it is, ``tile_size / scale`` pixels across.
        overlap (int | None): least tile overlap in model pixels; make it >= the largest particle diameter
            (default a quarter tile). See :mod:`libnet_mmdet.volume.tiling`.
        batch_size (int | None): images (slices or tiles) per forward pass (default: 4 on a GPU, 1 on the CPU).
        merge_iou (float): seam-merge threshold of the tiling.
        scale (float | list | 'auto' | None): the model sees each slice resized by this factor (its test
            pipeline's ``Resize``; masks come back at the slice's resolution): make the particles about as many
            pixels across as in the training data (``training diameter / your diameter``, e.g. 0.33 for 66 px
            particles and a model trained on 22 px ones). ``'auto'`` estimates it once for all the slices of the
            call (:func:`estimate_scale`); None (default) is ``'auto'`` for a model that records its trained
            particle diameters, else 1. A list segments at each scale and merges the instances
            (:func:`~libnet_mmdet.volume.tiling.merge_segmentations`).
        proposals (str): ``'auto'`` (default): a two-stage detector keeps as many RPN proposals and detections per
            image as an image of its size can need (:func:`~libnet_mmdet.apis.model.proposal_budget`), at most
            the config's ``test_cfg``; ``'config'``: the config's ``test_cfg`` as it is (the worst case).

    Returns:
        tuple | list: ``(labels_hw, details)`` per slice: ``labels_hw`` uint16 (uint32 above 65535 instances)
        with instances 1..N by decreasing score, pixels of overlapping masks given to the higher score;
        ``details`` dict with ``ids`` (N,) 1..N, ``scores`` (N,) float32, ``boxes`` (N, 4) float32
        ``x0, y0, x1, y1`` of each instance's painted mask, ``scale`` (the float used, or the list of a
        multi-scale run) and, when estimated, ``scale_info`` (:func:`estimate_scale`). A list of such tuples for
        a list input.

    Raises:
        ValueError: bad arguments (a scale <= 0; ``'auto'`` for a model that records no trained diameters), bad
            slices (:func:`load_slice`).
        TypeError: ``model`` is neither an MMDetection detector nor a predictor callable.
    """
    single = not isinstance(image, (list, tuple))
    images = [image] if single else list(image)
    slices = [load_slice(item, '<array>' if single else f'image[{i}]') for i, item in enumerate(images)]
    tile_size, overlap, batch_size = _check_settings(model, score_thr, tile_size, overlap, batch_size, proposals,
                                                     merge_iou)
    scales, info = resolve_scale(model, scale, slices, batch_size)
    results = slice_segmenter(model, score_thr, tile_size, overlap, batch_size, merge_iou, scales, proposals)(slices)
    for _, details in results:
        details['scale'] = scales[0] if len(scales) == 1 else list(scales)
        if info is not None:
            details['scale_info'] = info
    return results[0] if single else results
