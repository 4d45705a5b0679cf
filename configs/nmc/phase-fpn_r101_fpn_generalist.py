# The phase model for a GPU (`python tools/make_model.py --recipe phases-r101 --device cuda:0`): the CPU phase
# model's head, refinement, data and augmentations on the R101 recipe's backbone and FPN, with the stock Panoptic
# FPN semantic-head widths. Everything not overridden comes from the CPU phase config.
_base_ = ['./phase-fpn_r18-gn_fpn-c64_cpu-tiny_generalist.py']

model = dict(
    backbone=dict(  # the R101 recipe's (stock Mask R-CNN R101) backbone
        depth=101,
        norm_cfg=dict(_delete_=True, type='BN', requires_grad=True),
        norm_eval=True,  # ImageNet statistics kept, as in the stock recipe
        frozen_stages=1,  # the stem and first stage frozen, as in the stock recipe
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='torchvision://resnet101')),
    neck=dict(in_channels=[256, 512, 1024, 2048], out_channels=256, norm_cfg=None),  # the stock FPN
    semantic_head=dict(in_channels=256, inner_channels=128),  # stock PanopticFPNHead widths (GN kept, as stock)
    # The CPU model's shell weight, its slope, mirror padding and view edge ramp were chosen for it: calibrate this
    # one on its own.
    test_cfg=dict(surface_pore_weight=1.0, bulk_cb_slope=0.0, mirror_pad_px=0, view_edge_ramp_px=0))

train_dataloader = dict(batch_size=8, num_workers=4)  # one GPU; no RoI heads, so a larger batch than the R101's 4
# The R101 recipe's optimiser (SGD, stock lr 0.02 for batch 16 scaled linearly to batch 8), not CPU-tiny's AdamW
# (that one is for a backbone trained from scratch with GroupNorm).
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=None)
auto_scale_lr = dict(base_batch_size=8)  # the batch the lr above is set for

# 20k x batch 8 = 160k crops, 4.4x the CPU phase model's 9000 x 4: the R101 generalist's iteration count, not
# tuned (no GPU run of it yet).
max_iters = 20000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters + 1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),  # the R101 recipe's warm-up
    # lr steps at 3/4 and 9/10 of the iterations, as the generalists' (the CPU phase model's are 0.77 and 0.9)
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[15000, 18000], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=2000, max_keep_ckpts=2))  # resumable every 2000
