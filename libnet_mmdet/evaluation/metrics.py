"""``InstanceMatchingMetric``: StarDist-style instance matching of predicted and ground-truth masks per image."""
from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmengine.structures import BaseDataElement
from pycocotools import mask as mask_utils

from mmdet.registry import METRICS
from mmdet.structures.mask import BitmapMasks, PolygonMasks

from .matching import DEFAULT_THRESHOLDS, check_thresholds, match_counts, matching_summary, pooled_stats


def instances_to_labels(masks, shape_hw, order=None, boxes=None):
    """Paint instance masks into one (H, W) label image; where masks overlap, the first in ``order`` wins.

    The one place masks become a label image: predictions (:func:`~libnet_mmdet.apis.segment_image`), the
    matching metric and the dataset browser all use it.

    Args:
        masks: (N, H, W) bool/0-1 array or tensor, :class:`~mmdet.structures.mask.BitmapMasks`,
            :class:`~mmdet.structures.mask.PolygonMasks`, or a list of COCO RLE dicts.
        shape_hw (tuple[int, int]): (H, W) of the image.
        order (sequence[int] | None): the instances to paint, by index, in priority order (e.g. by decreasing
            score); ``None`` = all, as given.
        boxes (array-like | None): (N, 4) ``x0, y0, x1, y1`` of each mask; when given, only the box (+2 px for
            rounding; Mask R-CNN pastes each mask inside its box) is painted, which is faster for many masks.

    Returns:
        np.ndarray: (H, W) int32 labels, 0 = background, k = the k-th instance of ``order`` (1-based).

    Raises:
        ValueError: masks that are not (N, H, W) of ``shape_hw``.
    """
    order = np.arange(len(masks)) if order is None else np.asarray(order, dtype=np.int64).reshape(-1)
    if isinstance(masks, (BitmapMasks, PolygonMasks)):
        masks = masks[order].to_ndarray() if order.size else np.zeros((0, *shape_hw), bool)
    elif isinstance(masks, torch.Tensor):
        masks = masks[torch.as_tensor(order, dtype=torch.long, device=masks.device)].detach().cpu().numpy()
    elif isinstance(masks, (list, tuple)) and masks and isinstance(masks[0], dict):
        masks = np.moveaxis(mask_utils.decode([masks[i] for i in order]), -1, 0) if order.size else []
    else:
        masks = np.asarray(masks)
        if masks.ndim == 3 and masks.shape[1:] == tuple(shape_hw):
            masks = masks[order]
    masks = np.asarray(masks, dtype=bool) if len(masks) else np.zeros((0, *shape_hw), bool)
    if masks.ndim != 3 or masks.shape[1:] != tuple(shape_hw):
        raise ValueError(f'masks: expected (N, {shape_hw[0]}, {shape_hw[1]}) instance masks, got shape '
                         f'{masks.shape}')
    labels = np.zeros(shape_hw, np.int32)
    boxes = None if boxes is None else np.asarray(boxes, np.float64)[order]
    height, width = shape_hw
    for k in range(len(masks), 0, -1):  # the last first: earlier instances paint over later ones
        if boxes is None:
            labels[masks[k - 1]] = k
            continue
        x0, y0, x1, y1 = boxes[k - 1]
        ys = slice(max(int(np.floor(y0)) - 2, 0), min(int(np.ceil(y1)) + 2, height))
        xs = slice(max(int(np.floor(x0)) - 2, 0), min(int(np.ceil(x1)) + 2, width))
        labels[ys, xs][masks[k - 1][ys, xs]] = k
    return labels


