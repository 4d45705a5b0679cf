"""StarDist 3D trained on the generalist's corpus, scored zero-shot on the volumes the generalist is scored on.

Usage:
    python benchmarks/bench_stardist3d.py [--stardist-python .venv-stardist/bin/python]
                                          [--model-dir models/stardist3d] [--generalist models/generalist]
                                          [--epochs 40] [--steps 50] [--presets clean typical hard]
                                          [--diameters 12 24 48] [--seeds 5000]
                                          [--out benchmarks/results/stardist3d.json]

The 2D comparison (``bench_stardist.py``) runs StarDist slice by slice; this one gives StarDist its own 3D model,
which needs no linking or view fusion. StarDist runs in its own environment (``benchmarks/stardist_worker.py
--dims 3``; ``benchmarks/requirements-stardist.txt``).

1. **Training volumes** (skipped when ``<model-dir>/stardist/train.json`` records a finished training): the
   generalist's corpus (its config's training ``data_root``, ``corpus.json`` giving each volume's mean particle
   diameter D), each volume in one intensity range (as the inference API maps a volume) and resized in 3D (image
   linearly, labels by nearest neighbour) so that its particles are a seeded draw from the band ``scale='auto'``
   brings a user's particles into (24-36 px for the generalist's 12-48 px), at least 32 slices and 96 px (StarDist's
   patch). So StarDist learns the one size range it is shown at test, a narrower task than the generalist's 12-48
   px. The last tenth of the volumes is its validation loss.
2. **Training**: StarDist's 3D example configuration for isotropic data (the worker's docstring), ``--epochs`` x
   ``--steps`` steps of batch 2. Its probability and NMS thresholds are chosen by ``optimize_thresholds`` on the
   **validation** volumes (seed 7000, every preset x diameter cell; resized by the generalist's auto scale as the
   test volumes are, then the middle (48, 128, 128) or less of each); nothing is chosen on the test volumes.
3. **Test** (held out, ``--seeds``, default 5000: ``bench_zero_shot.make_volume``'s volumes): each volume in one
   intensity range, resized by the scale the generalist's ``scale='auto'`` estimates on three xy slices (its first
   scale; StarDist resizes the volume and its labels back), instances below ``min_voxels_for_diameter`` of the true
   D removed, scored with ``evaluation.compare_methods`` (3D F1@0.5, 2D F1@0.5 pooled over xy slices, ...). The
   generalist's rows of the same volumes are ``bench_zero_shot.py``'s.

Output: JSON (``--out``: run record, training record, rows, means) and a printed table; ``model_seconds`` per row is
StarDist's prediction inside the worker (TensorFlow's start-up and the model load apart), ``scale_seconds`` our
scale finder's.
"""
import argparse
import json
import os.path as osp
import sys
import tempfile
import time

import numpy as np
from scipy import ndimage as ndi

from libnet_mmdet.apis import generalist_files, init_segmenter, trained_diameter_range
from libnet_mmdet.apis.inference import auto_target_band
from libnet_mmdet.evaluation import compare_methods
from libnet_mmdet.io import read_volume, write_json
from libnet_mmdet.volume import min_voxels_for_diameter, remove_small
from bench_stardist import (VALIDATION_SEED, add_common_args, auto_scale, check_args, mean_of,  # noqa: E402
                            held_out_volumes, normalized_volume, rounded, run_worker, save_listed,
                            training_record_path, validation_cells)
from bench_zero_shot import VOXEL_SIZE_NM, make_volume  # noqa: E402 (benchmarks/ is sys.path[0])
from run_record import finish_record, run_record  # noqa: E402
from stardist_worker import PATCH_ZYX  # noqa: E402 (numpy only: StarDist itself is imported in the worker)

VALIDATION_CROP_ZYX = (48, 128, 128)  # optimize_thresholds' volumes: their middle, to bound its time
SAMPLE_SEED = 0
METHOD = 'stardist3d@auto'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_common_args(parser, 'stardist3d', epochs=40, steps=50, batch=2)
    args = parser.parse_args(argv)
    check_args(parser, args, dict(dims=3, epochs=args.epochs, steps_per_epoch=args.steps, **validation_cells(args)))
    return args


def resized(image_zyx, labels_zyx, factor):
    """``image_zyx`` (float32, linear) and ``labels_zyx`` (int32, nearest neighbour) resized by ``factor``."""
    return (ndi.zoom(image_zyx, factor, order=1).astype(np.float32),
            ndi.zoom(labels_zyx.astype(np.int32), factor, order=0))


def target_band(generalist):
    """(low, high) px: the particle diameters ``scale='auto'`` brings a volume's particles into for the generalist
    (``apis.inference.auto_target_band`` of its ``trained_diameter_range``)."""
    return auto_target_band(*trained_diameter_range(generalist))


def training_volumes(generalist, seed=SAMPLE_SEED):
    """The corpus volumes resized into the target band (module docstring, step 1): lists of (Z, Y, X) float32
    images in [0, 1] and int32 labels, and the per-volume record (name, mean diameter, factor)."""
    corpus = generalist.cfg.train_dataloader.dataset.data_root
    with open(osp.join(corpus, 'corpus.json')) as f:
        listed = json.load(f)['volumes']
    low, high = target_band(generalist)
    rng = np.random.default_rng(seed)
    images, labels, record = [], [], []
    for entry in listed:
        image = normalized_volume(read_volume(osp.join(corpus, 'images', entry['name'] + '.tif'))[0])
        truth = read_volume(osp.join(corpus, 'labels', entry['name'] + '.tif'))[0]
        diameter = entry['params']['mean_diameter_vox']
        factor = max(rng.uniform(low, high) / diameter, *(p / s for p, s in zip(PATCH_ZYX, image.shape)))
        image, truth = resized(image, truth, factor)
        images.append(image)
        labels.append(truth)
        record.append(dict(name=entry['name'], diameter_px=round(diameter, 2), factor=round(factor, 4),
                           shape_zyx=list(image.shape)))
    return images, labels, record


