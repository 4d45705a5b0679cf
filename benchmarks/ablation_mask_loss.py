"""Ablation: stock mask BCE vs. the shape-aware mask loss, same data, same iterations, several seeds.

Usage:
    nice -n 10 python benchmarks/ablation_mask_loss.py                        # main table (2-core CPU: ~1 h)
    nice -n 10 python benchmarks/ablation_mask_loss.py --annotations filled solid   # + solid-annotation scenario
    python benchmarks/ablation_mask_loss.py --iters 20 --seeds 0 --train-shape 8 96 96 --val-shape 4 96 96 \
        --work-dir /tmp/ablation_quick --out /tmp/ablation_quick.json       # smoke run (minutes)

Data: two synthetic volumes (``libnet_mmdet.synth``, ``typical`` preset with ``--hollow-fraction`` and
``--crack-fraction`` of the particles hollow / cracked), one for training and one for validation (different
seeds), exported as COCO z-slices. The validation truth is always the filled particle (hollow core and cracks
included, the project's ground-truth convention). Training annotations (``--annotations``):

- ``filled``: the same convention (the main ablation);
- ``solid``: the particle minus its voids (pore pixels inside it removed), as a threshold-based or solid-phase
  annotation gives: hollow cores become holes and cracks cut the mask. The model is still scored against filled
  particles, so this measures whether a loss recovers the filled body from such labels.

Model: the CPU-tiny config (``configs/nmc/mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py``, R18-GN from scratch, with its
own pipelines) and its shape-aware twin (``..._shape-aware.py``), which differ only in
``roi_head.mask_head.loss_mask``; each trains ``--iters`` iterations (``IterBasedTrainLoop``, warm-up then x0.1 at
75 % and 90 %) through ``tools/train.py``. Every run is evaluated on the validation slices with ``CocoMetric``
(bbox + segm AP) and ``InstanceMatchingMetric`` (F1@0.5, F1@0.75, mean accuracy over IoU 0.50:0.05:0.95, PQ), plus
a breakdown over the validation particle sections of at least 200 px that show a void (hollow core or crack: pore
pixels inside the filled section) and those that do not: the share recovered with IoU >= 0.75 and >= 0.9 by the
best-overlapping prediction (score >= 0.5) and their mean best IoU. Last, it times one forward + backward of
each mask loss on 64 RoIs (the CPU cost the loss adds per training step).

Prints a table (mean and standard deviation over seeds, then every run) and writes all numbers as JSON
(atomically) to ``--out`` (default ``benchmarks/results/ablation_mask_loss.json``). Runs live in
``WORK_DIR/<recipe hash>-<data hash>-iters<N>/<loss>-<loss hash>_<annotations>_seed<seed>/``, hashes of the
resolved stock CPU-tiny config, of the data arguments (their volumes in ``WORK_DIR/data-<data hash>/``) and of the
mask loss (its config and source), so a run is reused only while what it was trained with is unchanged (the
``--threads`` of a reused run's recorded times excepted): a finished run (``metrics.json``) is read back, one with
its final checkpoint is only tested again, and an interrupted ablation resumes where it stopped.
"""
import argparse
import copy
import dataclasses
import hashlib
import inspect
import json
import os
import os.path as osp
import pickle
import platform
import subprocess
import sys
import time

import numpy as np
import tifffile
import torch
from run_record import finish_record, run_record  # noqa: E402 (benchmarks/ is sys.path[0])

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RESULTS = osp.join(REPO_ROOT, 'benchmarks', 'results', 'ablation_mask_loss.json')
CONFIGS = {
    'bce': osp.join(REPO_ROOT, 'configs', 'nmc', 'mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py'),
    'shape-aware': osp.join(REPO_ROOT, 'configs', 'nmc', 'mask-rcnn_r18-gn_fpn-c64_cpu-tiny_shape-aware.py'),
}
ANNOTATIONS = ('filled', 'solid')
HEADLINE = (('segm_mAP', 'coco/segm_mAP'), ('segm_AP50', 'coco/segm_mAP_50'), ('segm_AP75', 'coco/segm_mAP_75'),
            ('bbox_mAP', 'coco/bbox_mAP'), ('F1@0.5', 'matching/f1_50'), ('F1@0.75', 'matching/f1_75'),
            ('acc_mean', 'matching/accuracy_mean'), ('PQ', 'matching/pq_50'))
