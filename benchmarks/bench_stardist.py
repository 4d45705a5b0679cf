"""A StarDist-style pipeline trained on the generalist's own corpus, scored zero-shot like the generalist.

Usage:
    python benchmarks/bench_stardist.py [--stardist-python .venv-stardist/bin/python] [--model-dir models/stardist]
                                        [--generalist models/generalist] [--samples 2000] [--epochs 60]
                                        [--steps 100] [--presets clean typical hard] [--diameters 12 24 48]
                                        [--seeds 5000] [--no-real] [--out benchmarks/results/stardist.json]

StarDist (TensorFlow) lives in its own environment, beside ours (``benchmarks/requirements-stardist.txt`` says how
it is made); ``benchmarks/stardist_worker.py`` runs there and this script hands it arrays in ``.npz`` files.

1. **Training data** (skipped when ``<model-dir>/stardist/train.json`` records a finished training; an unfinished one
   starts again): ``--samples`` draws of the generalist's own training pipeline (its config's
   ``train_dataloader.dataset``: the corpus of ``make model``, every 2nd xy/xz/yz slice, ``RandomParticleScale`` to a
   typical particle diameter of 12-48 px, 256 px crops, flips, turns, gamma, noise), each as its image channel 0 / 255
   and its masks as one label image, padded to 256 x 256 (the slices of thin corpus volumes are smaller). So StarDist
   sees what the generalist sees, as many samples as about a seventh of the generalist's 14,000 draws, each many times
   over (its own flips and turns on top).
2. **Training** (``stardist_worker.py train``): StarDist's 2D example configuration, ``--epochs`` x ``--steps``
   steps of batch 4; a tenth of the samples is its validation loss. Its probability and NMS thresholds are chosen
   by StarDist's ``optimize_thresholds`` on **validation** slices: 4 xy slices of each preset x diameter cell of
   seed 7000 (the generalist's validation seed; nothing is chosen on the test volumes).
3. **Test** (held out, seeds ``--seeds``, default 5000: the zero-shot benchmark's volumes, made by
   ``bench_zero_shot.make_volume``): every xy slice (one intensity range per volume, as the inference API does)
   segmented by StarDist at scale 1 (``stardist@1``: a user who does not know the particle size) and at the scale the
   generalist's ``scale='auto'`` estimates for the volume (``stardist@auto``: our scale finder lent to StarDist, on
   its sample slices each in its own intensity range; its first scale only), the slices linked
   (``volume.link_slices``) and instances below ``min_voxels_for_diameter(D)`` of the true D removed (the
   generalist's are merged into their neighbours); and at the auto scale on every xy, xz and yz slice, the three
   views fused (``volume.fuse_views``, the same ``min_voxels``: ``stardist@auto_fused``, as ``tools/segment.py``
   fuses the generalist's views); scored with ``evaluation.compare_methods`` (3D F1@0.5, 2D F1@0.5 pooled over xy
   slices, ...). The generalist's rows of the same volumes are ``bench_zero_shot.py``'s (BENCHMARKS.md).
4. **Real slices** (``../shared/data/real/segmentpy``, skipped when absent or with ``--no-real``): particle-phase
   Dice (label 0 = NMC) and instance counts of ``stardist@1`` and ``stardist@auto`` (the generalist's per-slice
   estimate, its first scale only).

Output: JSON (``--out``: run record, training record, rows, means) and a printed table. Times per row:
``seconds`` (wall, with the worker's TensorFlow start-up and model load at each call), ``model_seconds`` (StarDist's
prediction inside the worker, plus linking or fusing: what a resident StarDist would take) and, at the auto scale,
``scale_seconds`` (our scale finder, run with the generalist, not counted in the other two; the generalist's own
``seconds`` in ``bench_zero_shot.py`` include it).
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import tempfile
import time

import numpy as np

from libnet_mmdet.apis import estimate_scale, generalist_files, init_segmenter
from libnet_mmdet.evaluation import compare_methods, foreground_dice
from libnet_mmdet.io import InputError, check_output_file, write_json
from libnet_mmdet.io.images import intensity_range, normalize_intensity
from libnet_mmdet.synth import PRESETS
from libnet_mmdet.volume import fuse_views, link_slices, min_voxels_for_diameter, remove_small
from bench_zero_shot import (FIRST_SEED, REAL_SLICES, VOXEL_SIZE_NM,  # noqa: E402 (benchmarks/ is sys.path[0])
                             make_volume)
from real_slices import particle_slices  # noqa: E402
from run_record import finish_record, run_record  # noqa: E402

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
WORKER = osp.join(REPO_ROOT, 'benchmarks', 'stardist_worker.py')
PATCH_HW = (256, 256)  # the generalist's crop size (CPU-tiny config)
VALIDATION_SEED = 7000  # the generalist's validation volumes (BENCHMARKS.md)
VALIDATION_SLICES = 4  # xy slices per validation cell, evenly spaced
SAMPLE_SEED = 0
METHODS = ('stardist@1', 'stardist@auto', 'stardist@auto_fused')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_common_args(parser, 'stardist', epochs=60, steps=100, batch=4)
    parser.add_argument('--samples', type=int, default=2000, help='training samples drawn from the pipeline')
    parser.add_argument('--real', action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    if args.samples < 20:
        parser.error('--samples must be >= 20')
    check_args(parser, args, dict(samples=args.samples - max(1, args.samples // 10), epochs=args.epochs,
                                  steps_per_epoch=args.steps, **validation_cells(args)))
    return args


def add_common_args(parser, name, epochs, steps, batch):
    """The arguments of both StarDist benchmarks; ``name``: the model folder's and the output's (``models/<name>``,
    ``benchmarks/results/<name>.json``)."""
    parser.add_argument('--stardist-python', default=osp.join('.venv-stardist', 'bin', 'python'),
                        help='python of the environment with StarDist and TensorFlow')
    parser.add_argument('--model-dir', default=osp.join('models', name),
                        help='where the StarDist model is written (reused when it exists)')
    parser.add_argument('--generalist', help='folder with config.py + model.pth (default: models/generalist)')
    parser.add_argument('--epochs', type=int, default=epochs)
    parser.add_argument('--steps', type=int, default=steps, help=f'steps per epoch (batch {batch})')
    parser.add_argument('--presets', nargs='+', choices=sorted(PRESETS), default=['clean', 'typical', 'hard'])
    parser.add_argument('--diameters', nargs='+', type=float, default=[12.0, 24.0, 48.0])
    parser.add_argument('--seeds', nargs='+', type=int, default=[5000])
    parser.add_argument('--out', default=osp.join('benchmarks', 'results', f'{name}.json'))


def validation_cells(args):
    """The cells whose validation images chose the thresholds (recorded in ``train.json``, checked on reuse)."""
    return dict(validation_presets=list(args.presets), validation_diameters=[float(d) for d in args.diameters])


def check_args(parser, args, trained):
    """The checks both StarDist benchmarks make of their arguments before anything runs (``parser.error`` on the
    first that fails): the StarDist environment, the training length, the seeds, the diameters, a finished training
    in ``--model-dir`` made with settings other than ``trained`` (its ``train.json`` fields), ``--out``, the
    generalist."""
    if not osp.isfile(args.stardist_python):
        parser.error(f'--stardist-python {args.stardist_python}: not found (benchmarks/requirements-stardist.txt says '
                     'how to make that environment)')
    if args.epochs < 1 or args.steps < 1:
        parser.error('--epochs and --steps must be >= 1')
    if VALIDATION_SEED in args.seeds or min(args.seeds) < FIRST_SEED:
        parser.error(f'--seeds: {VALIDATION_SEED} holds the validation volumes, those below {FIRST_SEED} the '
                     f'training corpus; got {args.seeds}')
    if min(args.diameters) <= 0:
        parser.error('--diameters must be > 0 px')
    if osp.exists(args.model_dir) and not osp.isdir(args.model_dir):
        parser.error(f'--model-dir {args.model_dir}: not a folder')
    record_path = training_record_path(args.model_dir)
    if osp.isfile(record_path):  # a finished training is reused: it must be the one asked for
        with open(record_path) as f:
            done = json.load(f)
        if any(done.get(key) != value for key, value in trained.items()):
            parser.error(f'--model-dir {args.model_dir}: holds a StarDist trained with other settings ({record_path}); '
                         'give another --model-dir')
    try:
        check_output_file(args.out, overwrite=True)
    except InputError as error:
        parser.error(str(error))
    if generalist_files(args.generalist) is None:
        parser.error('the generalist is not built (`make model`): it supplies the training data and the scale')


def training_record_path(model_dir):
    """``<model_dir>/stardist/train.json``, written last by the worker: present only after a finished training."""
    return osp.join(model_dir, 'stardist', 'train.json')


def labels_from_masks(masks_nhw):
    """(H, W) int32 instance labels 1..N from (N, H, W) boolean masks; where masks overlap the later one wins."""
    labels = np.zeros(masks_nhw.shape[1:], np.int32)
    for index, mask in enumerate(masks_nhw, start=1):
        labels[mask] = index
    return labels


def pad_to(array_hw, shape_hw):
    """``array_hw`` zero-padded at its bottom and right to at least ``shape_hw``."""
    pad = [(0, max(0, want - have)) for have, want in zip(array_hw.shape, shape_hw)]
    return np.pad(array_hw, pad)


def training_samples(config_path, count, seed=SAMPLE_SEED):
    """``count`` draws of the generalist config's training pipeline: (N, 256, 256) float32 images in [0, 1] and
    int32 labels (module docstring, step 1)."""
    from mmengine.config import Config
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules

    register_all_modules()  # the config's transforms are looked up in mmdet's scope
    config = Config.fromfile(config_path)
    dataset = DATASETS.build(config.train_dataloader.dataset)
    rng = np.random.default_rng(seed)
    np.random.seed(seed)  # the pipeline's own random draws
    images, labels = [], []
    while len(images) < count:
        sample = dataset[int(rng.integers(len(dataset)))]
        masks = sample['data_samples'].gt_instances.masks.to_ndarray().astype(bool)
        if len(masks) == 0:
            continue
        image = sample['inputs'][1].numpy().astype(np.float32) / 255.0  # the slice's own channel (2.5D configs)
        images.append(pad_to(image, PATCH_HW)[:PATCH_HW[0], :PATCH_HW[1]])
        labels.append(pad_to(labels_from_masks(masks), PATCH_HW)[:PATCH_HW[0], :PATCH_HW[1]])
    return np.stack(images), np.stack(labels)


def normalized_volume(image_zyx):
    """(Z, Y, X) float32 in [0, 1]: one percentile range for the whole volume (as the inference API maps it)."""
    value_range = intensity_range(image_zyx[:, ::2, ::2])
    return np.stack([normalize_intensity(s, value_range=value_range) for s in image_zyx]) / 255.0


def auto_scale(generalist, image_zyx):
    """``(scale, seconds)``: the generalist's ``scale='auto'`` first scale for a volume, from three xy slices."""
    depth = image_zyx.shape[0]
    samples = [image_zyx[z] for z in sorted({int(depth * q) for q in (0.25, 0.5, 0.75)})]
    started = time.time()
    scale, _ = estimate_scale(generalist, samples)
    return scale, round(time.time() - started, 1)


