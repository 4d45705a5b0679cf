"""Pictures of what a model computes and how well it does: per-stage inference panels and precision-recall curves.

>>> stages = record_stages(model, 'slice.png')           # every stage of Mask R-CNN on one slice
>>> write_panels(stages, 'inspect/', score_thr=0.5)       # one PNG per stage + summary.json
>>> write_pr_report('results.pkl', 'annotations/val.json', 'pr/')  # PR curves + per-image AP of tools/test.py
"""
from .model_stages import record_stages
from .panels import (plot_activations, plot_anchors, plot_detections, plot_mask_probs, plot_objectness,
                     plot_proposals, plot_rcnn_boxes, save_figure, write_panels)
from .pr_curves import per_image_ap, pr_curves, results_to_coco, write_pr_report

__all__ = [
    'record_stages', 'write_panels', 'save_figure', 'plot_anchors', 'plot_objectness', 'plot_proposals',
    'plot_rcnn_boxes', 'plot_detections', 'plot_mask_probs', 'plot_activations', 'write_pr_report', 'pr_curves',
    'per_image_ap', 'results_to_coco'
]