@METRICS.register_module()
class InstanceMatchingMetric(BaseMetric):
    """F1, accuracy and panoptic quality of instance masks matched one-to-one at IoU thresholds (per image).

    For every image the predicted masks with ``score >= score_thr`` are rasterised into a label image (higher
    score wins where masks overlap) and so are the ground-truth masks; the two are matched as in StarDist's
    ``matching.py`` (:func:`~libnet_mmdet.evaluation.match_instances`, class-agnostic) and TP / FP / FN and the
    TP IoU sums are pooled over the whole set before the ratios. Ground truth comes from the data sample's
    ``gt_instances.masks`` (the test pipeline needs ``LoadAnnotations(with_mask=True)`` after ``Resize`` so that
    the masks stay at the original size, as in mmdet's stock pipelines) or, when ``ann_file`` is given, from that
    COCO file by ``img_id`` (crowd annotations skipped). Use it next to ``CocoMetric``::

        test_evaluator = [dict(type='CocoMetric', ann_file=..., metric=['bbox', 'segm']),
                          dict(type='InstanceMatchingMetric')]

    Metrics (prefix ``matching/``): ``f1_50``, ``f1_75``, ``precision_50``, ``recall_50``, ``pq_50`` and
    ``accuracy_mean`` (mean accuracy over ``thresholds``, by default 0.50:0.05:0.95).

    Args:
        thresholds (sequence[float]): IoU thresholds in (0, 1]; must contain 0.5 and 0.75 for the F1 keys.
        score_thr (float): predictions with a lower score are ignored.
        ann_file (str | None): COCO annotation file to read the ground truth from.
        collect_device (str): ``'cpu'`` or ``'gpu'``, for collecting results across ranks.
        prefix (str | None): metric name prefix; default ``'matching'``.
    """

    default_prefix: Optional[str] = 'matching'

    def __init__(self, thresholds=DEFAULT_THRESHOLDS, score_thr=0.5, ann_file=None, collect_device='cpu',
                 prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.thresholds = check_thresholds(thresholds)
        self.score_thr = float(score_thr)
        self._coco = None
        if ann_file is not None:
            from mmdet.datasets.api_wrappers import COCO
            from mmengine.fileio import get_local_path
            with get_local_path(ann_file) as local_path:
                self._coco = COCO(local_path)

    def _gt_labels(self, data_sample, shape, image_name):
        if self._coco is not None:
            anns = self._coco.loadAnns(self._coco.getAnnIds(imgIds=[data_sample['img_id']], iscrowd=False))
            return instances_to_labels([self._coco.annToMask(ann) for ann in anns], shape)
        gt_instances = data_sample.get('gt_instances', {})
        if 'masks' not in gt_instances:
            raise KeyError(f'InstanceMatchingMetric: {image_name} has no gt_instances.masks: add '
                           'LoadAnnotations(with_mask=True) to the test pipeline or pass ann_file')
        return instances_to_labels(gt_instances['masks'], shape)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Match the predicted and ground-truth masks of each image and keep the counts."""
        for data_sample in data_samples:
            if isinstance(data_sample, BaseDataElement):
                data_sample = data_sample.to_dict()
            image_name = f"image {data_sample.get('img_path', data_sample.get('img_id'))}"
            shape = tuple(int(s) for s in data_sample['ori_shape'][:2])
            pred = data_sample['pred_instances']
            if 'masks' not in pred:
                raise KeyError(f'InstanceMatchingMetric: {image_name} has no pred_instances.masks: it needs an '
                               'instance segmentation model')
            scores = np.asarray(pred['scores'].detach().cpu() if isinstance(pred['scores'], torch.Tensor)
                                else pred['scores'], dtype=np.float64)
            keep = np.flatnonzero(scores >= self.score_thr)
            order = keep[np.argsort(-scores[keep], kind='stable')]
            pred_labels = instances_to_labels(pred['masks'], shape, order=order)
            gt_labels = self._gt_labels(data_sample, shape, image_name)
            self.results.append(match_counts(gt_labels, pred_labels, self.thresholds, image_name))

    def compute_metrics(self, results: list) -> dict:
        """Pool the per-image counts and return the headline numbers."""
        stats = pooled_stats(self.thresholds, results)
        n_true, n_pred = int(stats['n_true'].iloc[0]), int(stats['n_pred'].iloc[0])
        MMLogger.get_current_instance().info(
            f'instance matching over {len(results)} images ({n_true} ground-truth, {n_pred} predicted '
            f'instances with score >= {self.score_thr}):\n{stats.round(4).to_string()}')
        return OrderedDict((key, round(value, 4)) for key, value in matching_summary(stats).items())