SECTION_KEYS = ('damaged_recall_75', 'damaged_recall_90', 'damaged_mean_iou', 'intact_recall_75',
                'intact_recall_90', 'intact_mean_iou')
SCORE_THR = 0.5  # as InstanceMatchingMetric
SECTION_MIN_AREA_PX = 200  # sections below ~16 px across are a detection problem, not a mask one
TRAIN_SEED, VAL_SEED = 101, 202  # synthetic volume seeds


def make_data(data_root, args):
    """Generate and export the training volume (one folder per annotation style) and the validation volume.

    Folders ``data_root/train_<annotations>/`` and ``data_root/val/`` in the ``write_dataset`` layout; existing
    ones are kept.
    """
    from libnet_mmdet.synth import generate_volume, preset_params, write_dataset
    params = preset_params('typical', hollow_fraction=args.hollow_fraction, crack_fraction=args.crack_fraction)
    jobs = [('val', args.val_shape, VAL_SEED, args.val_every, 'filled')]
    jobs += [(f'train_{style}', args.train_shape, TRAIN_SEED, args.train_every, style) for style in args.annotations]
    volumes = {}
    for split, shape, seed, every, style in jobs:
        out_dir = osp.join(data_root, split)
        if osp.isfile(osp.join(out_dir, 'coco', 'annotations.json')):
            continue
        if (tuple(shape), seed) not in volumes:
            volumes[tuple(shape), seed] = generate_volume(tuple(shape), params, seed=seed)
        volume = volumes[tuple(shape), seed]
        if style == 'solid':  # voids inside particles are not particle
            volume = dataclasses.replace(volume, labels_zyx=np.where(volume.phases_zyx == 0, 0, volume.labels_zyx))
        write_dataset(out_dir, volume, axes=('z',), every=every, via=False, overwrite=True)


def data_hash(args):
    """Short hash of the data arguments (shapes, slice steps, void fractions): runs on other data are not reused."""
    settings = [args.train_shape, args.val_shape, args.train_every, args.val_every, args.hollow_fraction,
                args.crack_fraction]
    return hashlib.sha1(json.dumps(settings).encode()).hexdigest()[:10]


def recipe_hash():
    """Short hash of the resolved stock CPU-tiny config (model, data pipeline, schedule): what runs must share."""
    from mmengine.config import Config
    return hashlib.sha1(Config.fromfile(CONFIGS['bce']).pretty_text.encode()).hexdigest()[:10]


