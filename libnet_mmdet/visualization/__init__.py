"""Pictures: the one label renderer and PNG writer, per-stage inference panels, precision-recall curves and the
test overlays of tomography slices.

>>> write_png('overlay.png', render_labels(image_hw, labels_hw))  # instances tinted over the slice, atomic PNG
>>> write_overlays(reader, labels_zyx, 'overlays/', step=10)    # overlay_z<index>.png of every 10th z slice
>>> stages = record_stages(model, 'slice.png')           # every stage of Mask R-CNN on one slice
>>> write_panels(stages, 'inspect/', score_thr=0.5)       # one PNG per stage + summary.json
>>> write_pr_report('results.pkl', 'annotations/val.json', 'pr/')  # PR curves + per-image AP of tools/test.py
>>> default_hooks = dict(visualization=dict(type='TomoDetVisualizationHook', draw=True))  # test.py --show-dir
"""
from .render import render_labels, write_overlays, write_png
from .hooks import SLICE_KEYS, TomoDetVisualizationHook, with_slice_keys
from .model_stages import check_two_stage_config, record_stages
from .panels import write_panels
from .pr_curves import DEFAULT_MAX_DETS, per_image_ap, pr_curves, write_pr_report

__all__ = [
    'render_labels', 'write_png', 'write_overlays', 'record_stages', 'check_two_stage_config', 'write_panels',
    'write_pr_report', 'pr_curves', 'per_image_ap', 'DEFAULT_MAX_DETS', 'TomoDetVisualizationHook', 'with_slice_keys',
    'SLICE_KEYS'
]
