"""Benchmark: tomography data input -- building a LabelTiffDataset, reading stack slices, the training pipeline.

Usage:
    python benchmarks/bench_datasets.py                                 # 64x512x512 stack, 512 px crops
    python benchmarks/bench_datasets.py --shape 32 256 256 --crop 256 --out /tmp/datasets.json   # quick run

On a generated (Z, Y, X) uint16 stack of touching balls (written once uncompressed and once zlib-compressed) it
times:

* building ``LabelTiffDataset`` (scan the labels, one exact RLE per instance per slice) for z, y and x slices;
* ``LoadTomoImageFromFile`` reading one slice along z, y and x (uncompressed: memory-mapped; compressed: one page
  for z, a whole-stack decode for the first y/x slice and the per-process cache afterwards); each axis reads its own
  copy of the stack, so that its first slice is a cold read;
* the training pipeline of ``configs/nmc/mask-rcnn_r101_fpn.py`` (load, annotations, crop, rot90, flip, gamma,
  contrast, noise, blur, ring and streak artefacts, pack), its crop size set to ``--crop``, per sample, and each
  transform's share.

Prints a table and writes the numbers as JSON (atomically) to ``benchmarks/results/datasets.json``. Set
``OMP_NUM_THREADS`` to the number of cores to measure on.
"""
import argparse
import os
import platform
import tempfile
import time
from datetime import datetime, timezone

import numpy as np
import tifffile
from mmdet.registry import TRANSFORMS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import libnet_mmdet  # noqa: F401  (registers the datasets and transforms)
from libnet_mmdet.datasets import LabelTiffDataset
from libnet_mmdet.io import write_json
from run_record import finish_record, run_record  # noqa: E402 (benchmarks/ is sys.path[0])

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
R101_CONFIG = os.path.join(REPO_ROOT, 'configs', 'nmc', 'mask-rcnn_r101_fpn.py')
RESULTS = os.path.join(REPO_ROOT, 'benchmarks', 'results', 'datasets.json')