def loss_hash(loss):
    """Short hash of a run's mask loss: its config and, for a loss of this package, the source that implements it."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    loss_cfg = Config.fromfile(CONFIGS[loss]).model.roi_head.mask_head.loss_mask.to_dict()
    text = json.dumps(loss_cfg, sort_keys=True)
    loss_class = MODELS.get(loss_cfg['type'])
    if loss_class.__module__.startswith('libnet_mmdet.'):
        text += inspect.getsource(sys.modules[loss_class.__module__])
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def run_config(base, data_root, train_split, work_dir, iters, seed):
    """Config of one run: ``base`` (a CPU-tiny config) on the synthetic slices for ``iters`` iterations."""
    from mmengine.config import Config
    cfg = Config.fromfile(base)
    for loader, split in (('train_dataloader', train_split), ('test_dataloader', 'val')):
        cfg[loader].num_workers = 1
        cfg[loader].dataset.update(data_root=data_root + '/', ann_file=f'{split}/coco/annotations.json',
                                   data_prefix=dict(img=f'{split}/coco/images/'))
    ann_file = osp.join(data_root, 'val', 'coco', 'annotations.json')
    coco = dict(type='CocoMetric', ann_file=ann_file, metric=['bbox', 'segm'], proposal_nums=(100, 300, 1000))
    cfg.test_evaluator = [coco, dict(type='InstanceMatchingMetric', score_thr=SCORE_THR)]
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None  # no validation while training: tested afterwards
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=min(50, iters)),
        dict(type='MultiStepLR', by_epoch=False, begin=0, end=iters,
             milestones=[int(0.75 * iters), int(0.9 * iters)], gamma=0.1)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=iters, max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=20)
    cfg.log_processor = dict(by_epoch=False)
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    return cfg


def section_breakdown(predictions, data_root, min_area_px=SECTION_MIN_AREA_PX):
    """Mask quality on validation particle sections with and without a visible void, from dumped predictions.

    A ground-truth section is *damaged* when its filled 2D region holds pore pixels (hollow core or crack cut by
    the slice), *intact* otherwise; only sections of at least ``min_area_px`` pixels count (smaller ones are
    mostly missed by the detector, whatever the mask loss). For every section the best IoU over the predictions
    (score >= ``SCORE_THR``, rasterised with the higher score on top, as ``InstanceMatchingMetric``) is taken;
    returns, per group, the number of sections, the share with best IoU >= 0.75 and >= 0.9, and the mean best IoU.
    """
    from libnet_mmdet.evaluation import instances_to_labels, pairwise_iou
    val_dir = osp.join(data_root, 'val')
    labels_zyx = tifffile.imread(osp.join(val_dir, 'labels.tif'))
    phases_zyx = tifffile.imread(osp.join(val_dir, 'phases.tif'))
    with open(osp.join(val_dir, 'coco', 'annotations.json')) as stream:
        slice_of_image = {image['id']: image['slice_index'] for image in json.load(stream)['images']}
    best_iou, damaged, area = [], [], []
    for prediction in predictions:
        z = slice_of_image[prediction['img_id']]
        gt_labels, pores = labels_zyx[z].astype(np.int64), phases_zyx[z] == 0
        pred = prediction['pred_instances']
        scores = np.asarray(pred['scores'], dtype=np.float64)
        keep = np.flatnonzero(scores >= SCORE_THR)
        pred_labels = (instances_to_labels(pred['masks'], gt_labels.shape, keep[np.argsort(-scores[keep])])
                       if keep.size else np.zeros(gt_labels.shape, np.int32))
        gt_ids = np.unique(gt_labels[gt_labels > 0])
        gt_index, _, iou, _, _ = pairwise_iou(gt_labels, pred_labels)
        best = np.zeros(gt_ids.size)
        np.maximum.at(best, gt_index, iou)
        best_iou.append(best)
        damaged.append(np.bincount(gt_labels[pores], minlength=gt_labels.max() + 1)[gt_ids] > 0)
        area.append(np.bincount(gt_labels.ravel())[gt_ids])
    best_iou, damaged, large = np.concatenate(best_iou), np.concatenate(damaged), np.concatenate(area) >= min_area_px
    out = {}
    for group, members in (('damaged', damaged & large), ('intact', ~damaged & large)):
        values = best_iou[members]
        stats = (dict(recall_75=np.mean(values >= 0.75), recall_90=np.mean(values >= 0.9), mean_iou=values.mean())
                 if values.size else dict.fromkeys(('recall_75', 'recall_90', 'mean_iou'), np.nan))
        out[f'{group}_sections'] = int(values.size)
        out.update({f'{group}_{name}': float(value) for name, value in stats.items()})
    return out


def time_losses(num_rois=64, repeats=20):
    """Seconds per forward + backward of each mask loss on ``num_rois`` 28x28 RoIs (discs, a third hollow)."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from skimage.draw import disk
    rng = np.random.default_rng(0)
    targets = np.zeros((num_rois, 28, 28), np.float32)
    for index, target in enumerate(targets):
        centre, radius = rng.uniform(8, 20, 2), rng.uniform(6, 14)
        target[disk(tuple(centre), radius, shape=target.shape)] = 1
        if index % 3 == 0:
            target[disk(tuple(centre), radius / 3, shape=target.shape)] = 0
    targets = torch.from_numpy(targets)
    labels = torch.zeros(num_rois, dtype=torch.long)
    timings = {}
    for loss, config in CONFIGS.items():
        criterion = MODELS.build(Config.fromfile(config).model.roi_head.mask_head.loss_mask)
        logits = torch.randn(num_rois, 1, 28, 28, requires_grad=True)
        criterion(logits, targets, labels).backward()  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            criterion(logits, targets, labels).backward()
        timings[loss] = round((time.perf_counter() - start) / repeats, 5)
    return timings


