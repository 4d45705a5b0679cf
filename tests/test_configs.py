"""The NMC configs: the R101 recipe overrides only what it says, the CPU-tiny config builds."""
import pytest
import torch
from mmcv.ops import batched_nms
from mmengine.config import Config

from helpers import R101_CONFIG, REPO_ROOT, TINY_CONFIG, flatten

# Every key the R101 recipe may change relative to MMDetection's stock mask-rcnn_r101_fpn_1x_coco.py.
R101_OVERRIDES = {
    'custom_imports', 'data_root', 'metainfo', 'max_epochs', 'train_pipeline', 'test_pipeline', 'crop_size',
    'model.roi_head.bbox_head.num_classes', 'model.roi_head.mask_head.num_classes',
    'model.train_cfg.rpn_proposal.nms_pre', 'model.train_cfg.rpn_proposal.max_per_img',
    'model.train_cfg.rpn_proposal.nms.split_thr',
    'model.test_cfg.rpn.nms_pre', 'model.test_cfg.rpn.max_per_img', 'model.test_cfg.rcnn.max_per_img',
    'train_dataloader.batch_size', 'train_dataloader.num_workers',
    'val_evaluator.ann_file', 'val_evaluator.proposal_nums', 'test_evaluator.ann_file',
    'test_evaluator.proposal_nums', 'train_cfg.max_epochs', 'train_cfg.val_interval', 'param_scheduler',
    'optim_wrapper.optimizer.lr', 'auto_scale_lr.base_batch_size', 'default_hooks.checkpoint.interval',
    'default_hooks.checkpoint.max_keep_ckpts', 'default_hooks.checkpoint.save_best', 'default_hooks.checkpoint.rule',
}
DATASET_OVERRIDES = {'type', 'data_root', 'metainfo', 'ann_file', 'data_prefix', 'pipeline'}


def stock_r101(tmp_path):
    path = tmp_path / 'stock.py'
    path.write_text("_base_ = 'mmdet::mask_rcnn/mask-rcnn_r101_fpn_1x_coco.py'\n")
    return Config.fromfile(str(path))


def test_r101_recipe_overrides_only_what_differs(tmp_path):
    cfg = Config.fromfile(str(R101_CONFIG))
    assert cfg.model.backbone.depth == 101
    assert cfg.model.backbone.init_cfg.checkpoint == 'torchvision://resnet101'
    assert cfg.model.roi_head.bbox_head.num_classes == 1
    assert cfg.model.roi_head.mask_head.num_classes == 1
    assert cfg.custom_imports == dict(imports=['libnet_mmdet'], allow_failed_imports=False)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.type == 'ParticleCocoDataset'
        assert loader.dataset.metainfo['classes'] == ('particle',)
        assert loader.dataset.data_root == 'data/nmc/'
        assert loader.dataset.pipeline[0].type == 'LoadTomoImageFromFile'  # 16-bit / float32 TIFF slices
    # dense slices: more than COCO's 100 detections are kept and scored
    assert cfg.model.test_cfg.rcnn.max_per_img > 100
    assert max(cfg.test_evaluator.proposal_nums) >= cfg.model.test_cfg.rcnn.max_per_img

    ours, stock = flatten(cfg.to_dict()), flatten(stock_r101(tmp_path).to_dict())
    changed = {key for key in ours.keys() | stock.keys() if ours.get(key) != stock.get(key)}
    dataset_keys = {key for key in changed if key.split('.')[0].endswith('_dataloader')
                    and key.split('.', 2)[1] == 'dataset'}
    unexpected = {key for key in changed - dataset_keys
                  if not any(key == allowed or key.startswith(allowed + '.') for allowed in R101_OVERRIDES)}
    assert not unexpected, f'keys changed without being a documented override: {sorted(unexpected)}'
    assert {key.split('.', 2)[2].split('.')[0] for key in dataset_keys} <= DATASET_OVERRIDES


def test_r101_recipe_rpn_proposals_survive_mixed_precision():
    """`tools/train.py ... --amp`: the RPN's training proposals (5 levels x nms_pre boxes, float32 boxes, float16
    scores under autocast) go through batched_nms without mmcv's split path, which fails on float16 scores."""
    cfg = Config.fromfile(str(R101_CONFIG)).model.train_cfg.rpn_proposal
    n_boxes = 5 * cfg.nms_pre
    generator = torch.Generator().manual_seed(0)
    corners = torch.rand(n_boxes, 2, generator=generator) * 500
    boxes = torch.cat([corners, corners + 10], 1)
    scores = torch.rand(n_boxes, generator=generator).half()
    levels = torch.randint(0, 5, (n_boxes,), generator=generator)
    dets, keep = batched_nms(boxes, scores, levels, cfg.nms)
    assert 0 < len(keep) <= n_boxes and dets.shape == (len(keep), 5)


def test_cpu_tiny_config_builds_a_small_model():
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    import libnet_mmdet  # noqa: F401

    register_all_modules()
    cfg = Config.fromfile(str(TINY_CONFIG))
    assert cfg.model.backbone.depth == 18 and cfg.model.backbone.init_cfg is None
    assert cfg.model.backbone.norm_cfg.type == 'GN'
    assert cfg.model.roi_head.mask_head.num_classes == 1  # inherited from the recipe
    model = MODELS.build(cfg.model)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params < 20e6, n_params  # R101 Mask R-CNN has ~63M


