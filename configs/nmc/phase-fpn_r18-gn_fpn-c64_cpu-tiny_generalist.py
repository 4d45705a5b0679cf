# The phase model for the CPU: pore / carbon-binder / NMC of every pixel (tools/analyze.py uses it for contact,
# detachment and damage). Panoptic FPN's semantic branch -- the stock PanopticFPNHead, NMC particles its one
# "thing", pore and carbon-binder its "stuff" -- on the CPU-tiny backbone and FPN, without the instance branch,
# trained on the phase volumes of a randomised corpus (`make model` builds it after the generalist).
_base_ = ['./mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py', './_generalist_corpus.py']

# The generalist's corpus (same seeds and draws) with bulk carbon-binder domains drawn too: real cathodes have
# carbon-binder filling the gaps between particles, which a model shown only coats and bridges calls pore.
corpus_root = 'data/phase_corpus/'
corpus_overrides = dict(_delete_=True)  # none: every field drawn
particle_diameter_px = None  # no RandomParticleScale here: trained on the corpus's own sizes, predicts at scale 1

model = dict(
    _delete_=True,  # no RPN / RoI heads: phases only, so that any instance labels can be analysed with them
    type='PhaseSegmentor',
    data_preprocessor=dict(_base_.model.data_preprocessor, pad_seg=True, seg_pad_value=255),  # pad = ignored
    backbone=_base_.model.backbone,
    neck=_base_.model.neck,
    semantic_head=dict(
        type='PanopticFPNHead',
        num_things_classes=1,  # NMC
        num_stuff_classes=2,  # pore, carbon-binder
        in_channels=_base_.fpn_channels,
        inner_channels=_base_.fpn_channels,  # stock 128: the CPU-tiny FPN is 64 wide
        start_level=0,  # from P2 (stride 4), the finest FPN level
        end_level=4,
        norm_cfg=_base_.norm_cfg,
        loss_seg=dict(type='CrossEntropyLoss', ignore_index=255, avg_non_ignore=True,
                      loss_weight=1.0)),  # 255: padding, left out of the mean
    # Full-resolution refinement (carbon-binder films are 1-3 voxels thick): 16 channels instead of 8 chosen on
    # validation volumes (seeds 8100-8108): per-particle detachment r and carbon-binder IoU up, 3 % more time.
    refine_channels=16,
    boundary_weight=5.0,  # detachment is the phase just outside a particle: weigh the boundary pixels more
    # Slices mirror-padded by 4 px before the model (phases at the volume's faces were the worst), and pore
    # probability x(2.3 - 2.25 x the image's bulk carbon-binder share) next to particles, where the model calls
    # ambiguous pore carbon-binder, the more so the less carbon-binder lies elsewhere: the pair with the smallest
    # worst mean-detachment error on 36 validation volumes (seeds 8100-8108, bulk carbon-binder domains in 0, 1/4,
    # 1/2, 3/4 of the gaps; benchmarks/tune_phase_weight.py), the padding chosen with an earlier model on the first 9;
    # each view's probabilities at half weight on its slices' edge pixels, where the other views see more (ramps of
    # 2, 4, 8, 16 px tried on the same 36 volumes, 2 the smallest worst error).
    test_cfg=dict(surface_pore_weight=2.3, bulk_cb_slope=2.25, mirror_pad_px=4, view_edge_ramp_px=2))

# 2.5D input: each slice with its two neighbours along its axis as the three channels (3D context for the thin
# shell around a particle), a quarter of the training slices without them, as a 2D image comes;
# chosen over one slice repeated on validation volumes (tune_phase_weight.py: mean r 0.936 -> 0.946, hard 0.920 ->
# 0.925, worst mean-detachment error 0.024 -> 0.023).
train_pipeline = [
    dict(type='LoadTomoImageFromFile', normalize='percentile', percentiles=(0.5, 99.5), context_slices=True),
    dict(type='RandomContextDrop', prob=0.25),
    dict(type='LoadPhaseMap'),  # phases.tif slice -> gt_seg_map
    dict(type='RandomCrop', crop_size=_base_.crop_size, crop_type='absolute',
         allow_negative_crop=True),  # a crop without particles still has pore and carbon-binder to learn
    dict(type='RandomRot90', prob=0.75),
    dict(type='RandomFlip', prob=0.5),
    # The R101 recipe's intensity augmentations: phases are told apart by intensity and texture, which differ
    # between scans more than particle shapes do.
    dict(type='RandomGamma', prob=0.3),
    dict(type='Contrast', prob=0.3, min_mag=0.7, max_mag=1.3),
    dict(type='RandomGaussianNoise', prob=0.3),
    dict(type='RandomPoissonNoise', prob=0.2),
    dict(type='RandomGaussianBlur', prob=0.2),
    dict(type='RandomRingArtifact', prob=0.1),
    dict(type='RandomStreakArtifact', prob=0.1),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size=4,  # no RoI heads: a larger batch costs little
    dataset=dict(
        _delete_=True,
        type='PhaseTiffDataset',
        data_root=corpus_root,
        data_prefix=dict(img='images/', seg='phases/'),
        slice_axes='zyx',
        slice_step=2,
        pipeline=train_pipeline))
test_pipeline = [
    dict(type='LoadTomoImageFromFile', normalize='percentile', percentiles=(0.5, 99.5),
         context_slices=True),  # as in training
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
# Only the test pipeline matters (the phase API prepares slices with it); the phases are scored by
# benchmarks/bench_phases.py, not tools/test.py (the inherited COCO test set and metric are for instances).
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

# 3000 -> 6000 -> 9000 chosen on validation volumes (seeds 8100-8108): IoU and detachment r up; 9000 (each model at
# its own shell weight pair) mean r 0.932 -> 0.935 on the 36 of tune_phase_weight.py, hard 0.915 -> 0.919
max_iters = 9000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
val_cfg = None  # scored by benchmarks/bench_phases.py on held-out volumes
auto_scale_lr = dict(base_batch_size=4)  # the batch the lr is used at (train.py --auto-scale-lr scales from it)
val_dataloader = None
val_evaluator = None
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),  # warm-up over the first 100
    # lr steps at 0.77 and 0.9 of the iterations (the 6000-iteration schedule's 4600 and 5400, scaled)
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[6900, 8100], gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=50),  # a line per 50 of 9000 iterations
    # resumable every 250; two kept: the hook deletes the older before it writes the newer, so a run killed while
    # saving still has one whole checkpoint to resume from
    checkpoint=dict(by_epoch=False, interval=250, max_keep_ckpts=2, save_best=None))
log_processor = dict(by_epoch=False)