def evaluate(cfg, checkpoint, predictions_file):
    """Test ``checkpoint`` on the validation slices; return the metric dict (predictions dumped to a pickle)."""
    from mmdet.evaluation import DumpDetResults
    from mmengine.runner import Runner
    cfg = copy.deepcopy(cfg)
    cfg.load_from = checkpoint
    cfg.work_dir = osp.join(cfg.work_dir, 'test')
    runner = Runner.from_cfg(cfg)
    runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=predictions_file))
    return {key: float(value) for key, value in runner.test().items()}


def run_one(loss, annotations, seed, args, runs_dir, data_root):
    """Train and evaluate one run, or read its finished metrics; return the record with the section breakdown."""
    from libnet_mmdet.io import write_json
    work_dir = osp.join(runs_dir, f'{loss}-{loss_hash(loss)}_{annotations}_seed{seed}')
    metrics_file = osp.join(work_dir, 'metrics.json')
    if osp.isfile(metrics_file):
        with open(metrics_file) as stream:
            record = json.load(stream)
    else:
        record = train_and_test(loss, annotations, seed, args, data_root, work_dir)
        write_json(metrics_file, record, indent=2)
    with open(osp.join(work_dir, 'predictions.pkl'), 'rb') as stream:  # cheap: redone on every call
        record['metrics'].update(section_breakdown(pickle.load(stream), data_root))
    return record


