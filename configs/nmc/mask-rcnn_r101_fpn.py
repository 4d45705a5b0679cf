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
        rpn_proposal=dict(nms_pre=4000, max_per_img=2000,
                          # --amp: 5 levels x 4000 boxes pass mmcv's 10,000-box split, whose path fails on float16
                          # scores (`Index put requires the source and destination dtypes match`, seen on a GPU)
                          nms=dict(split_thr=100000))),
    test_cfg=dict(
        rpn=dict(nms_pre=2000, max_per_img=2000),  # dense slices: more proposals survive to the RoI head
        rcnn=dict(max_per_img=500)))  # a slice can hold well over COCO's 100 particles

# Tomography slices: 8/16-bit or float32 TIFF (a 2D page or a slice of a stack) or PNG/JPG, percentile-normalised
# per image to 0-255 and repeated to 3 channels (stock: LoadImageFromFile, 8-bit colour).
# No Resize (stock: 1333x800): a particle keeps its size in pixels between training crops and whole test slices.
# If particles are under ~20 px across, upsample: Resize(scale_factor=2.0) in both pipelines (test: replace the no-op):
# the stock 32 px anchors give a box under ~18 px no positive anchor (IoU < min_pos_iou 0.3).
crop_size = (512, 512)  # training windows cut from large slices
train_pipeline = [
    dict(type='LoadTomoImageFromFile', normalize='percentile', percentiles=(0.5, 99.5)),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomCrop', crop_size=crop_size, crop_type='absolute', allow_negative_crop=False,
         recompute_bbox=True),  # random windows of large slices, boxes recomputed from the cut masks
    dict(type='FilterAnnotations', min_gt_bbox_wh=(0.01, 0.01)),  # drop particles the crop cut away entirely
    dict(type='RandomRot90', prob=0.75),  # with the flip: all 8 orientations (a slice has no "up")
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomGamma', prob=0.3),  # intensity response differs between scans
    dict(type='Contrast', prob=0.3, min_mag=0.7, max_mag=1.3),  # contrast differs between scans too
    dict(type='RandomGaussianNoise', prob=0.3),  # detector noise
    dict(type='RandomPoissonNoise', prob=0.2),  # low-dose photon noise
    dict(type='RandomGaussianBlur', prob=0.2),  # resolution / focus differences
    dict(type='RandomRingArtifact', prob=0.1),  # reconstruction artefacts of real scans
    dict(type='RandomStreakArtifact', prob=0.1),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadTomoImageFromFile', normalize='percentile', percentiles=(0.5, 99.5)),  # as in training
    dict(type='Resize', scale_factor=1.0, keep_ratio=True),  # no-op: records scale_factor=1 for the heads
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]

train_dataloader = dict(
    batch_size=4,  # one GPU (stock: 2 per GPU on 8 GPUs); lr below is scaled to it
    num_workers=4,  # stock 2: more workers for the per-slice tomography augmentations (not measured)
    dataset=dict(
        type='ParticleCocoDataset',  # COCO JSON with path checks, class 'particle'
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/train.json',
        data_prefix=dict(img='images/train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type='ParticleCocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/val.json',
        data_prefix=dict(img='images/val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# CocoMetric sets COCOeval's maxDets from proposal_nums (stated explicitly: its default): mAP_50, mAP_75 and
# mAP_s/m/l count up to 1000 detections per image (test_cfg.rcnn.max_per_img caps what the model returns);
# pycocotools takes the headline mAP at 100 whatever maxDets says, so on slices of more than ~100 particles it
# undercounts: read mAP_50 (save_best below keeps the checkpoint by it).
val_evaluator = dict(ann_file=data_root + 'annotations/val.json', proposal_nums=(100, 300, 1000))
test_evaluator = val_evaluator

# Particle datasets are a few hundred slices, far fewer images than COCO: train 3x longer (36 epochs).
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs, val_interval=3)  # validate every 3 of the 36 epochs (stock: every epoch)
param_scheduler = [
    # warm-up over the first epoch (stock: 500 iterations, 0.6 % of COCO's 1x; a few hundred slices make epochs of
    # ~75 iterations at batch 4, so 500 would be a fifth of the run, or all of it for fewer than ~56 slices)
    dict(type='LinearLR', start_factor=0.001, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    # steps at 3/4 and 11/12 of the epochs (stock 1x: 8 and 11 of 12; 27 is later than 2/3, not re-measured)
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33], gamma=0.1)
]
# Linear scaling rule: stock lr 0.02 is for batch 16; we train batch 4 on one GPU.
optim_wrapper = dict(optimizer=dict(lr=0.005))
auto_scale_lr = dict(base_batch_size=4)  # `--auto-scale-lr` rescales from our batch 4, not COCO's 16

# Keep the best checkpoint by mask AP at IoU 0.5 (counted up to 1000 detections per slice; the headline segm_mAP
# stops at 100: above), and only the last 3 others, to save disk on long runs.
default_hooks = dict(checkpoint=dict(interval=3, max_keep_ckpts=3, save_best='coco/segm_mAP_50', rule='greater'))
