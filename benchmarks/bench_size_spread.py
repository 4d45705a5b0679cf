"""Slices whose particle sizes spread wider than the model's trained range: ``scale='auto'`` with its finer second
scale vs the one scale it chose before (issue 15).

Usage:
    python benchmarks/bench_size_spread.py [--generalist models/generalist] [--seeds 7100 7101] [--volumes]
        [--out benchmarks/results/size_spread_val.json]
    python benchmarks/bench_size_spread.py --seeds 9100 9101 --volumes --out benchmarks/results/size_spread_3d.json
    python benchmarks/bench_size_spread.py --seeds 9100 --volumes --fusion
        --out benchmarks/results/size_spread_3d_fused.json
    python benchmarks/bench_size_spread.py --zero-shot --out benchmarks/results/size_spread_zero_shot.json

Per cell (preset, mean particle diameter D in voxels, ``diameter_cv``: the spread of the lognormal diameters) and
seed, a synthetic volume of (Z, Y, X) = (12, 512, 512) voxels (D <= 32) or (8, 768, 768) (larger D: room for
particles of several hundred voxels), and two of its xy slices (z = Z // 4 and Z // 2 + 1).
Each slice is segmented by the generalist with ``scale='auto'`` as a user runs it (``segment_image``); where auto
chose two scales (:data:`~libnet_mmdet.apis.inference.AUTO_FINE_COVERAGE`), the slice is also segmented at the
first of them alone, which is what ``scale='auto'`` did before. Scores: 2D F1@0.5 of the instances against the
slice's true labels, with its tp / fp / fn; the fine candidate's coverage ratio and detections that decide; seconds
of each segmentation (the matching excluded; results written before 2026-12-07 included it). The summary gives F1
of the counts pooled over all slices (METRICS.md) and the mean of the slices' F1 (all that results written before
2026-12-07 recorded).

``--volumes`` runs 3D instead: per cell of :data:`VOLUME_CELLS` and seed, a (32, 512, 512) volume segmented by
``segment_volume`` with xy linking as a user runs it (``scale='auto'``, ``min_voxels='auto'``) and as it ran before
the finer scale (the first of auto's scales, ``min_voxels`` of the diameter it measured); 3D and 2D F1@0.5
(``evaluation.compare_methods``), counts and seconds; ``--fusion``: the xy, xz and yz views fused instead.

``--zero-shot`` only estimates: the scales auto chooses for each volume of ``bench_zero_shot.py`` (presets x
12/24/48 px, seed 5000), to see whether the finer scale fires there.

Seeds: 7100/7101 are the validation slices the fine scale's trigger (0.25) was chosen on; report on others
(held-out 9100/9101). The cells with ``diameter_cv`` 0.3 are the presets' own spread (the trigger should not fire);
1.0-2.0 spread particle sizes over 10-30x.
"""
import argparse
import os.path as osp
import sys
import time
import warnings

import numpy as np
from run_record import finish_record, run_record  # noqa: E402 (benchmarks/ is sys.path[0])

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CELLS = (('typical', 24, 0.3), ('hard', 12, 0.3), ('clean', 48, 0.3), ('hard', 48, 0.3),
         ('typical', 24, 1.0), ('hard', 32, 1.0), ('hard', 40, 1.6),
         ('typical', 40, 1.6), ('typical', 48, 2.0), ('clean', 60, 2.0))
VOLUME_CELLS = (('typical', 24, 1.0), ('hard', 32, 1.0), ('typical', 40, 1.6))
VOLUME_SHAPE = (32, 512, 512)
VOXEL_SIZE_NM = 100.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--generalist', default=osp.join(REPO_ROOT, 'models', 'generalist'))
    parser.add_argument('--seeds', type=int, nargs='+', default=[7100, 7101])
    parser.add_argument('--volumes', action='store_true', help='segment volumes in 3D (VOLUME_CELLS) instead')
    parser.add_argument('--fusion', action='store_true', help='with --volumes: fuse the xy, xz and yz views')
    parser.add_argument('--zero-shot', action='store_true',
                        help="only the scales auto chooses for bench_zero_shot.py's volumes (seed 5000)")
    parser.add_argument('--out', help='JSON output (default benchmarks/results/size_spread_val.json, '
                        'size_spread_3d.json with --volumes, size_spread_zero_shot.json with --zero-shot)')
    args = parser.parse_args(argv)
    if args.out is None:  # one file per mode: a run of one does not replace another's results
        mode = '3d' if args.volumes else 'zero_shot' if args.zero_shot else 'val'
        args.out = osp.join(REPO_ROOT, 'benchmarks', 'results', f'size_spread_{mode}.json')
    if args.fusion and not args.volumes:
        parser.error('--fusion needs --volumes')
    if args.zero_shot and args.volumes:
        parser.error('--zero-shot and --volumes are separate runs: give one')
    return args


def volume_shape(diameter):
    """(Z, Y, X) of a cell's volume (module docstring)."""
    return (12, 512, 512) if diameter <= 32 else (8, 768, 768)


