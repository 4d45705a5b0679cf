"""Zero-shot benchmark: the generalist vs the demo model vs the tuned watershed on data none was trained or tuned on.

Usage:
    python benchmarks/bench_zero_shot.py [--generalist models/generalist] [--demo demo_out] [--device cpu]
                                         [--presets clean typical hard] [--diameters 12 24 48] [--seeds 5000]
                                         [--no-fusion] [--skip demo watershed] [--no-real] [--overlays DIR]
                                         [--matbox] [--no-synthetic] [--out benchmarks/results/zero_shot.json]

Methods:
  generalist   ``make model`` (``<generalist>/config.py`` + ``model.pth``) run as a user runs it, ``scale='auto'``:
               one scale per volume (per slice on the real data), estimated by the inference API and reported here.
               xy slices linked (``views=('xy',)``) and, unless ``--no-fusion``, xy/xz/yz views fused, so that
               fusion is compared with linking on every volume.
  demo         the model ``make demo`` trains (``<demo>/train_config.py`` + the last checkpoint of
               ``<demo>/work_dir``: CPU-tiny, one ``typical`` volume of 22-voxel particles). It records no particle
               diameters, so a new user runs it at scale 1 (``demo@1``); on the synthetic volumes it also runs at
               the oracle scale 22 / D (``demo@oracle``: told the true particle diameter D, which no user knows).
               xy slices linked.
  watershed    the classic pipeline (``analysis.watershed_segment``), its settings tuned (``tune_watershed``) on a
               validation volume of the same preset and diameter and another seed. This favours the watershed: it
               is told each cell's particle size and imaging, the models are not.
  otsu         (real slices) a plain Otsu threshold of the slice: particles are the pixels brighter than it.
A model folder that is absent is skipped with a printed line; one given explicitly and absent is an error.

Synthetic volumes (``libnet_mmdet.synth``): each preset x typical particle diameter D (``--diameters``, voxels),
one test volume per seed S (``--seeds``; one per cell by default) and a validation volume of seed S + 1000 (at most
32 slices deep, to bound the tuning time) for the watershed's tuning. Seeds are >= 1000: the generalist's corpus (seeds 0..999; checked against its ``model.json``)
and the demo (1, 2) never use them. Shape (Z, Y, X) = (clip(2 D, 32, 96), clip(8 D, 96, 256), clip(8 D, 96, 256)):
12 / 24 / 48 voxels -> 32 x 96 x 96, 48 x 192 x 192, 96 x 256 x 256. About 8 diameters across, so that each xy
slice holds dozens of particle cross-sections, most of them whole; 2 diameters deep, so that particles run through
many slices and some are cut by the faces as in a real sub-volume. The bounds keep it cheap: at the auto scale
(~2.4 for 12-voxel particles) a 96-pixel slice is one 256-pixel model tile, and the 48-voxel cell stops at 6 M
voxels (its fusion segments 608 slices).
The generalist runs as a user runs ``tools/segment.py``: ``min_voxels='auto'`` (a sphere a third of the typical
diameter that ``scale='auto'`` measured; ``--min-voxels true`` / ``none`` for the true D / 0) and ``smooth='auto'``
(fused particles' masks smoothed; ``--smooth none``: not); the demo model,
which records no diameters, is given ``min_voxels = min_voxels_for_diameter(D)`` of the true D (recorded per row).
Scores (``evaluation.compare_methods``): 3D instance F1 at IoU 0.5 (and F1@0.75, mean accuracy, PQ, count error)
and 2D F1@0.5 pooled over the xy slices of the 3D labels (for the generalist: of the linked volume).

Real slices (``../shared/data/real/segmentpy``, skipped when absent): particle-phase Dice (label 0 = NMC) of the
generalist (``scale='auto'``, no sweep), the demo model at scale 1, Otsu and the watershed (settings tuned on the
``typical`` D = 24 validation volume: no tuning on real data); instance counts; the auto scale and the particle
diameter it measured. One PNG per slice of the generalist's instances over the slice goes to ``--overlays``
(default ``<tmp>/libnet_zero_shot_overlays``: ``benchmarks/results/`` is tracked by git), for counting the particles
by eye and looking for particles split into halves or hollow/cracked ones split into arcs.

MATBOX (``--matbox``; ``../shared/data/real/matbox``, skipped when absent): a real 3D NMC geometry (X-ray CT
particles, generated carbon-binder bridges; 251 x 301 x 301 voxels) rendered through the synthetic tomography model
with each preset of ``--presets`` (``render_volume``, imaging seed 0, as ``bench_phases.py``), segmented by the
generalist as a user runs it (linked and, unless ``--no-fusion``, fused), by the watershed (tuned on the validation
volume of the same preset at D = 24 voxels, the grid size nearest MATBOX's ~20-voxel particles: told the size, as in
the synthetic cells) and by an Otsu threshold. The one exact score is the particle-phase Dice against the true NMC
phase; the volume has no particle ids, so instance scores are against ``split_particles`` of the true NMC phase (a
watershed's split: agreement with it, not accuracy), among them the share of the split's particles (its labels of at
least ``min_voxels_for_particles`` voxels: no specks) that one instance matches at IoU > 0.5, and counts are given as
they are. About 8 min per preset with fusion on 2 cores (the fused generalist 6 min of it).

Output: a table per section; JSON (``--out``) with the run (``run``: command, UTC start and end, machine, load
averages; ``benchmarks/run_record.py``), the device, the models (with ``model.json`` of the generalist), every row and the means per method, preset and diameter;
Markdown tables for BENCHMARKS.md (synthetic: preset x diameter; real: per slice).

Run time of the full default run on 2 idle CPU cores (CPU-tiny models, ~0.1-0.3 s per model pass of up to
256 x 256 pixels): about 30-45 min. Per preset: generating the test and validation volumes (17 M voxels) ~40 s;
the watershed's tuning (16 settings on 8 M validation voxels, each scored in 3D and per slice) 2-4 min; about 1900
model passes ~6 min (generalist: 176 xy slices linked, 1264 more for fusion, ~24 per auto-scale estimate; demo: 352),
scoring ~40 s. The real slices add ~2 min. ``--no-fusion`` saves about two thirds of the model time.
"""
import argparse
import functools
import json
import os.path as osp
import tempfile
import time

