# NMC particle instance segmentation: the real recipe (GPU). Mask R-CNN R101-FPN, MMDetection's stock 1x COCO
# recipe with only what differs for dense single-class tomography slices overridden, each with its reason.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r101_fpn_1x_coco.py'

# Register libnet_mmdet's datasets, transforms, losses and metrics.
custom_imports = dict(imports=['libnet_mmdet'], allow_failed_imports=False)

data_root = 'data/nmc/'  # layout: data/README.md
metainfo = dict(classes=('particle',), palette=[(220, 20, 60)])  # one class: NMC particle

model = dict(
    roi_head=dict(
        bbox_head=dict(num_classes=1),  # one class: particle
        mask_head=dict(num_classes=1)),  # one class: particle
    train_cfg=dict(
        # A dense slice holds several hundred particles: keep more proposals than COCO's 1000.
        rpn_proposal=dict(nms_pre=4000, max_per_img=2000)),
    test_cfg=dict(
        rpn=dict(nms_pre=2000, max_per_img=2000),  # dense slices: more proposals survive to the RoI head
        rcnn=dict(max_per_img=500)))  # a slice can hold well over COCO's 100 particles

train_dataloader = dict(
    batch_size=4,  # one GPU (stock: 2 per GPU on 8 GPUs); lr below is scaled to it
    num_workers=4,
    dataset=dict(
        type='ParticleCocoDataset',  # COCO JSON with path checks, class 'particle'
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/train.json',
        data_prefix=dict(img='images/train/')))
val_dataloader = dict(
    dataset=dict(
        type='ParticleCocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/val.json',
        data_prefix=dict(img='images/val/')))
test_dataloader = val_dataloader

# CocoMetric sets COCOeval's maxDets from proposal_nums and reports AP at the last one: score dense slices
# with up to 1000 detections per image (test_cfg.rcnn.max_per_img caps what the model returns).
val_evaluator = dict(ann_file=data_root + 'annotations/val.json', proposal_nums=(100, 300, 1000))
test_evaluator = val_evaluator

# Particle datasets are a few hundred slices, far fewer images than COCO: train 3x longer (36 epochs).
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs, val_interval=3)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33], gamma=0.1)
]
# Linear scaling rule: stock lr 0.02 is for batch 16; we train batch 4 on one GPU.
optim_wrapper = dict(optimizer=dict(lr=0.005))
auto_scale_lr = dict(base_batch_size=4)  # `--auto-scale-lr` rescales from our batch 4, not COCO's 16

# Keep the best checkpoint by mask AP, and only the last 3 others, to save disk on long runs.
default_hooks = dict(checkpoint=dict(interval=3, max_keep_ckpts=3, save_best='coco/segm_mAP', rule='greater'))