def ball_volume(shape_zyx, radius, seed=0):
    """(Z, Y, X) uint16 labels of balls of ``radius`` voxels packed at random (later balls do not overwrite), and
    a uint16 image (balls bright, Gaussian noise)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape_zyx, np.uint16)
    n_balls = int(0.5 * np.prod(shape_zyx) / (4 / 3 * np.pi * radius ** 3))
    offsets = np.arange(-radius, radius + 1)
    ball = (offsets[:, None, None] ** 2 + offsets[None, :, None] ** 2 + offsets[None, None, :] ** 2) <= radius ** 2
    for label in range(1, n_balls + 1):
        centre = [rng.integers(0, n) for n in shape_zyx]
        box = tuple(slice(max(c - radius, 0), min(c + radius + 1, n)) for c, n in zip(centre, shape_zyx))
        crop = tuple(slice(b.start - (c - radius), b.stop - (c - radius)) for b, c in zip(box, centre))
        region = labels[box]
        region[ball[crop] & (region == 0)] = label
    image = np.where(labels > 0, 40000.0, 15000.0) + rng.normal(0, 3000, shape_zyx)
    return np.clip(image, 0, 65535).astype(np.uint16), labels


def timed(function, repeat=1):
    """(result of the last call, mean seconds per call)."""
    start = time.perf_counter()
    for _ in range(repeat):
        result = function()
    return result, (time.perf_counter() - start) / repeat


def r101_train_pipeline(crop):
    """The training pipeline of the R101 recipe (list of transform config dicts), cropping ``crop`` x ``crop``."""
    pipeline = Config.fromfile(R101_CONFIG).to_dict()['train_pipeline']
    for step in pipeline:
        if step['type'] == 'RandomCrop':
            step['crop_size'] = (crop, crop)
    return pipeline


def bench(shape, radius, crop, samples):
    image, labels = ball_volume(shape, radius)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        image_paths = {}  # (kind, axis): one copy of the stack per axis read
        for kind, compression in (('raw', None), ('zlib', 'zlib')):
            for axis in 'zyx':
                image_paths[kind, axis] = os.path.join(tmp, f'image_{kind}_{axis}.tif')
                tifffile.imwrite(image_paths[kind, axis], image, compression=compression)
        labels_path = os.path.join(tmp, 'labels.tif')
        tifffile.imwrite(labels_path, labels)
        data_prefix = dict(img=image_paths['raw', 'z'], label=labels_path)
        for axis in 'zyx':
            dataset, seconds = timed(lambda: LabelTiffDataset(data_prefix=data_prefix, slice_axes=axis))
            n_instances = sum(len(dataset.get_data_info(i)['instances']) for i in range(len(dataset)))
            rows[f'build LabelTiffDataset, {axis} slices'] = dict(
                seconds=seconds, samples=len(dataset), instances=n_instances,
                us_per_instance=1e6 * seconds / max(n_instances, 1))
        load = TRANSFORMS.build(dict(type='LoadTomoImageFromFile'))
        for kind in ('raw', 'zlib'):
            for axis in 'zyx':
                path = image_paths[kind, axis]
                n = shape['zyx'.index(axis)]
                indices = np.linspace(0, n - 1, 5).astype(int)
                _, first = timed(lambda: load(dict(img_path=path, slice_axis=axis, slice_index=int(indices[0]))))
                start = time.perf_counter()
                for index in indices[1:]:
                    load(dict(img_path=path, slice_axis=axis, slice_index=int(index)))
                rest = (time.perf_counter() - start) / (len(indices) - 1)
                rows[f'load one {axis} slice, {kind} TIFF'] = dict(first_seconds=first, next_seconds=rest)
        dataset = LabelTiffDataset(data_prefix=data_prefix, slice_axes='z')
        steps = [TRANSFORMS.build(step) for step in r101_train_pipeline(crop)]
        step_seconds = np.zeros(len(steps))  # Compose's loop, written out to time each transform
        np.random.seed(0)
        start = time.perf_counter()
        done = 0
        while done < samples:
            results = dataset.get_data_info(done % len(dataset))
            for k, step in enumerate(steps):
                t0 = time.perf_counter()
                results = step(results)
                step_seconds[k] += time.perf_counter() - t0
                if results is None:
                    break
            done += 1
        total = time.perf_counter() - start
        rows[f'train pipeline (R101 proposal), {crop} px crops'] = dict(
            seconds_per_sample=total / samples,
            share_by_transform={type(step).__name__: round(float(s / total), 3)
                                for step, s in zip(steps, step_seconds)})
    return rows


def main(argv=None):
    run = run_record()
    parser = argparse.ArgumentParser(description='Benchmark dataset building, slice reading and augmentation')
    parser.add_argument('--shape', type=int, nargs=3, default=(64, 512, 512), metavar=('Z', 'Y', 'X'))
    parser.add_argument('--radius', type=int, default=12, help='ball radius in voxels (default 12)')
    parser.add_argument('--crop', type=int, default=512, help='training crop size (default 512)')
    parser.add_argument('--samples', type=int, default=40, help='pipeline samples to time (default 40)')
    parser.add_argument('--out', default=RESULTS, help='JSON output (default benchmarks/results/datasets.json)')
    args = parser.parse_args(argv)
    register_all_modules()
    rows = bench(tuple(args.shape), args.radius, args.crop, args.samples)
    print(f'stack {tuple(args.shape)} uint16, balls of radius {args.radius}; '
          f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}')
    for name, row in rows.items():
        values = ', '.join(f'{key}={value:.4g}' if isinstance(value, float) else f'{key}={value}'
                           for key, value in row.items())
        print(f'{name:<48} {values}')
    write_json(args.out, dict(run=finish_record(run), 
        date=datetime.now(timezone.utc).isoformat(timespec='seconds'), machine=platform.platform(),
        processor=platform.processor(), cpu_count=os.cpu_count(), omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
        shape_zyx=list(args.shape), radius=args.radius, crop=args.crop, samples=args.samples, results=rows))
    print(f'written: {args.out}')


if __name__ == '__main__':
    main()