import numpy as np
import tifffile
from mmengine.runner import find_latest_checkpoint
from skimage.filters import threshold_otsu

from libnet_mmdet.analysis import split_particles, tune_watershed, watershed_segment
from libnet_mmdet.apis import generalist_files, init_segmenter, segment_image, segment_volume, trained_diameter_range
from libnet_mmdet.evaluation import compare_methods, foreground_dice
from libnet_mmdet.io import InputError, check_output_dir, check_output_file, prepare_output_dir, write_json
from libnet_mmdet.synth import PRESETS, generate_volume, preset_params, render_volume
from libnet_mmdet.visualization import render_labels, write_png
from libnet_mmdet.volume import min_voxels_for_diameter, min_voxels_for_particles
from libnet_mmdet.volume.labels import overlap_pairs
from real_slices import SEGMENTPY_DIR, particle_slices  # noqa: E402 (benchmarks/ is sys.path[0])
from run_record import finish_record, run_record  # noqa: E402

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
REAL_SLICES = SEGMENTPY_DIR
MATBOX = osp.join(REPO_ROOT, '..', 'shared', 'data', 'real', 'matbox', 'nmc-1-cal_generatedCBD_bridge.tif')
MATBOX_TUNING_DIAMETER = 24.0  # the watershed's validation cell for MATBOX (module docstring)
VOXEL_SIZE_NM = 100.0
DEMO_DIAMETER_PX = 22.0  # the particle diameter of the demo's training volume (tools/demo.py SYNTH_SETTINGS)
FIRST_SEED = 1000  # seeds below are the generalist corpus's (0..999) and the demo's (1, 2)
VALIDATION_OFFSET = 1000  # the watershed's validation volume of test seed S has seed S + 1000
VALIDATION_DEPTH = 32  # ... and at most 32 slices: tuning runs 16 settings, each scored in 3D and per slice
DIAMETER_RANGE = (6.0, 96.0)  # what the volume shapes are sized for (voxels)
REAL_TUNING_CELL = ('typical', 24.0)  # the watershed's settings for the real slices are tuned on this cell
LINKED, FUSED = ('xy',), ('xy', 'xz', 'yz')
SCORE_KEYS = ('f1_50', 'f1_75', 'accuracy_mean', 'pq_50', 'count_error', 'n_true', 'n_pred', 'f1_50_2d',
              'accuracy_mean_2d', 'seconds')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--generalist', help='folder with config.py + model.pth (default: models/generalist)')
    parser.add_argument('--demo', help='folder of a finished `make demo` run (default: demo_out)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--presets', nargs='+', choices=sorted(PRESETS), default=['clean', 'typical', 'hard'])
    parser.add_argument('--diameters', nargs='+', type=float, default=[12.0, 24.0, 48.0],
                        help='typical particle diameters of the synthetic volumes (voxels)')
    parser.add_argument('--seeds', nargs='+', type=int, default=[5000],
                        help=f'test volume seeds, one volume per seed and cell (>= {FIRST_SEED})')
    parser.add_argument('--fusion', action=argparse.BooleanOptionalAction, default=True,
                        help='also fuse xy/xz/yz views with the generalist (default: on)')
    parser.add_argument('--min-voxels', choices=('auto', 'true', 'none'), default='auto',
                        help="the generalist's min_voxels: auto (as tools/segment.py), from the true diameter, or 0")
    parser.add_argument('--smooth', choices=('auto', 'none'), default='auto',
                        help="the generalist's smoothing of the particles' masks: auto (as tools/segment.py: fused "
                        'views) or none')
    parser.add_argument('--skip', nargs='+', choices=('demo', 'watershed'), default=[],
                        help='leave out these methods on the synthetic volumes (e.g. a fusion-only rerun)')
    parser.add_argument('--real', action=argparse.BooleanOptionalAction, default=True,
                        help=f'score the real SegmentPy slices when {REAL_SLICES} exists (default: on)')
    parser.add_argument('--matbox', action='store_true',
                        help=f'also segment the MATBOX geometry rendered with each preset, when {MATBOX} exists')
    parser.add_argument('--synthetic', action=argparse.BooleanOptionalAction, default=True,
                        help='score the synthetic volumes (default: on; --no-synthetic with --matbox for it alone)')
    parser.add_argument('--overlays', default=osp.join(tempfile.gettempdir(), 'libnet_zero_shot_overlays'),
                        help="PNG of the generalist's instances per real slice (an earlier run's folder is emptied)")
    parser.add_argument('--out', default=osp.join('benchmarks', 'results', 'zero_shot.json'))
    args = parser.parse_args()
    low, high = DIAMETER_RANGE
    if not all(low <= d <= high for d in args.diameters):
        parser.error(f'--diameters: expected values in [{low:g}, {high:g}] voxels, got {args.diameters}')
    if min(args.seeds) < FIRST_SEED or len(set(args.seeds)) < len(args.seeds):
        parser.error(f'--seeds: expected distinct seeds >= {FIRST_SEED} (the corpus and the demo use those below), '
                     f'got {args.seeds}')
    tuning = sorted({seed + VALIDATION_OFFSET for seed in args.seeds} & set(args.seeds))
    if tuning:
        parser.error(f'--seeds: {tuning} would be scored and also tune the watershed of the seed '
                     f'{VALIDATION_OFFSET} below (its validation volume); choose seeds {VALIDATION_OFFSET} apart')
    if not (args.synthetic or args.real or args.matbox):
        parser.error('--no-synthetic --no-real: nothing to score (add --matbox)')
    args.models = find_models(parser, args)
    try:
        check_output_file(args.out, overwrite=True)  # a benchmark rerun replaces its results
        if args.real and 'generalist' in args.models and osp.isdir(REAL_SLICES):
            check_output_dir(args.overlays, overwrite=True)
    except InputError as exc:
        parser.error(str(exc))
    return args