def test_the_2_5d_generalist_differs_from_the_generalist_only_in_its_input():
    """Its loader gives each slice its neighbours, a quarter of the training slices go without them, its masks are
    cut at mmdet's 0.5 (the generalist's 0.4 was chosen for the generalist alone), the rest is the generalist's; the
    volume API then gives the detector (previous, slice, next) channels."""
    import numpy as np
    from libnet_mmdet.apis import init_segmenter, segment_volume
    from libnet_mmdet.apis.model import uses_context_slices

    generalist_path = TINY_CONFIG.with_name('mask-rcnn_r18-gn_fpn-c64_cpu-tiny_generalist.py')
    path = TINY_CONFIG.with_name('mask-rcnn_r18-gn_fpn-c64_cpu-tiny_generalist-2.5d.py')
    generalist, cfg = Config.fromfile(str(generalist_path)), Config.fromfile(str(path))
    train, base_train = cfg.train_dataloader.dataset.pipeline, generalist.train_dataloader.dataset.pipeline
    assert train[0] == dict(base_train[0], context_slices=True)
    assert train[1] == dict(type='RandomContextDrop', prob=0.25) and train[2:] == base_train[1:]
    test, base_test = cfg.test_dataloader.dataset.pipeline, generalist.test_dataloader.dataset.pipeline
    assert test[0] == dict(base_test[0], context_slices=True) and test[1:] == base_test[1:]
    flat, base_flat = flatten(cfg.to_dict()), flatten(generalist.to_dict())
    differing = {key for key in flat.keys() | base_flat.keys() if flat.get(key) != base_flat.get(key)}
    threshold = 'model.test_cfg.rcnn.mask_thr_binary'
    assert (flat[threshold], base_flat[threshold]) == (0.5, 0.4)
    assert {key.split('.')[0] for key in differing - {threshold}} <= {
        'train_pipeline', 'train_dataloader', 'test_pipeline', 'test_dataloader', 'context_loader'}, differing

    model = init_segmenter(str(path), None, device='cpu')
    assert uses_context_slices(model)
    assert not uses_context_slices(init_segmenter(str(generalist_path), None, device='cpu'))
    seen = []
    test_step = model.test_step
    model.test_step = lambda batch: seen.extend(batch['inputs']) or test_step(batch)
    volume = np.random.default_rng(0).integers(0, 255, (6, 40, 40), dtype=np.uint8)
    segment_volume(model, volume, scale=1.0, progress=False)
    assert len(seen) == 6 and all(image.shape == (3, 40, 40) for image in seen)
    assert all((image[0] != image[1]).any() and (image[2] != image[1]).any() for image in seen[1:-1])
    assert (seen[0][0] == seen[0][1]).all() and (seen[-1][2] == seen[-1][1]).all()  # the ends stand in


def test_the_r101_generalist_learns_what_the_cpu_generalist_learns():
    """Both train on particles down to 12 px on one corpus, read back as the same diameter range: the R101 one had
    only the stock 32 px anchors, which give a box under ~18 px no positive anchor."""
    cpu = Config.fromfile(str(TINY_CONFIG.with_name('mask-rcnn_r18-gn_fpn-c64_cpu-tiny_generalist.py')))
    gpu = Config.fromfile(str(R101_CONFIG.with_name('mask-rcnn_r101_fpn_generalist.py')))
    for key in ('particle_diameter_px', 'model.rpn_head.anchor_generator.scales', 'train_dataloader.dataset.data_root',
                'train_dataloader.dataset.slice_axes', 'train_dataloader.dataset.slice_step'):
        assert flatten(gpu.to_dict())[key] == flatten(cpu.to_dict())[key], key
    scale = [step for step in gpu.train_dataloader.dataset.pipeline if step['type'] == 'RandomParticleScale']
    assert scale[0]['diameter_range'] == cpu.particle_diameter_px


@pytest.mark.parametrize('config', sorted(path.name for path in (REPO_ROOT / 'configs' / 'nmc').glob('[!_]*.py')))
def test_records_fit_what_the_config_trains(config):
    """``auto_scale_lr.base_batch_size`` is the batch the learning rate is used at (``make_model.py`` splits it over
    the CPU ranks; ``train.py --auto-scale-lr`` scales from it: the phase model's inherited 2 against its batch of 4
    doubled its lr), and ``particle_diameter_px`` is recorded exactly where ``RandomParticleScale`` trains for that
    range."""
    cfg = Config.fromfile(str(REPO_ROOT / 'configs' / 'nmc' / config))
    assert cfg.auto_scale_lr.base_batch_size == cfg.train_dataloader.batch_size
    scales = [step['diameter_range'] for step in cfg.train_dataloader.dataset.get('pipeline', [])
              if step['type'] == 'RandomParticleScale']
    assert cfg.get('particle_diameter_px') == (scales[0] if scales else None)


def test_r101_recipe_warms_up_over_one_epoch_whatever_the_dataset_size():
    """Stock's 500-iteration warm-up took a fifth of a run on a few hundred slices, and all of it below ~56 slices
    (36 epochs at batch 4); the recipe warms up over the first epoch, converted to iterations by MMEngine."""
    from mmengine.registry import PARAM_SCHEDULERS
    cfg = Config.fromfile(str(R101_CONFIG))
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optim_wrapper.optimizer.lr)
    for n_slices in (40, 300, 20000):
        epoch_length = -(-n_slices // cfg.train_dataloader.batch_size)
        warm_up = PARAM_SCHEDULERS.build(dict(cfg.param_scheduler[0], optimizer=optimizer, epoch_length=epoch_length))
        assert warm_up.by_epoch is False and warm_up.end == epoch_length  # one epoch of 36