def validation_slices(presets, diameters):
    """Validation xy slices (list of (H, W) float32 in [0, 1], list of int32 labels) of seed 7000's cells."""
    images, labels = [], []
    for preset in presets:
        for diameter in diameters:
            volume = make_volume(preset, diameter, VALIDATION_SEED)
            image = normalized_volume(volume.image_zyx)
            depth = image.shape[0]
            for z in np.linspace(depth * 0.2, depth * 0.8, VALIDATION_SLICES).round().astype(int):
                images.append(image[z].astype(np.float32))
                labels.append(volume.labels_zyx[z].astype(np.int32))
    return images, labels


def save_listed(path, images, labels=None, scales=None):
    """``image_<i>`` (and ``labels_<i>`` / ``scale_<i>``) arrays in one ``.npz`` file, as the worker reads them."""
    arrays = {f'image_{i}': image for i, image in enumerate(images)}
    arrays.update({f'labels_{i}': label for i, label in enumerate(labels or ())})
    arrays.update({f'scale_{i}': np.float32(scale) for i, scale in enumerate(scales or ())})
    np.savez(path, **arrays)


def run_worker(python, *args):
    command = [python, WORKER, *args]
    print('$', ' '.join(command), flush=True)
    subprocess.run(command, check=True)


def train_stardist(args, config_path):
    """Make the training and validation data and train StarDist into ``args.model_dir`` (step 1-2)."""
    started = time.time()
    images, labels = training_samples(config_path, args.samples)
    val_images, val_labels = validation_slices(args.presets, args.diameters)
    print(f'{len(images)} training samples, {len(val_images)} validation slices ({time.time() - started:.0f} s)',
          flush=True)
    with tempfile.TemporaryDirectory(prefix='bench_stardist_') as tmp:
        samples, validation = osp.join(tmp, 'samples.npz'), osp.join(tmp, 'validation.npz')
        np.savez(samples, images=images, labels=labels)
        save_listed(validation, val_images, val_labels)
        run_worker(args.stardist_python, 'train', samples, validation, args.model_dir,
                   '--epochs', str(args.epochs), '--steps', str(args.steps),
                   '--record', json.dumps(validation_cells(args)))