def find_models(parser, args):
    """``{name: dict(config, checkpoint, facts)}`` of the generalist and the demo model, those absent left out
    (with a printed line), or a parser error for a folder given explicitly that lacks its files; ``facts`` is the
    generalist's ``model.json`` (or None). Also refuses test/validation seeds of the generalist's corpus."""
    models = {}
    files = generalist_files(args.generalist)
    if files is None and args.generalist is not None:
        parser.error(f'--generalist {args.generalist}: no config.py + model.pth there (build it with `make model`)')
    if files is None:
        print('generalist: models/generalist is not built (`make model`); its rows are skipped')
    else:
        facts_path = osp.join(osp.dirname(files[1]), 'model.json')
        facts = None
        if osp.isfile(facts_path):
            with open(facts_path) as f:
                facts = json.load(f)
        models['generalist'] = dict(config=files[0], checkpoint=files[1], facts=facts)
        if facts is not None:
            corpus = range(facts['corpus_seed'], facts['corpus_seed'] + facts['corpus_volumes'])
            used = sorted({s + k for s in args.seeds for k in (0, VALIDATION_OFFSET)} & set(corpus))
            if used:
                parser.error(f'--seeds: seeds {used} are in the generalist corpus (seeds {corpus.start}..'
                             f'{corpus.stop - 1}, {facts_path})')
    demo = args.demo or 'demo_out'
    config = osp.join(demo, 'train_config.py')
    work_dir = osp.join(demo, 'work_dir')
    checkpoint = find_latest_checkpoint(work_dir) if osp.isfile(osp.join(work_dir, 'last_checkpoint')) else None
    if (checkpoint is None or not osp.isfile(config)) and args.demo is not None:
        parser.error(f'--demo {args.demo}: no train_config.py and checkpoint in work_dir/ there (run `make demo`)')
    if checkpoint is None or not osp.isfile(config):
        print(f'demo: no trained model in {demo} (`make demo`); its rows are skipped')
    else:
        models['demo'] = dict(config=config, checkpoint=checkpoint, facts=None)
    return models


