"""Instance matching metrics: plain functions (2-D / 3-D label arrays) and the mmengine metric
``InstanceMatchingMetric`` (registered in ``mmdet.registry.METRICS``), plus size-distribution errors."""
from .compare import WATERSHED_GRID, compare_methods, foreground_dice, score_volume, tune_watershed
from .distribution import compare_label_volumes, esd_distribution_error, esd_from_labels
from .matching import (DEFAULT_THRESHOLDS, STAT_COLUMNS, match_dataset, match_instances, matching_summary,
                       pairwise_iou)
from .metrics import InstanceMatchingMetric, masks_to_label_image

__all__ = [
    'match_instances', 'match_dataset', 'matching_summary', 'pairwise_iou', 'DEFAULT_THRESHOLDS', 'STAT_COLUMNS',
    'esd_distribution_error', 'esd_from_labels', 'compare_label_volumes', 'InstanceMatchingMetric',
    'masks_to_label_image', 'score_volume', 'compare_methods', 'tune_watershed', 'foreground_dice', 'WATERSHED_GRID',
]
