"""Smoothed particle masks (``segment_volume(smooth=...)``, issue 15): the generalist's fused (or linked) labels
scored without and with :func:`~libnet_mmdet.volume.smooth_labels` at each sigma, on the zero-shot benchmark's
synthetic volumes.

Usage:
    python benchmarks/bench_smooth.py [--generalist models/generalist] [--presets clean typical hard]
        [--diameters 12 24 48] [--seeds 7000 7001] [--sigmas 0.75 1.0] [--views fused|linked] [--z-step N]
        [--out benchmarks/results/smooth.json]

Each volume (``bench_zero_shot.make_volume``: one per preset, particle diameter and seed; with ``--z-step N`` every
N-th slice of it, voxels N times longer in z, the voxel size given as a scan records it) is segmented once as
``tools/segment.py`` does (xy/xz/yz fused, or xy slices linked, ``scale`` and ``min_voxels`` auto) without
smoothing; each sigma's labels are those labels smoothed (sigma in voxels of the finest axis, smaller on a coarser
one: ``volume.resolve_smooth``) and numbered by first voxel, what ``segment_volume(smooth=sigma)`` returns (the same
voxel for voxel: tests/distributed). Scores: 3D F1@0.5 and 2D F1@0.5 pooled over the xy slices
(``evaluation.compare_methods``), per cell (mean over the seeds) and their mean over the cells. Seeds 7000-7003 are
the generalist's validation volumes, on which ``SMOOTH_SIGMA_VOXELS`` was chosen; report on other seeds (the zero-shot
benchmark's test seed is 5000).
"""
import argparse
import json
import os.path as osp

import numpy as np

from bench_zero_shot import (FUSED, LINKED, VOXEL_SIZE_NM, make_volume,  # noqa: E402 (benchmarks/ is sys.path[0])
                             segment_timed)
from run_record import finish_record, run_record  # noqa: E402

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--generalist', default=osp.join(REPO_ROOT, 'models', 'generalist'))
    parser.add_argument('--presets', nargs='+', default=['clean', 'typical', 'hard'])
    parser.add_argument('--diameters', type=float, nargs='+', default=[12.0, 24.0, 48.0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[7000, 7001])
    parser.add_argument('--sigmas', type=float, nargs='+', default=[0.75])
    parser.add_argument('--views', choices=['fused', 'linked'], default='fused')
    parser.add_argument('--z-step', type=int, default=1, metavar='N', help='keep every N-th slice (default 1: all)')
    parser.add_argument('--out', default=osp.join(REPO_ROOT, 'benchmarks', 'results', 'smooth.json'))
    args = parser.parse_args(argv)
    if args.z_step < 1:
        parser.error(f'--z-step: an integer >= 1, got {args.z_step}')
    return args


def main(argv=None):
    args = parse_args(argv)
    record = run_record()  # the start: its time and load
    from libnet_mmdet.apis import generalist_files, init_segmenter
    from libnet_mmdet.evaluation import compare_methods
    from libnet_mmdet.io import atomic_output
    from libnet_mmdet.io.labels import renumber_by_first_voxel
    from libnet_mmdet.volume import smooth_labels
    from libnet_mmdet.volume.labels import resolve_smooth
    files = generalist_files(args.generalist)
    if files is None:
        raise SystemExit(f'{args.generalist}: no generalist built there (make model)')
    model = init_segmenter(*files, device='cpu')
    names = ['none'] + [f'sigma {sigma:g}' for sigma in args.sigmas]
    views = FUSED if args.views == 'fused' else LINKED
    voxel_size_nm = (VOXEL_SIZE_NM * args.z_step, VOXEL_SIZE_NM, VOXEL_SIZE_NM) if args.z_step > 1 else None
    cells = {}
    for preset in args.presets:
        for diameter in args.diameters:
            rows = []
            for seed in args.seeds:
                volume = make_volume(preset, diameter, seed)
                image, truth = volume.image_zyx[::args.z_step], volume.labels_zyx[::args.z_step]
                plain = segment_timed(model, image, views, 'auto', 'auto', 'none', voxel_size_nm)[0]
                labels = [plain] + [renumber_by_first_voxel(smooth_labels(
                    plain, resolve_smooth(sigma, views, voxel_size_nm)))[0] for sigma in args.sigmas]
                table = compare_methods(truth, dict(zip(names, labels)), voxel_size_nm or VOXEL_SIZE_NM)
                rows.append({name: {key: float(table.loc[name, key]) for key in ('f1_50', 'f1_50_2d')}
                             for name in names})
                print(f'{preset} {diameter:g} px seed {seed}: ' + '  '.join(
                    f"{name} {row['f1_50']:.4f} / {row['f1_50_2d']:.4f}" for name, row in rows[-1].items()),
                      flush=True)
            cells[f'{preset} {diameter:g} px'] = {name: {key: float(np.mean([row[name][key] for row in rows]))
                                                         for key in ('f1_50', 'f1_50_2d')} for name in names}
    means = {name: {key: float(np.mean([cell[name][key] for cell in cells.values()])) for key in ('f1_50', 'f1_50_2d')}
             for name in names}
    print('\n| cell | ' + ' | '.join(f'{name} 3D / 2D F1@0.5' for name in names) + ' |')
    print('|---|' + '---|' * len(names))
    for cell, scores in list(cells.items()) + [('mean', means)]:
        print(f'| {cell} | ' + ' | '.join(f"{scores[name]['f1_50']:.4f} / {scores[name]['f1_50_2d']:.4f}"
                                         for name in names) + ' |')
    with atomic_output(args.out) as f:
        json.dump(finish_record(dict(record, args=vars(args), cells=cells, mean=means)), f, indent=1)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