def predict(args, images, scales):
    """``(labels, seconds)``: StarDist's labels of each (H, W) image at its scale (one worker call) and the
    worker's time predicting them (without TensorFlow's start-up and the model load)."""
    with tempfile.TemporaryDirectory(prefix='bench_stardist_') as tmp:
        inputs, outputs = osp.join(tmp, 'images.npz'), osp.join(tmp, 'labels.npz')
        save_listed(inputs, images, scales=scales)
        run_worker(args.stardist_python, 'predict', args.model_dir, inputs, outputs)
        with np.load(outputs) as data:
            return [data[f'labels_{i}'] for i in range(len(images))], float(data['predict_seconds'])


def view_labels(args, image_zyx, scale):
    """``(labels_xz, labels_yz, seconds)``: StarDist's 2D labels of every xz and every yz slice of ``image_zyx`` at
    ``scale``, as the (Z, Y, X) arrays ``volume.fuse_views`` takes (``labels_xz[:, y, :]`` holds xz slice y,
    ``labels_yz[:, :, x]`` yz slice x), and the worker's time predicting them (:func:`predict`)."""
    depth, height, width = image_zyx.shape
    labels, seconds = predict(args, [image_zyx[:, y, :] for y in range(height)]
                              + [image_zyx[:, :, x] for x in range(width)], [scale] * (height + width))
    return np.stack(labels[:height], axis=1), np.stack(labels[height:], axis=2), seconds


