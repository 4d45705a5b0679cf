# NMC particle instance segmentation, GPU recipe with the shape-aware mask loss: identical to
# mask-rcnn_r101_fpn.py except for roi_head.mask_head.loss_mask (see libnet_mmdet/models/losses/ and BENCHMARKS.md).
_base_ = './mask-rcnn_r101_fpn.py'

model = dict(
    roi_head=dict(
        mask_head=dict(
            # Particles are compact, star-convex, filled bodies: boundary-weighted BCE + Dice + star-convexity
            # + fill terms instead of plain BCE, with ShapeAwareMaskLoss's default weights (each term and weight is
            # described in its docstring, libnet_mmdet/models/losses/shape_aware_mask_loss.py; set them here to tune).
            loss_mask=dict(_delete_=True, type='ShapeAwareMaskLoss'))))
