# CPU-TINY config with the shape-aware mask loss -- NOT the real recipe (that is mask-rcnn_r101_fpn_shape-aware.py).
# Identical to mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py except for roi_head.mask_head.loss_mask.
_base_ = './mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py'

model = dict(
    roi_head=dict(
        mask_head=dict(
            # Particles are compact, star-convex, filled bodies: same loss as the shape-aware GPU recipe
            # (ShapeAwareMaskLoss's default weights, see its docstring).
            loss_mask=dict(_delete_=True, type='ShapeAwareMaskLoss'))))