def held_out_volumes(args):
    """``(preset, diameter, seed, volume)`` of each held-out volume the arguments name (``make_volume``)."""
    for preset in args.presets:
        for diameter in args.diameters:
            for seed in args.seeds:
                yield preset, diameter, seed, make_volume(preset, diameter, seed)


def rounded(scores):
    """One method's scores (a row of ``compare_methods``) as JSON numbers: 4 decimals, None where undefined."""
    return {key: None if value is None or value != value else round(float(value), 4) for key, value in scores.items()}


def synthetic_rows(args, generalist):
    rows = []
    for preset, diameter, seed, volume in held_out_volumes(args):
        depth = volume.image_zyx.shape[0]
        auto, scale_seconds = auto_scale(generalist, volume.image_zyx)
        image = normalized_volume(volume.image_zyx)
        min_voxels = min_voxels_for_diameter(diameter)
        predictions, seconds, net, scales, xy_labels = {}, {}, {}, {}, {}
        for method, scale in (('stardist@1', 1.0), ('stardist@auto', auto)):
            started = time.time()
            labels, predict_seconds = predict(args, list(image), [scale] * depth)
            xy_labels[method] = np.stack(labels)
            linked = time.time()
            predictions[method] = remove_small(link_slices(xy_labels[method]), min_voxels)
            seconds[method], scales[method] = time.time() - started, scale
            net[method] = predict_seconds + time.time() - linked
        started = time.time()
        xz_labels, yz_labels, predict_seconds = view_labels(args, image, auto)
        fused = time.time()
        predictions['stardist@auto_fused'] = fuse_views(xy_labels['stardist@auto'], xz_labels, yz_labels,
                                                        min_voxels=min_voxels)
        seconds['stardist@auto_fused'] = seconds['stardist@auto'] + time.time() - started
        net['stardist@auto_fused'] = net['stardist@auto'] + predict_seconds + time.time() - fused
        scales['stardist@auto_fused'] = auto
        table = compare_methods(volume.labels_zyx, predictions, VOXEL_SIZE_NM)
        for method, scores in table.iterrows():
            row = dict(preset=preset, diameter_px=diameter, seed=seed, method=method,
                       scale=scales[method], min_voxels=min_voxels,
                       seconds=round(seconds[method], 1), model_seconds=round(net[method], 1),
                       scale_seconds=None if method == 'stardist@1' else scale_seconds,
                       **rounded(scores))
            rows.append(row)
            print(f"{preset:8s} {diameter:4g} {seed:5d} {method:19s} {row['scale']:6.3g} "
                  f"3D {row['f1_50']:.3f} 2D {row['f1_50_2d']:.3f} count {row['count_error']:+g}",
                  flush=True)
    return rows