def volume_shape(diameter):
    """(Z, Y, X) of the synthetic volumes of ``diameter``-voxel particles (module docstring)."""
    side = int(np.clip(round(8 * diameter), 96, 256))
    return int(np.clip(round(2 * diameter), 32, 96)), side, side


def make_volume(preset, diameter, seed):
    params = preset_params(preset, mean_diameter_vox=diameter, voxel_size_nm=VOXEL_SIZE_NM)
    return generate_volume(volume_shape(diameter), params, seed=seed)


@functools.lru_cache(maxsize=None)
def tuned_watershed(preset, diameter, seed):
    """``(settings, seconds)``: the watershed tuned on the validation volume (seed + VALIDATION_OFFSET) of a cell."""
    started = time.time()
    depth, side, _ = volume_shape(diameter)
    params = preset_params(preset, mean_diameter_vox=diameter, voxel_size_nm=VOXEL_SIZE_NM)
    volume = generate_volume((min(depth, VALIDATION_DEPTH), side, side), params, seed=seed + VALIDATION_OFFSET)
    settings, _ = tune_watershed(volume.image_zyx, volume.labels_zyx, VOXEL_SIZE_NM)
    return settings, round(time.time() - started, 1)


def segment_timed(model, image_zyx, views, scale, min_voxels, smooth='auto', voxel_size_nm=None):
    """``(labels_zyx, seconds, scale)``: ``segment_volume`` as a user calls it (``smooth='auto'`` as
    ``tools/segment.py``; 'none': not smoothed; ``voxel_size_nm`` as the scan records it); the scale it used ('auto'
    resolved) is read from the manifest of its work folder, where ``segment_volume`` records it."""
    with tempfile.TemporaryDirectory(prefix='bench_zero_shot_') as tmp:
        work_dir = osp.join(tmp, 'work')
        started = time.time()
        labels = np.asarray(segment_volume(model, image_zyx, views=views, scale=scale, min_voxels=min_voxels,
                                           work_dir=work_dir, keep_work=True, progress=False,
                                           smooth=None if smooth == 'none' else smooth, voxel_size_nm=voxel_size_nm))
        seconds = time.time() - started
        with open(osp.join(work_dir, 'manifest.json')) as f:
            used = json.load(f)['identity']['inference']['scale']
    return labels, seconds, used