def f1_50(truth, labels):
    """``(F1, [tp, fp, fn])`` at IoU 0.5 of one slice (the counts pooled over slices by :func:`pooled_f1`)."""
    from libnet_mmdet.evaluation import match_instances
    stats = match_instances(truth, labels, [0.5]).loc[0.5]
    return round(float(stats['f1']), 4), [int(stats[key]) for key in ('tp', 'fp', 'fn')]


def pooled_f1(counts):
    """F1 of ``[tp, fp, fn]`` counts summed over slices (METRICS.md: counts pooled, then the ratio)."""
    tp, fp, fn = np.sum(counts, axis=0)
    return round(float(2 * tp / (2 * tp + fp + fn)), 4) if tp + fp + fn else 0.0


def slice_row(model, image, truth):
    """Scores of one slice: auto (one or two scales) and, where auto chose two, the first alone."""
    from libnet_mmdet.apis import segment_image
    started = time.time()
    labels, details = segment_image(model, image, scale='auto')
    info = details['scale_info']
    seconds = round(time.time() - started, 1)
    f1, counts = f1_50(truth, labels)
    row = dict(scales=list(info['scales']), diameter_px=info['diameter_px'], fine_diameter_px=info['fine_diameter_px'],
               f1_auto=f1, counts_auto=counts, seconds_auto=seconds)
    candidates = {c['scale']: c for c in info['candidates']}
    chosen, fine = candidates.get(info['candidate']), candidates.get((info['candidate'] or 0) * 4)
    if chosen and fine and chosen['coverage'] > 0:
        row.update(fine_coverage_ratio=round(fine['coverage'] / chosen['coverage'], 3),
                   fine_detections=fine['detections'])
    if len(info['scales']) > 1:
        started = time.time()
        labels = segment_image(model, image, scale=info['scales'][0])[0]
        row['seconds_one_scale'] = round(time.time() - started, 1)
        row['f1_one_scale'], row['counts_one_scale'] = f1_50(truth, labels)
    else:
        row['f1_one_scale'], row['counts_one_scale'], row['seconds_one_scale'] = f1, counts, None
    return row


def volume_scales(model, image_zyx):
    """``(scales, info)`` that ``segment_volume`` estimates for a volume with ``scale='auto'``: on its samples
    (the z quartiles), under its intensity range."""
    from libnet_mmdet.apis.inference import RANGE_SLICES, evenly_spaced, resolve_scale, shared_intensity_range
    depth = image_zyx.shape[0]
    intensity_range = shared_intensity_range(model, [image_zyx[z] for z in evenly_spaced(depth, RANGE_SLICES)])
    samples = [image_zyx[z] for z in sorted({int(depth * q) for q in (0.25, 0.5, 0.75)})]
    return resolve_scale(model, 'auto', samples, intensity_range=intensity_range)


#: The seed of bench_zero_shot.py's held-out volumes, which --zero-shot looks at.
ZERO_SHOT_SEED = 5000


def zero_shot_rows(model):
    """The scales ``scale='auto'`` chooses for each volume of ``bench_zero_shot.py`` (its presets x 12/24/48 px,
    seed 5000), and the fine candidate's coverage ratio and detections."""
    from bench_zero_shot import make_volume
    rows = []
    for preset in ('clean', 'typical', 'hard'):
        for diameter in (12.0, 24.0, 48.0):
            scales, info = volume_scales(model, make_volume(preset, diameter, ZERO_SHOT_SEED).image_zyx)
            candidates = {c['scale']: c for c in info['candidates']}
            chosen, fine = candidates.get(info['candidate']), candidates.get((info['candidate'] or 0) * 4)
            rows.append(dict(preset=preset, diameter_px=diameter, scales=list(scales),
                             fine_coverage_ratio=round(fine['coverage'] / chosen['coverage'], 3)
                             if fine and chosen and chosen['coverage'] > 0 else None,
                             fine_detections=fine['detections'] if fine else None))
            print(rows[-1], flush=True)
    return rows


