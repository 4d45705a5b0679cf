"""Accuracy benchmark: our model vs the tuned classic watershed on held-out synthetic volumes, and particle-phase
Dice on the real SegmentPy slices (when ../shared/data/real is present).

Usage:
    python benchmarks/bench_accuracy.py [--demo demo_out] [--checkpoint CKPT] [--config CFG]
                                        [--presets typical hard] [--seeds 11 12] [--shape 48 160 160]
                                        [--views xy xyz] [--min-voxels N] [--real-scales 1 0.5 0.33 0.25] [--out benchmarks/results/accuracy.json]

By default it takes the model trained by ``make demo`` (``demo_out/train_config.py`` and its last checkpoint)
and tunes the watershed on the demo's training volume, so both methods have seen the same data. Every held-out
volume is generated here with seeds the demo never used. Prints a table and writes JSON.
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
import tempfile
import time

import numpy as np
import tifffile
from mmengine.runner import find_latest_checkpoint

from libnet_mmdet.analysis import tune_watershed, watershed_segment
from libnet_mmdet.apis import init_segmenter, segment_image, segment_volume
from libnet_mmdet.io import write_json
from libnet_mmdet.evaluation import compare_methods, foreground_dice
from libnet_mmdet.synth import generate_volume, preset_params
from libnet_mmdet.volume import min_voxels_for_diameter
from real_slices import SEGMENTPY_DIR as REAL_SLICES, particle_slices  # noqa: E402 (benchmarks/ is sys.path[0])
from run_record import finish_record, run_record  # noqa: E402
VIEWS = {'xy': ('xy',), 'xyz': ('xy', 'xz', 'yz')}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--demo', default='demo_out', help='folder of a finished `make demo` run')
    parser.add_argument('--config', help='model config (default: <demo>/train_config.py)')
    parser.add_argument('--checkpoint', help='checkpoint (default: the last one of the demo)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--presets', nargs='+', default=['typical', 'hard'])
    parser.add_argument('--seeds', nargs='+', type=int, default=[11, 12])
    parser.add_argument('--shape', nargs=3, type=int, default=[48, 160, 160])
    parser.add_argument('--mean-diameter-vox', type=float, default=22.0)
    parser.add_argument('--views', nargs='+', choices=sorted(VIEWS), default=['xy', 'xyz'])
    parser.add_argument('--min-voxels', type=int,
                        help='merge smaller 3D fragments (default: as the demo, a sphere a third of the mean '
                        'diameter across)')
    parser.add_argument('--real-scales', nargs='+', type=float, default=[1.0, 0.5, 0.33, 0.25],
                        help='segment_image scale factors tried on the real slices (their particles are larger '
                        'than the synthetic training ones)')
    parser.add_argument('--out', default='benchmarks/results/accuracy.json')
    return parser.parse_args()


def synthetic_rows(model, args, watershed_settings, voxel_size_nm):
    rows = []
    for preset in args.presets:
        for seed in args.seeds:
            params = preset_params(preset, mean_diameter_vox=args.mean_diameter_vox, voxel_size_nm=voxel_size_nm)
            volume = generate_volume(tuple(args.shape), params, seed=seed)
            predictions, seconds = {}, {}
            with tempfile.TemporaryDirectory() as tmp:
                image_path = osp.join(tmp, 'image.tif')
                tifffile.imwrite(image_path, volume.image_zyx)
                for view in args.views:
                    started = time.time()
                    predictions[f'ours_{view}'] = np.asarray(segment_volume(
                        model, image_path, views=VIEWS[view], min_voxels=args.min_voxels, progress=False))
                    seconds[f'ours_{view}'] = time.time() - started
            started = time.time()
            predictions['watershed'] = watershed_segment(volume.image_zyx, **watershed_settings)
            seconds['watershed'] = time.time() - started
            table = compare_methods(volume.labels_zyx, predictions, voxel_size_nm)
            for method, scores in table.iterrows():
                rows.append(dict(preset=preset, seed=seed, method=method, seconds=round(seconds[method], 1),
                                 **{key: (None if value is None or value != value else round(float(value), 4))
                                    for key, value in scores.items()}))
                print(f"{preset:8s} seed {seed} {method:10s} F1@0.5 3D {rows[-1]['f1_50']:.3f}  "
                      f"mean acc 3D {rows[-1]['accuracy_mean']:.3f}  F1@0.5 2D {rows[-1]['f1_50_2d']:.3f}  "
                      f"count error {rows[-1]['count_error']}", flush=True)
    return rows


def real_slice_rows(model, watershed_settings, scales):
    """Particle-phase Dice on the real SegmentPy slices (label 0 = NMC), ours at each ``segment_image`` scale."""
    if not osp.isdir(REAL_SLICES):
        print(f'{REAL_SLICES}: absent, real-slice Dice skipped')
        return []
    rows = []
    for name, image, particle_mask in particle_slices(REAL_SLICES):
        watershed = watershed_segment(image, **watershed_settings)
        row = dict(slice=name, shape=list(image.shape),
                   dice_watershed=round(foreground_dice(watershed, particle_mask), 4),
                   instances_watershed=int(watershed.max()))
        for scale in scales:
            labels, _ = segment_image(model, image, scale=scale)
            row[f'dice_ours_scale_{scale:g}'] = round(foreground_dice(labels, particle_mask), 4)
            row[f'instances_ours_scale_{scale:g}'] = int(labels.max())
        rows.append(row)
        print(name, {key: value for key, value in row.items() if key.startswith('dice')}, flush=True)
    return rows


def mean_table(rows):
    """Mean over presets/seeds of the headline columns, per method."""
    methods = sorted({row['method'] for row in rows})
    keys = ['f1_50', 'f1_75', 'accuracy_mean', 'pq_50', 'count_error', 'f1_50_2d', 'accuracy_mean_2d', 'seconds']
    return {method: {key: round(float(np.mean([row[key] for row in rows if row['method'] == method
                                                and row[key] is not None])), 4) for key in keys}
            for method in methods}


def main():
    run = run_record()
    args = parse_args()
    if args.min_voxels is None:
        args.min_voxels = min_voxels_for_diameter(args.mean_diameter_vox)
    config = args.config or osp.join(args.demo, 'train_config.py')
    checkpoint = args.checkpoint or find_latest_checkpoint(osp.join(args.demo, 'work_dir'))
    if checkpoint is None:
        raise SystemExit(f'bench_accuracy.py: error: no checkpoint in {args.demo}/work_dir; run `make demo` or pass '
                         '--checkpoint')
    voxel_size_nm = 100.0
    model = init_segmenter(config, checkpoint, device=args.device)
    train_dir = osp.join(args.demo, 'train')
    watershed_settings, _ = tune_watershed(tifffile.imread(osp.join(train_dir, 'image.tif')),
                                           tifffile.imread(osp.join(train_dir, 'labels.tif')), voxel_size_nm)
    print(f'watershed tuned on {train_dir}: {watershed_settings}')
    rows = synthetic_rows(model, args, watershed_settings, voxel_size_nm)
    result = dict(command=' '.join(sys.argv), date=time.strftime('%Y-%m-%d %H:%M'), machine=dict(
        cpus=os.cpu_count(), processor=platform.processor() or platform.machine(), device=args.device),
        config=config, checkpoint=checkpoint, min_voxels=args.min_voxels, watershed_settings=watershed_settings,
        synthetic=rows,
        synthetic_mean=mean_table(rows), real_slices=real_slice_rows(model, watershed_settings, args.real_scales))
    if result['real_slices']:
        result['real_slices_mean_dice'] = {key: round(float(np.mean([row[key] for row in result['real_slices']])), 4)
                                           for key in result['real_slices'][0] if key.startswith('dice')}
        print(json.dumps(result['real_slices_mean_dice'], indent=1))
    print(json.dumps(result['synthetic_mean'], indent=1))
    write_json(args.out, dict(result, run=finish_record(run)), indent=1)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