def model_runs(models, diameter, fusion, skip=(), generalist_min_voxels='auto'):
    """``{method: (model, views, scale, min_voxels)}`` of the synthetic volumes of ``diameter``-voxel particles;
    ``generalist_min_voxels`` as ``--min-voxels``."""
    runs = {}
    min_voxels = min_voxels_for_diameter(diameter)
    if 'generalist' in models:
        chosen = {'auto': 'auto', 'true': min_voxels, 'none': 0}[generalist_min_voxels]
        runs['generalist_linked'] = (models['generalist'], LINKED, 'auto', chosen)
        if fusion:
            runs['generalist_fused'] = (models['generalist'], FUSED, 'auto', chosen)
    if 'demo' in models and 'demo' not in skip:
        runs['demo@1'] = (models['demo'], LINKED, 1.0, min_voxels)
        runs['demo@oracle'] = (models['demo'], LINKED, round(DEMO_DIAMETER_PX / diameter, 4), min_voxels)
    return runs


def _number(value):
    return None if value is None or value != value else round(float(value), 4)


def synthetic_rows(models, args):
    """One row per test volume and method: cell, scale, seconds and the :func:`compare_methods` scores."""
    rows = []
    print(f"\n{'preset':8s} {'D':>4s} {'seed':>5s} {'method':18s} {'scale':>6s} {'F1@0.5 3D':>9s} "
          f"{'F1@0.5 2D':>9s} {'count err':>9s} {'s':>6s}")
    for preset in args.presets:
        for diameter in args.diameters:
            for seed in args.seeds:
                volume = make_volume(preset, diameter, seed)
                plan = model_runs(models, diameter, args.fusion, args.skip, args.min_voxels)
                runs = {method: segment_timed(model['segmenter'], volume.image_zyx, views, scale, min_voxels,
                                              args.smooth)
                        for method, (model, views, scale, min_voxels) in plan.items()}
                if 'watershed' not in args.skip:
                    settings, tuning_seconds = tuned_watershed(preset, diameter, seed)
                    started = time.time()
                    runs['watershed'] = (watershed_segment(volume.image_zyx, **settings), time.time() - started,
                                         None)
                table = compare_methods(volume.labels_zyx, {name: run[0] for name, run in runs.items()},
                                        VOXEL_SIZE_NM)
                for method, scores in table.iterrows():
                    row = dict(preset=preset, diameter_px=diameter, seed=seed, shape_zyx=list(volume.image_zyx.shape),
                               min_voxels=plan[method][3] if method in plan else None, method=method,
                               scale=runs[method][2],
                               seconds=round(runs[method][1], 1),
                               **{key: _number(value) for key, value in scores.items()})
                    if method == 'watershed':
                        row.update(settings=settings, tuning_seconds=tuning_seconds,
                                   validation_seed=seed + VALIDATION_OFFSET)
                    rows.append(row)
                    print(f"{preset:8s} {diameter:4g} {seed:5d} {method:18s} {_cell(row['scale']):>6s} "
                          f"{_cell(row['f1_50']):>9s} {_cell(row['f1_50_2d']):>9s} {row['count_error']:>9g} "
                          f"{row['seconds']:6.1f}", flush=True)
    return rows


