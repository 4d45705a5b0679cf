# CPU-TINY config with the shape-aware mask loss -- NOT the real recipe (that is mask-rcnn_r101_fpn_shape-aware.py).
# Identical to mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py except for roi_head.mask_head.loss_mask.
_base_ = './mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py'

model = dict(
    roi_head=dict(
        mask_head=dict(
            # Particles are compact, star-convex, filled bodies: same loss as the shape-aware GPU recipe.
            loss_mask=dict(
                _delete_=True,
                type='ShapeAwareMaskLoss',
                bce_weight=1.0,
                dice_weight=0.5,
                star_weight=0.5,
                fill_weight=0.5,
                boundary_weight=2.0,
                boundary_sigma=1.5,
                loss_weight=1.0))))
