"""StarDist side of ``bench_stardist.py``: runs in its own environment (TensorFlow + StarDist, no MMDetection).

Usage (``bench_stardist.py`` calls it; ``benchmarks/requirements-stardist.txt`` says how the environment
is made):
    .venv-stardist/bin/python benchmarks/stardist_worker.py train SAMPLES.npz VALIDATION.npz MODEL_DIR
                                                             [--epochs 60] [--steps 100] [--seed 0]
    .venv-stardist/bin/python benchmarks/stardist_worker.py predict MODEL_DIR IMAGES.npz OUT.npz

``SAMPLES.npz``: ``images`` (N, H, W) float32 in [0, 1] and ``labels`` (N, H, W) int32 instance labels
(0 = background); ``VALIDATION.npz``: ``image_<i>`` / ``labels_<i>`` of any sizes. ``train`` fits a
``StarDist2D`` (the StarDist 2D example's configuration: 32 rays, grid 2, U-Net of depth 3 and 32 filters; flips
and 90-degree turns as augmentation; the last tenth of the samples for its validation loss), then picks its
probability and NMS thresholds with StarDist's own ``optimize_thresholds`` on the validation slices, and writes
``MODEL_DIR/stardist`` (weights, config, thresholds, ``train.json``: epochs, steps, seconds).
``predict``: ``IMAGES.npz`` holds ``image_<i>`` (H, W) float32 in [0, 1] and ``scale_<i>`` (float); each image is
segmented with ``predict_instances(..., scale=scale)`` (StarDist resizes the image and its labels back) and
``OUT.npz`` gets ``labels_<i>`` (H, W) int32 and ``predict_seconds`` (the loop's time, without TensorFlow's start-up
and the model load).
"""
import argparse
import json
import os
import os.path as osp
import time

import numpy as np


def augment_patch(image, labels):
    """A random flip and 90-degree turn of one (H, W) training patch and its labels."""
    turns = np.random.randint(4)
    image, labels = np.rot90(image, turns), np.rot90(labels, turns)
    if np.random.rand() < 0.5:
        image, labels = image[:, ::-1], labels[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(labels)


def _load_listed(path):
    """``image_<i>`` / ``labels_<i>`` arrays of ``path`` as two lists."""
    with np.load(path) as data:
        count = sum(key.startswith('image_') for key in data.files)
        return ([data[f'image_{i}'].astype(np.float32) for i in range(count)],
                [data[f'labels_{i}'].astype(np.int32) for i in range(count)])


def train(args):
    from stardist.models import Config2D, StarDist2D
    import tensorflow as tf

    np.random.seed(args.seed)
    tf.random.set_seed(args.seed)
    with np.load(args.samples) as data:
        images, labels = list(data['images'].astype(np.float32)), list(data['labels'].astype(np.int32))
    held = max(1, len(images) // 10)  # StarDist's validation loss: the last tenth of the samples
    images, labels, loss_images, loss_labels = images[:-held], labels[:-held], images[-held:], labels[-held:]
    val_images, val_labels = _load_listed(args.validation)
    patch = images[0].shape
    config = Config2D(n_rays=32, grid=(2, 2), n_channel_in=1, train_patch_size=patch, train_batch_size=4,
                      train_epochs=args.epochs, train_steps_per_epoch=args.steps, train_tensorboard=False)
    model = StarDist2D(config, name='stardist', basedir=args.model_dir)
    started = time.time()
    model.train(images, labels, validation_data=(loss_images, loss_labels), augmenter=augment_patch,
                epochs=args.epochs, steps_per_epoch=args.steps)
    train_seconds = time.time() - started
    started = time.time()
    thresholds = model.optimize_thresholds(val_images, val_labels)
    record = dict(samples=len(images), patch_hw=list(patch), validation_slices=len(val_images),
                  epochs=args.epochs, steps_per_epoch=args.steps, batch_size=4, seed=args.seed,
                  train_seconds=round(train_seconds, 1), threshold_seconds=round(time.time() - started, 1),
                  thresholds=thresholds)
    with open(osp.join(args.model_dir, 'stardist', 'train.json'), 'w') as f:
        json.dump(record, f, indent=1)
    print(json.dumps(record))


def predict(args):
    from stardist.models import StarDist2D

    model = StarDist2D(None, name='stardist', basedir=args.model_dir)
    out = {}
    with np.load(args.images) as data:
        count = sum(key.startswith('image_') for key in data.files)
        started = time.time()
        for i in range(count):
            labels, _ = model.predict_instances(data[f'image_{i}'], scale=float(data[f'scale_{i}']),
                                                show_tile_progress=False, verbose=False)
            out[f'labels_{i}'] = labels.astype(np.int32)
        out['predict_seconds'] = np.float64(time.time() - started)  # TensorFlow's start-up and the model load apart
    tmp = args.out + '.tmp.npz'
    np.savez_compressed(tmp, **out)
    os.replace(tmp, args.out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    fit = commands.add_parser('train')
    fit.add_argument('samples')
    fit.add_argument('validation')
    fit.add_argument('model_dir')
    fit.add_argument('--epochs', type=int, default=60)
    fit.add_argument('--steps', type=int, default=100)
    fit.add_argument('--seed', type=int, default=0)
    run = commands.add_parser('predict')
    run.add_argument('model_dir')
    run.add_argument('images')
    run.add_argument('out')
    args = parser.parse_args()
    train(args) if args.command == 'train' else predict(args)


if __name__ == '__main__':
    main()