def mean_rows(rows):
    """Means over seeds of :data:`SCORE_KEYS` and the scale, per preset, diameter and method."""
    groups = {}
    for row in rows:
        groups.setdefault((row['preset'], row['diameter_px'], row['method']), []).append(row)
    means = []
    for (preset, diameter, method), group in groups.items():
        mean = dict(preset=preset, diameter_px=diameter, method=method, volumes=len(group))
        for key in SCORE_KEYS + ('scale',):
            values = [row[key] for row in group if isinstance(row[key], (int, float))]
            mean[key] = _number(np.mean(values)) if values else None
        means.append(mean)
    return means


def real_slice_rows(models, watershed_settings, overlays):
    """Per real SegmentPy slice: particle-phase Dice (label 0 = NMC) and instance counts of each method, the
    generalist's auto scale, and the path of its overlay PNG."""
    rows = []
    if 'generalist' in models:
        prepare_output_dir(overlays, overwrite=True)
    print(f"\n{'slice':9s} {'dice gen.':>9s} {'demo@1':>7s} {'otsu':>6s} {'wshed':>6s} {'inst gen.':>9s} "
          f"{'demo@1':>7s} {'wshed':>6s} {'scale':>6s}")
    for name, image, particle_mask in particle_slices(REAL_SLICES):
        row = dict(slice=name, shape=list(image.shape))
        predictions = dict(otsu=image > threshold_otsu(image), watershed=watershed_segment(image, **watershed_settings))
        if 'generalist' in models:
            labels, details = segment_image(models['generalist']['segmenter'], image, scale='auto')
            predictions['generalist'] = labels
            row.update(scale=details['scale'], diameter_px=_number(details['scale_info']['diameter_px']),
                       overlay=osp.join(overlays, name.replace('.tif', '_generalist.png')))
            write_png(row['overlay'], render_labels(image, labels))
        if 'demo' in models:
            predictions['demo@1'] = segment_image(models['demo']['segmenter'], image, scale=1.0)[0]
        for method, prediction in predictions.items():
            row[f'dice_{method}'] = round(foreground_dice(prediction, particle_mask), 4)
            if method != 'otsu':  # a threshold has no instances
                row[f'instances_{method}'] = int(prediction.max())
        rows.append(row)
        print(f"{name:9s} {_cell(row.get('dice_generalist')):>9s} {_cell(row.get('dice_demo@1')):>7s} "
              f"{_cell(row['dice_otsu']):>6s} {_cell(row['dice_watershed']):>6s} "
              f"{_cell(row.get('instances_generalist')):>9s} {_cell(row.get('instances_demo@1')):>7s} "
              f"{_cell(row['instances_watershed']):>6s} {_cell(row.get('scale')):>6s}", flush=True)
    return rows