def volume_rows(model, seeds, views=('xy',)):
    """3D rows (module docstring): ``segment_volume`` with auto scale and min_voxels vs the first scale alone,
    both with ``views`` (xy linking, or the three views fused)."""
    from libnet_mmdet.apis import segment_volume
    from libnet_mmdet.evaluation import compare_methods
    from libnet_mmdet.synth import generate_volume, preset_params
    from libnet_mmdet.volume import min_voxels_for_diameter
    rows = []
    for preset, diameter, cv in VOLUME_CELLS:
        for seed in seeds:
            params = preset_params(preset, mean_diameter_vox=diameter, diameter_cv=cv, voxel_size_nm=VOXEL_SIZE_NM)
            with warnings.catch_warnings(record=True) as caught:  # the generator's packing warnings: recorded
                warnings.simplefilter('always')
                volume = generate_volume(VOLUME_SHAPE, params, seed=seed)
            image = volume.image_zyx
            started = time.time()
            auto = np.asarray(segment_volume(model, image, views=views, scale='auto', min_voxels='auto',
                                             progress=False))
            seconds = {'auto': time.time() - started}
            scales, info = volume_scales(model, image)
            started = time.time()
            one = np.asarray(segment_volume(model, image, views=views, scale=scales[0], progress=False,
                                            min_voxels=min_voxels_for_diameter(info['diameter_px'])))
            seconds['one_scale'] = time.time() - started
            table = compare_methods(volume.labels_zyx, dict(auto=auto, one_scale=one), VOXEL_SIZE_NM)
            for method, scores in table.iterrows():
                rows.append(dict(preset=preset, mean_diameter_vox=diameter, diameter_cv=cv, seed=seed,
                                 method=method, views=list(views), generator_warnings=[str(w.message) for w in caught],
                                 scales=list(scales) if method == 'auto' else [scales[0]],
                                 seconds=round(seconds[method], 1),
                                 **{key: round(float(scores[key]), 4) for key in ('f1_50', 'f1_50_2d')},
                                 **{key: int(scores[key]) for key in ('n_true', 'n_pred')}))
                print(f"{preset:8s} {diameter:3d} {cv:4.1f} {seed:5d} {method:9s} "
                      f"{', '.join(f'{s:g}' for s in rows[-1]['scales']):>10s} 3D {rows[-1]['f1_50']:.3f} "
                      f"2D {rows[-1]['f1_50_2d']:.3f} n {rows[-1]['n_pred']}/{rows[-1]['n_true']} "
                      f"{rows[-1]['seconds']:.0f} s", flush=True)
    return rows


def slice_results(model, seeds):
    """``{'rows': [...], 'summary': {...}}`` of the slices of every cell and seed (module docstring)."""
    from libnet_mmdet.synth import generate_volume, preset_params
    rows = []
    print(f"{'preset':8s} {'D':>3s} {'cv':>4s} {'seed':>5s} {'z':>2s} {'scales':>13s} {'ratio':>5s} "
          f"{'F1 auto':>7s} {'F1 one':>7s} {'s auto':>6s} {'s one':>5s}")
    for preset, diameter, cv in CELLS:
        for seed in seeds:
            params = preset_params(preset, mean_diameter_vox=diameter, diameter_cv=cv, voxel_size_nm=VOXEL_SIZE_NM)
            with warnings.catch_warnings(record=True) as caught:  # the generator's packing warnings: recorded
                warnings.simplefilter('always')
                volume = generate_volume(volume_shape(diameter), params, seed=seed)
            depth = volume.image_zyx.shape[0]
            for z in (depth // 4, depth // 2 + 1):
                row = dict(preset=preset, mean_diameter_vox=diameter, diameter_cv=cv, seed=seed, z=z,
                           generator_warnings=[str(w.message) for w in caught],
                           **slice_row(model, volume.image_zyx[z], volume.labels_zyx[z]))
                rows.append(row)
                print(f"{preset:8s} {diameter:3d} {cv:4.1f} {seed:5d} {z:2d} "
                      f"{', '.join(f'{s:g}' for s in row['scales']):>13s} {row.get('fine_coverage_ratio', 0):5.2f} "
                      f"{row['f1_auto']:7.3f} {row['f1_one_scale']:7.3f} {row['seconds_auto']:6.1f} "
                      f"{row['seconds_one_scale'] or 0:5.1f}", flush=True)
    two = [row for row in rows if len(row['scales']) > 1]
    summary = dict(slices=len(rows), two_scales=len(two),
                   pooled_f1_auto=pooled_f1([r['counts_auto'] for r in rows]),
                   pooled_f1_one_scale=pooled_f1([r['counts_one_scale'] for r in rows]),
                   mean_f1_auto=round(float(np.mean([r['f1_auto'] for r in rows])), 4),
                   mean_f1_one_scale=round(float(np.mean([r['f1_one_scale'] for r in rows])), 4),
                   mean_gain_where_two=round(float(np.mean([r['f1_auto'] - r['f1_one_scale'] for r in two])), 4)
                   if two else None)
    print(summary)
    return dict(summary=summary, rows=rows)


def main(argv=None):
    args = parse_args(argv)
    from libnet_mmdet.apis import generalist_files, init_segmenter
    from libnet_mmdet.io import check_output_file, write_json
    check_output_file(args.out, overwrite=True)
    files = generalist_files(args.generalist)
    if files is None:
        sys.exit(f'{args.generalist}: no generalist model there; run `make model`')
    run = run_record()
    model = init_segmenter(*files, device='cpu')
    if args.zero_shot:
        results = dict(zero_shot=zero_shot_rows(model))
    elif args.volumes:
        results = dict(volumes=volume_rows(model, args.seeds, ('xy', 'xz', 'yz') if args.fusion else ('xy',)))
    else:
        results = slice_results(model, args.seeds)
    write_json(args.out, dict(benchmark='bench_size_spread', run=finish_record(run),
                              seeds=[ZERO_SHOT_SEED] if args.zero_shot else args.seeds, **results), indent=1)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