def real_rows(args, generalist):
    names, images, truths, autos = [], [], [], []
    for name, image, truth in particle_slices(REAL_SLICES):
        names.append(name)
        images.append(normalize_intensity(image) / 255.0)
        truths.append(truth)
        autos.append(estimate_scale(generalist, image)[0])
    at_one, _ = predict(args, images, [1.0] * len(images))
    at_auto, _ = predict(args, images, autos)
    rows = []
    for name, truth, auto, one, scaled in zip(names, truths, autos, at_one, at_auto):
        row = {'slice': name, 'scale_auto': auto,
               'dice_stardist@1': round(foreground_dice(one, truth), 4), 'instances_stardist@1': int(one.max()),
               'dice_stardist@auto': round(foreground_dice(scaled, truth), 4),
               'instances_stardist@auto': int(scaled.max())}
        rows.append(row)
        print(row, flush=True)
    return rows


def mean_of(rows, key, **match):
    values = [row[key] for row in rows if all(row[k] == v for k, v in match.items()) and row[key] is not None]
    return round(float(np.mean(values)), 4) if values else None


def main():
    args = parse_args()
    record = run_record()
    config_path, checkpoint = generalist_files(args.generalist)
    record_path = training_record_path(args.model_dir)
    if not osp.isfile(record_path):
        train_stardist(args, config_path)
    with open(record_path) as f:
        training = json.load(f)
    generalist = init_segmenter(config_path, checkpoint, device='cpu')
    rows = synthetic_rows(args, generalist)
    means = [dict(preset=p, diameter_px=d, method=m, f1_50=mean_of(rows, 'f1_50', preset=p, diameter_px=d, method=m),
                  f1_50_2d=mean_of(rows, 'f1_50_2d', preset=p, diameter_px=d, method=m))
             for p in args.presets for d in args.diameters for m in METHODS]
    real = real_rows(args, generalist) if args.real and osp.isdir(REAL_SLICES) else []
    result = dict(run=finish_record(record), training=training, model_dir=args.model_dir, rows=rows, means=means,
                  real=real)
    if real:
        result['real_means'] = {key: mean_of(real, key) for key in real[0] if key.startswith('dice_')}
    write_json(args.out, result)
    print(json.dumps(dict(means=means, real_means=result.get('real_means')), indent=1))


if __name__ == '__main__':
    sys.exit(main())