def matbox_rows(models, args):
    """Per preset: the MATBOX geometry rendered with its imaging and segmented (module docstring); particle-phase
    Dice against the true NMC phase, instance scores against its ``split_particles`` labels, counts, seconds."""
    phases = tifffile.imread(MATBOX).astype(np.uint8)
    nmc = phases == 1
    split = split_particles(nmc)
    split_voxels = np.bincount(split.ravel())[1:]
    sized = np.flatnonzero(split_voxels >= min_voxels_for_particles(split_voxels)) + 1
    rows = []
    print(f"\n{'matbox':8s} {'method':18s} {'scale':>6s} {'Dice':>6s} {'count':>6s} {'F1@0.5 vs split':>15s} "
          f"{'s':>6s}   (split_particles: {int(split.max())} labels)")
    for preset in args.presets:
        params = preset_params(preset)
        image = render_volume(split, phases, params, seed=0)
        runs = {}
        if 'generalist' in models:
            runs['generalist_linked'] = segment_timed(models['generalist']['segmenter'], image, LINKED, 'auto', 'auto',
                                                      args.smooth)
            if args.fusion:
                runs['generalist_fused'] = segment_timed(models['generalist']['segmenter'], image, FUSED, 'auto',
                                                         'auto', args.smooth)
        settings = None
        if 'watershed' not in args.skip:
            settings = tuned_watershed(preset, MATBOX_TUNING_DIAMETER, args.seeds[0])[0]
            started = time.time()
            runs['watershed'] = (watershed_segment(image, **settings), time.time() - started, None)
        started = time.time()
        otsu = image > threshold_otsu(image)
        otsu_seconds = time.time() - started  # (until 2026-12-07 the scoring below was counted in)
        scores = compare_methods(split, {name: run[0] for name, run in runs.items()}, params.voxel_size_nm) \
            if runs else None
        for method, (labels, seconds, scale) in {**runs, 'otsu': (otsu, otsu_seconds, None)}.items():
            row = dict(preset=preset, method=method, scale=scale, seconds=round(seconds, 1),
                       dice=round(foreground_dice(labels, nmc), 4))
            if method != 'otsu':  # a threshold has no instances
                ids, _, intersection, area_split, area_method = overlap_pairs(split, labels)
                found = ids[2 * intersection > area_split + area_method - intersection]  # IoU > 0.5: one each
                row.update(instances=int(labels.max()), split_labels=int(split.max()), split_sized=int(sized.size),
                           split_sized_found=round(np.isin(sized, found).mean(), 4),
                           **{key: _number(value) for key, value in scores.loc[method].items()})
            if method == 'watershed':
                row.update(settings=settings, tuned_on=dict(preset=preset, diameter_px=MATBOX_TUNING_DIAMETER,
                                                            seed=args.seeds[0] + VALIDATION_OFFSET))
            rows.append(row)
            print(f"{preset:8s} {method:18s} {_cell(scale):>6s} {row['dice']:6.3f} {_cell(row.get('instances')):>6s} "
                  f"{_cell(row.get('f1_50')):>15s} {row['seconds']:6.1f}", flush=True)
    return rows


def _cell(value):
    if value is None:
        return '–'
    return f'{value:.3f}' if isinstance(value, float) else str(value)


def _markdown(columns, rows):
    lines = [columns, ['---'] * len(columns)] + [[_cell(value) for value in row] for row in rows]
    return '\n'.join('| ' + ' | '.join(line) + ' |' for line in lines)


def synthetic_markdown(means):
    """The BENCHMARKS.md table of the synthetic volumes: one row per preset and diameter (means over seeds)."""
    table = {(m['preset'], m['diameter_px'], m['method']): m for m in means}
    cells = sorted({(m['preset'], m['diameter_px']) for m in means}, key=lambda c: (list(PRESETS).index(c[0]), c[1]))
    rows = []
    for preset, diameter in cells:
        linked, fused, demo_1, demo_oracle, watershed = (
            table.get((preset, diameter, method), {})
            for method in ('generalist_linked', 'generalist_fused', 'demo@1', 'demo@oracle', 'watershed'))
        rows.append([preset, f'{diameter:g}', linked.get('f1_50'), fused.get('f1_50'), linked.get('f1_50_2d'),
                     fused.get('f1_50_2d'), demo_1.get('f1_50_2d'), demo_oracle.get('f1_50_2d'),
                     f"{_cell(watershed.get('f1_50'))} / {_cell(watershed.get('f1_50_2d'))}", linked.get('scale')])
    return _markdown(['preset', 'D (px)', 'generalist linked 3D F1@0.5', 'generalist fused 3D F1@0.5',
                      'generalist linked 2D F1@0.5', 'generalist fused 2D F1@0.5', 'demo@1 2D F1@0.5',
                      'demo@oracle 2D F1@0.5', 'watershed 3D / 2D F1@0.5', 'auto scale'], rows)


def real_markdown(rows, means):
    """The BENCHMARKS.md table of the real slices: one row per slice, then the means."""
    keys = ['dice_generalist', 'dice_demo@1', 'dice_otsu', 'dice_watershed']
    table = [[row['slice'], *(row.get(key) for key in keys),
              ' / '.join(_cell(row.get(f'instances_{m}')) for m in ('generalist', 'demo@1', 'watershed')),
              row.get('scale')] for row in rows]
    table.append(['mean', *(means.get(key) for key in keys), '', None])
    return _markdown(['slice', 'Dice generalist (auto)', 'Dice demo@1', 'Dice Otsu', 'Dice watershed',
                      'instances generalist / demo@1 / watershed', 'auto scale'], table)