def middle(array_zyx, shape_zyx):
    """The middle ``shape_zyx`` (or less, where ``array_zyx`` is smaller) of ``array_zyx``."""
    start = [max(0, (have - want) // 2) for have, want in zip(array_zyx.shape, shape_zyx)]
    return array_zyx[tuple(slice(s, s + want) for s, want in zip(start, shape_zyx))]


def validation_volumes(generalist, presets, diameters):
    """The validation volumes (seed 7000) resized by the auto scale and cropped (module docstring, step 2)."""
    images, labels = [], []
    for preset in presets:
        for diameter in diameters:
            volume = make_volume(preset, diameter, VALIDATION_SEED)
            scale, _ = auto_scale(generalist, volume.image_zyx)
            image, truth = resized(normalized_volume(volume.image_zyx), volume.labels_zyx, scale)
            images.append(middle(image, VALIDATION_CROP_ZYX))
            labels.append(middle(truth, VALIDATION_CROP_ZYX))
    return images, labels


def train_stardist(args, generalist):
    """Make the training and validation volumes and train StarDist 3D into ``args.model_dir`` (steps 1-2)."""
    started = time.time()
    images, labels, record = training_volumes(generalist)
    val_images, val_labels = validation_volumes(generalist, args.presets, args.diameters)
    print(f'{len(images)} training volumes, {len(val_images)} validation volumes ({time.time() - started:.0f} s)',
          flush=True)
    with tempfile.TemporaryDirectory(prefix='bench_stardist3d_') as tmp:
        samples, validation = osp.join(tmp, 'samples.npz'), osp.join(tmp, 'validation.npz')
        save_listed(samples, images, labels)
        save_listed(validation, val_images, val_labels)
        run_worker(args.stardist_python, 'train', samples, validation, args.model_dir, '--dims', '3',
                   '--epochs', str(args.epochs), '--steps', str(args.steps),
                   '--record', json.dumps(validation_cells(args)))
    return record


def predict(args, image_zyx, scale):
    """``(labels_zyx, seconds)``: StarDist 3D's labels of one volume at ``scale`` and its prediction time."""
    with tempfile.TemporaryDirectory(prefix='bench_stardist3d_') as tmp:
        inputs, outputs = osp.join(tmp, 'images.npz'), osp.join(tmp, 'labels.npz')
        save_listed(inputs, [image_zyx], scales=[scale])
        run_worker(args.stardist_python, 'predict', args.model_dir, inputs, outputs, '--dims', '3')
        with np.load(outputs) as data:
            return data['labels_0'], float(data['predict_seconds'])


def synthetic_rows(args, generalist):
    rows = []
    for preset, diameter, seed, volume in held_out_volumes(args):
        scale, scale_seconds = auto_scale(generalist, volume.image_zyx)
        labels, seconds = predict(args, normalized_volume(volume.image_zyx), scale)
        if labels.shape != volume.labels_zyx.shape:
            raise RuntimeError(f'StarDist returned {labels.shape} for a {volume.labels_zyx.shape} volume')
        min_voxels = min_voxels_for_diameter(diameter)
        scores = compare_methods(volume.labels_zyx, {METHOD: remove_small(labels, min_voxels)},
                                 VOXEL_SIZE_NM).loc[METHOD]
        row = dict(preset=preset, diameter_px=diameter, seed=seed, method=METHOD, scale=scale,
                   min_voxels=min_voxels, model_seconds=round(seconds, 1), scale_seconds=scale_seconds,
                   **rounded(scores))
        rows.append(row)
        print(f"{preset:8s} {diameter:4g} {seed:5d} {METHOD} {scale:6.3g} 3D {row['f1_50']:.3f} "
              f"2D {row['f1_50_2d']:.3f} count {row['count_error']:+g} ({seconds:.0f} s)", flush=True)
    return rows


def main():
    args = parse_args()
    record = run_record()
    config_path, checkpoint = generalist_files(args.generalist)
    generalist = init_segmenter(config_path, checkpoint, device='cpu')
    record_path = training_record_path(args.model_dir)
    volumes = train_stardist(args, generalist) if not osp.isfile(record_path) else None
    with open(record_path) as f:
        training = json.load(f)
    rows = synthetic_rows(args, generalist)
    means = [dict(preset=p, diameter_px=d, method=METHOD, f1_50=mean_of(rows, 'f1_50', preset=p, diameter_px=d),
                  f1_50_2d=mean_of(rows, 'f1_50_2d', preset=p, diameter_px=d))
             for p in args.presets for d in args.diameters]
    write_json(args.out, dict(run=finish_record(record), training=training, training_volumes=volumes,
                              model_dir=args.model_dir, band_px=target_band(generalist), rows=rows, means=means))
    print(json.dumps(means, indent=1))


if __name__ == '__main__':
    sys.exit(main())
