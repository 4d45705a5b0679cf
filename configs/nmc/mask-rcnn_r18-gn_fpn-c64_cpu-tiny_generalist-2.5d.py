# The CPU generalist with 2.5D input (`python tools/make_model.py --recipe tiny-2.5d`, models/generalist-2.5d): each
# slice comes with its two neighbours along its axis as the three channels, where the generalist repeats the slice.
# Not the default: on validation volumes (BENCHMARKS.md) it finds the ends of small particles in noisy scans better
# (hard 12 px 2D F1@0.5 +0.02, linked 3D +0.06) but is a little worse on large particles and on 2D images.
_base_ = ['./mask-rcnn_r18-gn_fpn-c64_cpu-tiny_generalist.py']

context_loader = dict(_base_.train_pipeline[0], context_slices=True)  # (previous, slice, next) as channels
# A quarter of the training slices without their neighbours, as a 2D image comes (the slice in every channel).
train_pipeline = [context_loader, dict(type='RandomContextDrop', prob=0.25)] + _base_.train_pipeline[1:]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
test_pipeline = [dict(_base_.test_pipeline[0], context_slices=True)] + _base_.test_pipeline[1:]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
# mmdet's mask threshold kept: the generalist's 0.4 was chosen for it alone, and this model's numbers are at 0.5.
model = dict(test_cfg=dict(rcnn=dict(mask_thr_binary=0.5)))