def train_and_test(loss, annotations, seed, args, data_root, work_dir):
    """Train one run through ``tools/train.py`` (unless its final checkpoint exists) and test it."""
    os.makedirs(work_dir, exist_ok=True)
    cfg = run_config(CONFIGS[loss], data_root, f'train_{annotations}', work_dir, args.iters, seed)
    config_file = osp.join(work_dir, 'config.py')
    cfg.dump(config_file)
    checkpoint = osp.join(work_dir, f'iter_{args.iters}.pth')
    train_s_file = osp.join(work_dir, 'train_s.txt')
    if not osp.isfile(checkpoint):  # a run trained before an interruption is only tested again
        start = time.perf_counter()
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
                   CUDA_VISIBLE_DEVICES='')
        with open(osp.join(work_dir, 'train.log'), 'w') as log:
            subprocess.run([sys.executable, osp.join(REPO_ROOT, 'tools', 'train.py'), config_file, '--work-dir',
                            work_dir], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
        with open(train_s_file, 'w') as stream:
            stream.write(f'{time.perf_counter() - start:.1f}\n')
    with open(train_s_file) as stream:
        train_s = float(stream.read())
    start = time.perf_counter()
    metrics = evaluate(cfg, checkpoint, osp.join(work_dir, 'predictions.pkl'))
    return dict(loss=loss, annotations=annotations, seed=seed, iters=args.iters, train_s=train_s,
                test_s=round(time.perf_counter() - start, 1), metrics=metrics)


def summarise(records):
    """Mean and standard deviation over seeds of every headline metric, per (annotations, loss)."""
    summary = {}
    for group in dict.fromkeys(f"{r['annotations']}/{r['loss']}" for r in records):
        runs = [r for r in records if f"{r['annotations']}/{r['loss']}" == group]
        summary[group] = {'runs': len(runs)}
        for name, key in HEADLINE + tuple((k, k) for k in SECTION_KEYS):
            values = np.array([r['metrics'][key] for r in runs], dtype=np.float64)
            summary[group][name] = {'mean': round(float(values.mean()), 4),
                                    'std': round(float(values.std(ddof=1)) if values.size > 1 else 0.0, 4)}
    return summary


def print_table(summary, records):
    names = [name for name, _ in HEADLINE] + list(SECTION_KEYS)
    print('| annotations / loss | ' + ' | '.join(names) + ' |')
    print('|---' * (len(names) + 1) + '|')
    for group, row in summary.items():
        print(f"| {group} (mean ± sd, {row['runs']} seeds) | "
              + ' | '.join(f"{row[n]['mean']:.3f} ± {row[n]['std']:.3f}" for n in names) + ' |')
    for record in records:
        values = [record['metrics'][key] for _, key in HEADLINE] + [record['metrics'][key] for key in SECTION_KEYS]
        print(f"| {record['annotations']}/{record['loss']} seed {record['seed']} | "
              + ' | '.join(f'{v:.3f}' for v in values) + ' |')


def _count_coco(path):
    with open(path) as stream:
        coco = json.load(stream)
    return {'slices': len(coco['images']), 'instances': len(coco['annotations'])}


def main():
    run = run_record()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--iters', type=int, default=300, help='training iterations per run (batch 2)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1], help='training seeds (one run per loss each)')
    parser.add_argument('--losses', nargs='+', choices=sorted(CONFIGS), default=['bce', 'shape-aware'])
    parser.add_argument('--annotations', nargs='+', choices=ANNOTATIONS, default=['filled'],
                        help='training annotation styles (the validation truth is always filled)')
    parser.add_argument('--train-shape', type=int, nargs=3, default=[64, 192, 192], metavar=('Z', 'Y', 'X'))
    parser.add_argument('--val-shape', type=int, nargs=3, default=[32, 192, 192], metavar=('Z', 'Y', 'X'))
    parser.add_argument('--train-every', type=int, default=2, help='export every k-th training z-slice')
    parser.add_argument('--val-every', type=int, default=4, help='export every k-th validation z-slice')
    parser.add_argument('--hollow-fraction', type=float, default=0.3)
    parser.add_argument('--crack-fraction', type=float, default=0.3)
    parser.add_argument('--threads', type=int, default=2, help='torch threads of each training run')
    parser.add_argument('--work-dir', default=osp.join(REPO_ROOT, 'work_dirs', 'ablation_mask_loss'))
    parser.add_argument('--out', default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import libnet_mmdet  # noqa: F401  (registers our modules for the in-process evaluation)
    from libnet_mmdet.io import write_json
    data_key = data_hash(args)
    data_root = osp.join(osp.abspath(args.work_dir), f'data-{data_key}')
    recipe = recipe_hash()
    runs_dir = osp.join(osp.abspath(args.work_dir), f'{recipe}-{data_key}-iters{args.iters}')
    start = time.perf_counter()
    make_data(data_root, args)
    print(f'data ready in {data_root} ({time.perf_counter() - start:.0f} s); runs in {runs_dir}', flush=True)
    records = []
    for annotations in args.annotations:
        for seed in args.seeds:
            for loss in args.losses:
                record = run_one(loss, annotations, seed, args, runs_dir, data_root)
                records.append(record)
                print(f"{annotations}/{loss} seed {seed}: train {record['train_s']} s, test {record['test_s']} s, "
                      f"segm_mAP {record['metrics']['coco/segm_mAP']:.3f}, "
                      f"F1@0.75 {record['metrics']['matching/f1_75']:.3f}", flush=True)
    summary = summarise(records)
    print_table(summary, records)
    loss_s = time_losses()
    print(f'mask loss forward + backward, 64 RoIs, {args.threads} threads: '
          + ', '.join(f'{loss} {seconds * 1e3:.1f} ms' for loss, seconds in loss_s.items()))
    write_json(args.out, {'run': finish_record(run), 'benchmark': 'ablation_mask_loss',
        'torch_setup': {'platform': platform.platform(), 'threads': args.threads, 'torch': torch.__version__,
                        'cuda': torch.cuda.is_available()},
        'recipe_hash': recipe,
        'data': {'preset': 'typical', 'hollow_fraction': args.hollow_fraction,
                 'crack_fraction': args.crack_fraction, 'train_shape_zyx': args.train_shape,
                 'val_shape_zyx': args.val_shape, 'train_every': args.train_every, 'val_every': args.val_every,
                 'seeds': {'train_volume': TRAIN_SEED, 'val_volume': VAL_SEED},
                 'val': _count_coco(osp.join(data_root, 'val', 'coco', 'annotations.json')),
                 **{f'train_{style}': _count_coco(osp.join(data_root, f'train_{style}', 'coco', 'annotations.json'))
                    for style in args.annotations}},
        'iters': args.iters, 'batch_size': 2, 'section_min_area_px': SECTION_MIN_AREA_PX,
        'mask_loss_s_per_call_64_rois': loss_s,
        'configs': {k: osp.relpath(v, REPO_ROOT) for k, v in CONFIGS.items()},
        'summary': summary, 'runs': records}, indent=2)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
