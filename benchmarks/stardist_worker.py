"""StarDist side of the StarDist benchmarks: runs in its own environment (TensorFlow + StarDist, no MMDetection).

Usage (``bench_stardist.py`` and ``bench_stardist3d.py`` call it; ``benchmarks/requirements-stardist.txt`` says how
the environment is made):
    .venv-stardist/bin/python benchmarks/stardist_worker.py train SAMPLES.npz VALIDATION.npz MODEL_DIR
                                                             [--dims 2] [--epochs 60] [--steps 100] [--seed 0]
    .venv-stardist/bin/python benchmarks/stardist_worker.py predict MODEL_DIR IMAGES.npz OUT.npz [--dims 2]

``SAMPLES.npz``: ``images`` (N, H, W) float32 in [0, 1] and ``labels`` (N, H, W) int32 instance labels
(0 = background), or (``--dims 3``) ``image_<i>`` / ``labels_<i>`` (Z, Y, X) volumes of any sizes;
``VALIDATION.npz``: ``image_<i>`` / ``labels_<i>`` of any sizes. ``train`` fits a ``StarDist2D`` (the StarDist 2D
example's configuration: 32 rays, grid 2, U-Net of depth 3 and 32 filters; flips and 90-degree turns as
augmentation) or with ``--dims 3`` a ``StarDist3D`` (as the StarDist 3D example configures isotropic data: 96 rays
on a golden spiral, grid 2, its default ResNet backbone, batch 2; patches of (32, 96, 96), as thick as the thinnest
resized corpus volumes allow; flips of every axis and 90-degree turns in y-x), using the last tenth of the samples
for its validation loss, then picks its probability and NMS thresholds with StarDist's own ``optimize_thresholds``
on the validation images, and writes ``MODEL_DIR/stardist`` (weights, config, thresholds, ``train.json``: dims,
epochs, steps, seconds).
``predict``: ``IMAGES.npz`` holds ``image_<i>`` (H, W) or (Z, Y, X) float32 in [0, 1] and ``scale_<i>`` (float);
each image is segmented with ``predict_instances(..., scale=scale)`` (StarDist resizes the image and its labels
back) and ``OUT.npz`` gets ``labels_<i>`` int32 of the image's shape and ``predict_seconds`` (the loop's time,
without TensorFlow's start-up and the model load).
"""
import argparse
import json
import os
import os.path as osp
import time

import numpy as np


PATCH_ZYX = (32, 96, 96)  # StarDist3D's training patch: the corpus volumes are 32 slices or more once resized


def augment_patch(image, labels):
    """A random 90-degree turn in the last two axes and a random flip of each other axis of one (H, W) or (Z, Y, X)
    training patch and its labels."""
    turns = np.random.randint(4)
    image, labels = np.rot90(image, turns, axes=(-2, -1)), np.rot90(labels, turns, axes=(-2, -1))
    for axis in range(image.ndim - 1):
        if np.random.rand() < 0.5:
            image, labels = np.flip(image, axis), np.flip(labels, axis)
    return np.ascontiguousarray(image), np.ascontiguousarray(labels)


def _load_listed(path):
    """``image_<i>`` / ``labels_<i>`` arrays of ``path`` as two lists."""
    with np.load(path) as data:
        count = sum(key.startswith('image_') for key in data.files)
        return ([data[f'image_{i}'].astype(np.float32) for i in range(count)],
                [data[f'labels_{i}'].astype(np.int32) for i in range(count)])


def model_class(dims):
    """StarDist's model class for ``dims``-D images."""
    from stardist.models import StarDist2D, StarDist3D

    return StarDist2D if dims == 2 else StarDist3D


def make_config(dims, patch, epochs, steps):
    """StarDist's example configuration for ``dims``-D images (module docstring)."""
    if dims == 2:
        from stardist.models import Config2D

        return Config2D(n_rays=32, grid=(2, 2), n_channel_in=1, train_patch_size=patch, train_batch_size=4,
                        train_epochs=epochs, train_steps_per_epoch=steps, train_tensorboard=False)
    from stardist import Rays_GoldenSpiral
    from stardist.models import Config3D

    return Config3D(rays=Rays_GoldenSpiral(96), grid=(2, 2, 2), n_channel_in=1, train_patch_size=patch,
                    train_batch_size=2, train_epochs=epochs, train_steps_per_epoch=steps, train_tensorboard=False)


def train(args):
    import tensorflow as tf

    np.random.seed(args.seed)
    tf.random.set_seed(args.seed)
    if args.dims == 2:
        with np.load(args.samples) as data:
            images, labels = list(data['images'].astype(np.float32)), list(data['labels'].astype(np.int32))
        patch = images[0].shape
    else:
        images, labels = _load_listed(args.samples)
        patch = PATCH_ZYX
    held = max(1, len(images) // 10)  # StarDist's validation loss: the last tenth of the samples
    images, labels, loss_images, loss_labels = images[:-held], labels[:-held], images[-held:], labels[-held:]
    val_images, val_labels = _load_listed(args.validation)
    config = make_config(args.dims, patch, args.epochs, args.steps)
    model = model_class(args.dims)(config, name='stardist', basedir=args.model_dir)
    started = time.time()
    model.train(images, labels, validation_data=(loss_images, loss_labels), augmenter=augment_patch,
                epochs=args.epochs, steps_per_epoch=args.steps)
    train_seconds = time.time() - started
    started = time.time()
    thresholds = model.optimize_thresholds(val_images, val_labels)
    record = dict(dims=args.dims, samples=len(images), patch=list(patch), validation_images=len(val_images),
                  epochs=args.epochs, steps_per_epoch=args.steps, batch_size=config.train_batch_size, seed=args.seed,
                  train_seconds=round(train_seconds, 1), threshold_seconds=round(time.time() - started, 1),
                  thresholds=thresholds, **json.loads(args.record))
    path = osp.join(args.model_dir, 'stardist', 'train.json')
    with open(path + '.partial', 'w') as f:  # whole or absent: its presence marks a finished training
        json.dump(record, f, indent=1)
    os.replace(path + '.partial', path)
    print(json.dumps(record))


def predict(args):
    model = model_class(args.dims)(None, name='stardist', basedir=args.model_dir)
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
    fit.add_argument('--dims', type=int, choices=(2, 3), default=2)
    fit.add_argument('--epochs', type=int, default=60)
    fit.add_argument('--steps', type=int, default=100)
    fit.add_argument('--seed', type=int, default=0)
    fit.add_argument('--record', default='{}', help='JSON object of facts added to train.json (the validation cells)')
    run = commands.add_parser('predict')
    run.add_argument('model_dir')
    run.add_argument('images')
    run.add_argument('out')
    run.add_argument('--dims', type=int, choices=(2, 3), default=2)
    args = parser.parse_args()
    train(args) if args.command == 'train' else predict(args)


if __name__ == '__main__':
    main()
