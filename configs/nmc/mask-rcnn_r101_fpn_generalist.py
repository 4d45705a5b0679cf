# The generalist for a GPU: the R101 recipe trained on the randomised synthetic corpus at every particle size in
# `particle_diameter_px` (`python tools/make_model.py --recipe r101 --device cuda:0`).
_base_ = ['./mask-rcnn_r101_fpn.py', './_generalist_corpus.py']

# Rescale each slice to a random typical particle diameter before the crop (the base pipeline has no Resize).
train_pipeline = _base_.train_pipeline[:2] + [
    dict(type='RandomParticleScale', diameter_range=_base_.particle_diameter_px, crop_size=_base_.crop_size)
] + _base_.train_pipeline[2:]
train_dataloader = dict(dataset=dict(_base_.corpus_dataset, pipeline=train_pipeline))

model = dict(
    # 16 px anchors besides the stock 32 px ones, as the CPU generalist's: it trains on particles down to 12 px, and
    # objects under ~18 px get no positive anchor at all from 32 px anchors (IoU < min_pos_iou 0.3).
    rpn_head=dict(anchor_generator=dict(scales=[4, 8])),
    # mmdet's mask threshold 0.5 kept: the CPU generalist's 0.4 was chosen on its own masks (BENCHMARKS.md "The
    # generalist's mask threshold"); choose this model's on the same validation volumes once it is trained.
    test_cfg=dict(rcnn=dict(mask_thr_binary=0.5)))

# Iterations, not epochs (the corpus size is a make_model option): 20k x batch 4 is 80k slices, about 11 passes
# over the 32-volume corpus (7,194 slices), 7.1x the CPU generalist's 5600 x 2 per slice seen.
max_iters = 20000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
val_cfg = None  # no validation split: the zero-shot benchmark scores the model on data it never saw
val_dataloader = None
val_evaluator = None
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    # lr steps at 3/4 and 9/10 of the iterations (the CPU generalist's until 2026-12-07; its linear decay since was
    # validated on the CPU recipe only)
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[15000, 18000], gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=2000, max_keep_ckpts=2, save_best=None))  # resumable every 2000
log_processor = dict(by_epoch=False)
