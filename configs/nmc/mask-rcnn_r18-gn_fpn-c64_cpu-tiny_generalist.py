# The generalist for the CPU: the CPU-tiny model trained on the randomised synthetic corpus at every particle size
# in `particle_diameter_px` (tools/make_model.py builds the corpus and trains it: `make model`).
_base_ = ['./mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py', './_generalist_corpus.py']

# Rescale each slice to a random typical particle diameter before the crop (the base pipeline has no Resize).
train_pipeline = _base_.train_pipeline[:2] + [
    dict(type='RandomParticleScale', diameter_range=_base_.particle_diameter_px, crop_size=_base_.crop_size)
] + _base_.train_pipeline[2:]
train_dataloader = dict(dataset=dict(_base_.corpus_dataset, pipeline=train_pipeline))

# Masks cut at 0.4, not mmdet's 0.5: at 0.5 they leave 7-16 % of the particles' outer voxel layer out, which the
# analysis counts as contact with other particles (user-path detachment error, worst of 18 validation volumes,
# -0.054 -> -0.028; 3D F1 -0.001; BENCHMARKS.md "The generalist's mask threshold"). A built model reads it from its
# own config.py.
# Training proposals as mmdet's stock Mask R-CNN (the R101 recipe keeps 4000 / 2000 for whole dense slices): a 256 px
# crop holds at most a few hundred particles, and the RPN's NMS of 5 levels x 4000 boxes took 67 ms per image (25).
# With the fused AdamW below: training -9 % on the slowest machine, validation 2D F1 mean -0.002 (BENCHMARKS.md).
model = dict(test_cfg=dict(rcnn=dict(mask_thr_binary=0.4)),
             train_cfg=dict(rpn_proposal=dict(nms_pre=2000, max_per_img=1000)))

# Iterations, not epochs: the corpus size is a make_model option. 5600 x batch 2 with a linear decay (below): 51 min
# with the corpus on the slowest 2-core machine measured, where 7000 with lr steps took 70 (issue 15 asks for 60);
# validation 2D F1@0.5 mean -0.0035 (bench_zero_shot.py --seeds 7000, BENCHMARKS.md "5600 iterations").
max_iters = 5600
# tools/make_model.py trains this recipe on a CPU in 2 processes of 1 image each (torchrun, gloo): one process leaves a
# core idle in mmcv's single-threaded RoIAlign and NMS; 52 instead of 65 min on one machine, validation F1 unchanged.
cpu_train_ranks = 2
# AdamW as one fused kernel per step instead of a loop over the parameters (the same update, 82 -> 10 ms of ~0.55 s
# per iteration in a torch profile on 2 CPU cores).
optim_wrapper = dict(optimizer=dict(fused=True))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
val_cfg = None  # no validation split: the zero-shot benchmark scores the model on data it never saw
val_dataloader = None
val_evaluator = None
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),  # warm-up over the first 100
    # then linear decay to 1 % (the steps' last value) at the end: of the schedules, the one that loses least when
    # the iterations are cut (Li et al., Budgeted training, ICLR 2020); make_model.py --iters moves its end
    dict(type='PolyLR', by_epoch=False, begin=100, end=max_iters, power=1.0, eta_min=1e-5)
]
default_hooks = dict(
    logger=dict(interval=50),  # a line per 50 of 5600 iterations
    # resumable every 500; two kept: the hook deletes the older before it writes the newer, so a run killed while
    # saving still has one whole checkpoint to resume from
    checkpoint=dict(by_epoch=False, interval=500, max_keep_ckpts=2, save_best=None))
log_processor = dict(by_epoch=False)
