# CPU-TINY config for tests and the CPU demo -- NOT the real recipe (that is mask-rcnn_r101_fpn.py).
# ResNet-18 with GroupNorm trained from scratch, a 64-channel FPN and heads, 256 px crops, so that a few
# iterations run in seconds on 2 CPU cores. Everything not overridden comes from the R101 recipe.
_base_ = './mask-rcnn_r101_fpn.py'

norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)  # batch 2 on CPU: BatchNorm statistics would be noise
fpn_channels = 64  # the stock 256-channel FPN and heads dominate the CPU cost

model = dict(
    backbone=dict(
        depth=18,  # small backbone for the CPU
        norm_cfg=norm_cfg,
        norm_eval=False,  # from scratch: normalisation layers must train
        frozen_stages=-1,  # from scratch: nothing to freeze
        init_cfg=None),  # no ImageNet download offline; train from scratch
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=fpn_channels, norm_cfg=norm_cfg),  # ResNet-18 widths
    rpn_head=dict(
        in_channels=fpn_channels,
        feat_channels=fpn_channels,
        # 16 px anchors besides the stock 32 px ones: a particle's cross-sections near its poles are small, and
        # objects under ~18 px get no positive anchor at all from 32 px anchors (IoU < min_pos_iou 0.3).
        anchor_generator=dict(scales=[4, 8])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=fpn_channels),
        bbox_head=dict(in_channels=fpn_channels, fc_out_channels=256),  # stock 1024-wide FCs are CPU-heavy
        mask_roi_extractor=dict(out_channels=fpn_channels),
        mask_head=dict(in_channels=fpn_channels, conv_out_channels=fpn_channels)),
    train_cfg=dict(rcnn=dict(sampler=dict(num=128))))  # fewer sampled RoIs per image: faster on CPU

crop_size = (256, 256)  # small training windows for the CPU (no Resize: see the R101 recipe)
train_pipeline = [
    dict(type='LoadTomoImageFromFile', normalize='percentile', percentiles=(0.5, 99.5)),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomCrop', crop_size=crop_size, crop_type='absolute', allow_negative_crop=False,
         recompute_bbox=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(0.01, 0.01)),
    dict(type='RandomRot90', prob=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomGamma', prob=0.5),  # cheap intensity augmentations only: the CPU demo trains few iterations
    dict(type='RandomGaussianNoise', prob=0.5),  # with fewer augmentations each is drawn more often
    dict(type='PackDetInputs')
]
train_dataloader = dict(batch_size=2, num_workers=2, dataset=dict(pipeline=train_pipeline))  # 2 CPU cores
val_dataloader = dict(batch_size=1, num_workers=1)  # the recipe's test_pipeline
test_dataloader = val_dataloader

# From scratch with GroupNorm, AdamW converges in far fewer iterations than SGD; clip for stability.
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=10, norm_type=2))
max_epochs = 12  # the stock 1x length; the demo and make_model set their own iteration counts
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)  # validate once, at the end: CPU time
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),  # short warm-up: few iterations
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[9, 11],
         gamma=0.1)  # stock 1x steps at 8 and 11; 9 and 11 here (an early choice, not re-measured)
]
auto_scale_lr = dict(base_batch_size=2)  # the batch the lr above is set for
default_hooks = dict(
    logger=dict(interval=10),  # few iterations per epoch
    checkpoint=dict(interval=1, max_keep_ckpts=2))  # every epoch (short runs resume), two kept: disk
