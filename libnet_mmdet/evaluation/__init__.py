"""Instance matching metrics: plain functions (2-D / 3-D label arrays) and the mmengine metric
``InstanceMatchingMetric`` (registered in ``mmdet.registry.METRICS``), plus size-distribution errors."""
from .compare import compare_methods, foreground_dice
from .distribution import compare_label_volumes
from .matching import DEFAULT_THRESHOLDS, match_dataset, match_instances, matching_summary, pairwise_iou
from .metrics import InstanceMatchingMetric, instances_to_labels

__all__ = [
    'match_instances', 'match_dataset', 'matching_summary', 'pairwise_iou', 'DEFAULT_THRESHOLDS',
    'compare_label_volumes', 'compare_methods', 'foreground_dice', 'InstanceMatchingMetric', 'instances_to_labels'
]
