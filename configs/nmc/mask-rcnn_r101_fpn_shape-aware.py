# NMC particle instance segmentation, GPU recipe with the shape-aware mask loss: identical to
# mask-rcnn_r101_fpn.py except for roi_head.mask_head.loss_mask (see libnet_mmdet/models/losses/ and BENCHMARKS.md).
_base_ = './mask-rcnn_r101_fpn.py'

model = dict(
    roi_head=dict(
        mask_head=dict(
            # Particles are compact, star-convex, filled bodies: boundary-weighted BCE + Dice + star-convexity
            # + fill terms instead of plain BCE (weights are ShapeAwareMaskLoss's defaults, listed for tuning).
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