def matbox_markdown(rows):
    """The BENCHMARKS.md table of the MATBOX renderings: one row per preset and method."""
    return _markdown(['rendered as', 'method', 'particle-phase Dice', 'instances', 'split particles found whole',
                      '3D F1@0.5 vs split', '2D F1@0.5 vs split', 'auto scale', 'seconds'],
                     [[row['preset'], row['method'], row['dice'], row.get('instances'), row.get('split_sized_found'),
                       row.get('f1_50'), row.get('f1_50_2d'), row['scale'], row['seconds']] for row in rows])


def main():
    args = parse_args()
    record = run_record()
    started = time.time()
    for name, model in args.models.items():
        model['segmenter'] = init_segmenter(model['config'], model['checkpoint'], device=args.device)
        model['trained_diameter_px'] = trained_diameter_range(model['segmenter'])
        print(f"{name}: {model['config']} + {model['checkpoint']} (trained diameters: "
              f"{model['trained_diameter_px'] or 'not recorded'})")
    synthetic = synthetic_rows(args.models, args) if args.synthetic else []
    means = mean_rows(synthetic)
    real, real_means, watershed_real = [], {}, None
    if args.real and osp.isdir(REAL_SLICES):
        watershed_real = dict(settings=tuned_watershed(*REAL_TUNING_CELL, args.seeds[0])[0],
                              tuned_on=dict(preset=REAL_TUNING_CELL[0], diameter_px=REAL_TUNING_CELL[1],
                                            seed=args.seeds[0] + VALIDATION_OFFSET))
        real = real_slice_rows(args.models, watershed_real['settings'], args.overlays)
        real_means = {key: _number(np.mean([row[key] for row in real])) for key in real[0]
                      if key.startswith(('dice_', 'instances_'))} if real else {}
    elif args.real:
        print(f'{REAL_SLICES}: absent, real slices skipped')
    matbox = []
    if args.matbox and osp.isfile(MATBOX):
        matbox = matbox_rows(args.models, args)
    elif args.matbox:
        print(f'{MATBOX}: absent, MATBOX skipped')
    markdown = dict(synthetic=synthetic_markdown(means) if synthetic else None,
                    real=real_markdown(real, real_means) if real else None,
                    matbox=matbox_markdown(matbox) if matbox else None)
    if synthetic:
        print('\nBENCHMARKS.md, synthetic volumes (3D F1 of the 3D labels; 2D F1 pooled over their xy slices):\n' +
              markdown['synthetic'])
    if real:
        print('\nBENCHMARKS.md, real SegmentPy slices (particle-phase Dice):\n' + markdown['real'])
    if matbox:
        print('\nBENCHMARKS.md, MATBOX rendered (Dice against its NMC phase; instances against its split):\n' +
              markdown['matbox'])
    result = dict(
        run=finish_record(record), seconds=round(time.time() - started), device=args.device,
        models={name: {key: value for key, value in model.items() if key != 'segmenter'}
                for name, model in args.models.items()},
        synthetic_settings=dict(presets=args.presets, diameters_px=args.diameters, seeds=args.seeds,
                                validation_seeds=[s + VALIDATION_OFFSET for s in args.seeds], fusion=args.fusion,
                                shapes_zyx={f'{d:g}': volume_shape(d) for d in args.diameters},
                                voxel_size_nm=VOXEL_SIZE_NM, demo_oracle_diameter_px=DEMO_DIAMETER_PX),
        synthetic=synthetic, synthetic_mean=means, real_slices=real, real_slices_mean=real_means,
        real_watershed=watershed_real, matbox=matbox, markdown=markdown)
    write_json(args.out, result, indent=1)
    print(f'wrote {args.out}' + (f'; overlays in {args.overlays}' if real and 'generalist' in args.models else ''))


if __name__ == '__main__':
    main()
