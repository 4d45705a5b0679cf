"""Benchmark: per-slice speed of the volume path against stock ``mmdet.apis.inference_detector``, same model and
slices, with F1@0.5 against the exact ground truth of synthetic volumes; and the validation runs that chose the
proposal budget's constants (:func:`libnet_mmdet.apis.model.proposal_budget`).

Usage (2 cores, under the shared lock):
    OMP_NUM_THREADS=2 python benchmarks/bench_slice_speed.py --tune       # budget constants, validation (~8 min)
    OMP_NUM_THREADS=2 python benchmarks/bench_slice_speed.py              # speed + F1 table (~6 min)
    OMP_NUM_THREADS=1 python benchmarks/bench_slice_speed.py --profile    # cProfile of the volume path, 10 slices
    python benchmarks/bench_slice_speed.py --device cuda:0 --amp          # on a GPU, with mixed precision too

Model: the demo's CPU-tiny Mask R-CNN (``tools/demo.py``'s own training: the ``typical`` preset, 22 px particles,
1000 iterations on all slices of a 64x192x192 volume), trained into ``--model-dir`` on the first run (about
10-20 min on 2 cores; its ``work_dir/iter_1000.pth`` is reused afterwards) and loaded with the shipped
``configs/nmc/mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py`` (its test settings: 2000 RPN proposals, 500 detections).

Slices: every xy slice of synthetic volumes (:mod:`libnet_mmdet.synth`, 22 px mean particle diameter, exact
labels), 24 x 192 x 192 voxels each, cached as ``.npz`` in ``--data-dir``. Validation (``--tune``): every case
below and ``typical``, seeds 500-501. Benchmark: seeds 600-601 of the presets ``clean`` (the least dense preset,
solid fraction 0.5), ``hard`` (the densest, 0.6) and ``sparse`` (``typical`` with solid fraction 0.2, well below
any preset).

Methods, each timed over all slices of a case (after one warm-up slice; ``--repeats`` interleaved rounds, the
best of each kept, as the machine is shared; CPU seconds per slice alongside):

* ``inference_detector``: stock MMDetection, one call per slice with the config's test pipeline and test settings,
  the ``DetDataSample`` kept (as bench_volume.py); its masks are painted into labels for F1 outside the timing;
* ``slice_segmenter, proposals=config``: the volume path's 2D step with the config's proposal settings;
* ``slice_segmenter``: the volume path's 2D step as ``segment_volume`` runs it by default (proposal budget,
  score-gated masks, default batch size and tiling);
* ``segment_volume xy``: the whole volume path (reading, 2D step, linking, writing), timed only;
* ``slice_segmenter, amp`` (with ``--amp``): the 2D step of the same weights loaded with ``amp=True`` (backbone and
  neck under autocast: float16 on a GPU, bfloat16 on the CPU).

F1@0.5 pools the matches of all xy slices (:func:`libnet_mmdet.evaluation.match_dataset`; 2D labels per slice).
Writes ``benchmarks/results/slice_speed.json`` (``--tune``: ``slice_speed_tuning.json``, ``--profile``:
``slice_speed_profile.json``).
"""
import argparse
import cProfile
import io
import json
import os
import os.path as osp
import pstats
import sys
import tempfile
import time

import numpy as np
from run_record import finish_record, run_record  # noqa: E402 (benchmarks/ is sys.path[0])

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RESULTS = osp.join(REPO_ROOT, 'benchmarks', 'results')
CONFIG = osp.join(REPO_ROOT, 'configs', 'nmc', 'mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py')
DIAMETER_VOX = 22.0  # the demo model's training particles
CASES = {  # name -> (preset, overrides)
    'sparse': ('typical', dict(solid_fraction=0.2)),
    'clean': ('clean', {}),
    'typical': ('typical', {}),
    'hard': ('hard', {}),
}
BENCHMARK_CASES = ('sparse', 'clean', 'hard')
VALIDATION_SEEDS = (500, 501)
TEST_SEEDS = (600, 601)
#: Validation presets of ``--tune`` and the RPN proposals per image tried (``rpn.max_per_img``; the config keeps 2000).
TUNE_CASES = ('sparse', 'clean', 'typical', 'hard')
TUNE_PROPOSALS = (250, 375, 500, 625, 750, 1000, 1500)
#: ``nms_pre`` (RPN candidates per feature level before NMS) tried below the config's 2000, at 750 proposals.
TUNE_NMS_PRE = (750, 1000, 1500)
TUNE_NMS_PRE_PROPOSALS = 750
#: Objectness floors tried with the budget's limits (RPN proposals below are not passed to the RoI heads).
TUNE_MIN_OBJECTNESS = (0.02, 0.05, 0.1, 0.2)


def demo_model(model_dir):
    """(config, checkpoint) of the demo's CPU-tiny model, trained into ``model_dir`` as tools/demo.py trains it
    when there is no checkpoint yet."""
    sys.path.insert(0, osp.join(REPO_ROOT, 'tools'))
    import demo
    checkpoint = osp.join(model_dir, 'work_dir', 'iter_1000.pth')
    if not osp.isfile(checkpoint):
        demo.make_volume(osp.join(model_dir, 'train'), demo.VOLUME_SHAPES['full'][0], demo.SEEDS['train'], 100.0)
        checkpoint = demo.train(model_dir, demo.RECIPES['tiny'], 1000, 'cpu')
    return CONFIG, checkpoint


def volume(data_dir, case, seed, shape):
    """``(image_zyx, labels_zyx)`` of one synthetic volume (cached in ``data_dir``)."""
    path = osp.join(data_dir, f'{case}_{seed}_{"x".join(map(str, shape))}.npz')
    if not osp.isfile(path):
        from libnet_mmdet.synth import generate_volume, preset_params
        preset, overrides = CASES[case]
        params = preset_params(preset, mean_diameter_vox=DIAMETER_VOX, voxel_size_nm=100.0, **overrides)
        generated = generate_volume(shape, params, seed=seed)
        os.makedirs(data_dir, exist_ok=True)
        np.savez_compressed(path, image=generated.image_zyx, labels=generated.labels_zyx)
    with np.load(path) as arrays:
        return arrays['image'], arrays['labels']


def matches_50(truth, predicted):
    """Pooled F1, true and false positives and false negatives at IoU 0.5 over lists of (H, W) label images."""
    from libnet_mmdet.evaluation import match_dataset
    stats = match_dataset(truth, predicted, thresholds=0.5).iloc[0]
    return dict(f1_50=round(float(stats['f1']), 4), tp=int(stats['tp']), fp=int(stats['fp']), fn=int(stats['fn']))


def timed(run, slices):
    """``(wall seconds, CPU seconds, results)`` of ``run(slices)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    results = run(slices)
    return time.perf_counter() - wall, time.process_time() - cpu, results


def stock_labels(model):
    """``run(slices) -> samples`` with stock inference_detector, and ``paint(samples) -> labels`` for F1."""
    from mmcv.transforms import Compose
    from mmdet.apis import inference_detector
    from mmdet.utils import get_test_pipeline_cfg

    from libnet_mmdet.apis.inference import DEFAULT_SCORE_THR, detections_to_labels
    # inference_detector's own array path swaps the loader's type but keeps its arguments, which fails for
    # LoadTomoImageFromFile(normalize=...): give it the config's pipeline (our loader normalises an in-memory 'img').
    pipeline = Compose(get_test_pipeline_cfg(model.cfg))

    def run(slices):
        return [inference_detector(model, image, test_pipeline=pipeline) for image in slices]

    def paint(samples, slices):
        return [detections_to_labels(sample.pred_instances, image.shape, DEFAULT_SCORE_THR)[0]
                for sample, image in zip(samples, slices)]
    return run, paint


def ours(model, proposals='auto'):
    """``run(slices) -> labels`` through the volume path's 2D step (``slice_segmenter`` with its defaults)."""
    from libnet_mmdet.apis.inference import slice_segmenter
    segment = slice_segmenter(model, proposals=proposals)
    return lambda slices: [labels for labels, _ in segment(list(slices))]


def volume_runner(model, volumes, tmp):
    """``run(slices) -> None`` that runs ``segment_volume`` (views xy, defaults) on TIFFs of ``volumes``, whose xy
    slices are ``slices``."""
    import tifffile

    from libnet_mmdet.apis import segment_volume
    paths = []
    for index, (image_zyx, _) in enumerate(volumes):
        paths.append(osp.join(tmp, f'image_{index}.tif'))
        tifffile.imwrite(paths[-1], image_zyx)

    def run(slices):
        for path in paths:
            segment_volume(model, path, out=path.replace('image', 'labels'), views=('xy',), progress=False,
                           overwrite=True)
    return run


def load_model(model_dir, device='cpu', amp=False):
    from libnet_mmdet.apis import init_segmenter
    return init_segmenter(*demo_model(model_dir), device=device, amp=amp)


def benchmark(args):
    """Every method on every case, interleaved ``--repeats`` times (the best time of each is kept: the machine is
    shared), after one warm-up slice each."""
    model = load_model(args.model_dir, args.device)
    mixed = load_model(args.model_dir, args.device, amp=True) if args.amp else None
    run_stock, paint_stock = stock_labels(model)
    rows = []
    for case in args.cases:
        volumes = [volume(args.data_dir, case, seed, args.shape) for seed in TEST_SEEDS]
        slices = [z for image, _ in volumes for z in image]
        truth = [z for _, labels in volumes for z in labels]
        with tempfile.TemporaryDirectory(prefix='bench_slice_speed_') as tmp:
            methods = {'inference_detector': run_stock, 'slice_segmenter, proposals=config': ours(model, 'config'),
                       'slice_segmenter': ours(model), 'segment_volume xy': volume_runner(model, volumes, tmp)}
            if mixed is not None:
                methods['slice_segmenter, amp'] = ours(mixed)
            best = {}
            for method, run in methods.items():  # warm-up (segment_volume shares the warm model)
                if method != 'segment_volume xy':
                    run(slices[:1])
            for _ in range(args.repeats):
                for method, run in methods.items():
                    measured = timed(run, slices)
                    if method not in best or measured[0] < best[method][0]:
                        best[method] = measured
        best['inference_detector'] = (*best['inference_detector'][:2], paint_stock(best['inference_detector'][2],
                                                                                   slices))
        stock_rate = len(slices) / best['inference_detector'][0]
        for method, (seconds, cpu_seconds, labels) in best.items():
            rows.append(dict(case=case, preset=CASES[case][0], overrides=CASES[case][1], seeds=list(TEST_SEEDS),
                             slices=len(slices), slice_shape=list(args.shape[1:]),
                             particles_per_slice=round(float(np.mean([len(np.unique(t)) - 1 for t in truth])), 1),
                             method=method, seconds=round(seconds, 2), slices_per_s=round(len(slices) / seconds, 2),
                             speedup=round(len(slices) / seconds / stock_rate, 2),
                             cpu_seconds_per_slice=round(cpu_seconds / len(slices), 3),
                             **({} if labels is None else matches_50(truth, labels))))
            print(rows[-1], flush=True)
    from libnet_mmdet.apis.model import proposal_budget
    return dict(rows=rows, repeats=args.repeats, budget=proposal_budget(model, int(np.prod(args.shape[1:]))))


def tune(args):
    """On the validation slices of every preset: the most particles a slice holds (BUDGET_PACKING); F1@0.5 at each
    number of RPN proposals kept (``rpn.max_per_img``, the RoI heads' work; ``nms_pre`` and detections as in the
    config) and the least that reaches the config's F1 (BUDGET_PROPOSALS_PER_PARTICLE); F1 at a lower ``nms_pre``;
    F1 and the proposals that reach the RoI heads at each objectness floor (BUDGET_MIN_OBJECTNESS) with the
    budget's limits; F1 with the budget rule itself."""
    from libnet_mmdet.apis.model import BUDGET_DIAMETER_PX, proposal_budget, temporary_test_cfg
    model = load_model(args.model_dir)
    area = int(np.prod(args.shape[1:]))
    disc_area = np.pi / 4 * BUDGET_DIAMETER_PX ** 2
    budget = proposal_budget(model, area)
    limits = dict(rpn=dict(max_per_img=budget['rpn']['max_per_img']), rcnn=budget['rcnn'])
    rois = []  # RoIs into the box head per forward pass
    model.roi_head.bbox_roi_extractor.register_forward_hook(lambda module, inputs, output: rois.append(len(inputs[1])))
    config = ours(model, 'config')
    report = dict(shape=list(args.shape), seeds=list(VALIDATION_SEEDS), diameter_px=BUDGET_DIAMETER_PX,
                  budget=budget, presets={})
    for case in TUNE_CASES:
        volumes = [volume(args.data_dir, case, seed, args.shape) for seed in VALIDATION_SEEDS]
        slices = [z for image, _ in volumes for z in image]
        truth = [z for _, labels in volumes for z in labels]
        counts = np.array([len(np.unique(t)) - 1 for t in truth])
        config(slices[:1])  # warm-up

        def score(overrides, run=config):
            rois.clear()
            with temporary_test_cfg(model, overrides):
                seconds, _, labels = timed(run, slices)
            return dict(f1_50=matches_50(truth, labels)['f1_50'], slices_per_s=round(len(slices) / seconds, 2),
                        proposals_per_slice=round(float(np.mean(rois)), 1))
        rows = dict(config=score({}), rule=score({}, ours(model)))
        rows['proposals'] = {n: score(dict(rpn=dict(max_per_img=n))) for n in TUNE_PROPOSALS}
        rows['nms_pre'] = {n: score(dict(rpn=dict(nms_pre=n, max_per_img=min(n, TUNE_NMS_PRE_PROPOSALS))))
                           for n in TUNE_NMS_PRE}
        rows['min_objectness'] = {t: score(dict(limits, rpn=dict(limits['rpn'], min_objectness=t)))
                                  for t in TUNE_MIN_OBJECTNESS}
        needed = min((n for n, row in rows['proposals'].items() if row['f1_50'] >= rows['config']['f1_50']),
                     default=None)
        report['presets'][case] = dict(slices=len(slices), particles_per_slice_max=int(counts.max()),
                                       particles_per_slice_mean=round(float(counts.mean()), 1),
                                       packing=round(float(counts.max() * disc_area / area), 3),
                                       proposals_needed=needed, **rows)
        print(case, json.dumps(report['presets'][case]), flush=True)
    presets = report['presets'].values()
    packing = max(preset['packing'] for preset in presets)
    needed = max(preset['proposals_needed'] or max(TUNE_PROPOSALS) for preset in presets)
    report['derived'] = dict(packing=packing, proposals_needed=needed,
                             proposals_per_particle=round(needed / (packing * area / disc_area), 2))
    print(report['derived'])
    return report


#: Stages of a forward pass for the profile: ``(name, function name, file name ending)``.
STAGES = (('backbone + FPN', 'extract_feat', 'two_stage.py'), ('RPN head', 'predict', 'base_dense_head.py'),
          ('RoI box head', 'predict_bbox', 'standard_roi_head.py'),
          ('RoI mask head + pasting', 'predict_mask', 'standard_roi_head.py'),
          ('painting labels', 'detections_to_labels', 'inference.py'))


def profile(args):
    """cProfile (CPU time, so that other processes on the machine do not count) of the volume path's 2D step on
    the first 10 slices of the dense benchmark case: the share of each stage and the functions that cost most."""
    model = load_model(args.model_dir)
    slices = list(volume(args.data_dir, 'hard', TEST_SEEDS[0], args.shape)[0][:10])
    report = {}
    for proposals in ('config', 'auto'):
        segment = ours(model, proposals)
        segment(slices[:1])
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        segment(slices)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats('tottime').print_stats(15)
        print(f'proposals={proposals}\n{text.getvalue()}')
        stats = pstats.Stats(profiler).stats
        total = sum(entry[2] for entry in stats.values())
        stages = {name: sum(entry[3] for key, entry in stats.items() if key[2] == function and key[0].endswith(file))
                  for name, function, file in STAGES}
        stages['rest (slice preparation, test pipeline, data preprocessor)'] = total - sum(stages.values())
        top = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:12]
        report[proposals] = dict(
            cpu_seconds_per_slice=round(total / len(slices), 4),
            stage_share={name: round(seconds / total, 3) for name, seconds in stages.items()},
            top_functions=[dict(function=f'{osp.basename(key[0])}:{key[1]}({key[2]})', share=round(entry[2] / total, 3))
                           for key, entry in top])
        print(json.dumps(report[proposals], indent=1))
    return dict(slices=len(slices), profile=report)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--tune', action='store_true', help='validation sweep that chose the budget constants')
    parser.add_argument('--profile', action='store_true', help='cProfile the volume path on 10 dense slices')
    parser.add_argument('--cases', nargs='+', default=list(BENCHMARK_CASES), choices=list(CASES))
    parser.add_argument('--shape', nargs=3, type=int, default=(24, 192, 192), help='Z Y X of each volume')
    parser.add_argument('--repeats', type=int, default=2, help='timed runs of each method (the best is kept)')
    parser.add_argument('--device', default='cpu', help="'cpu' (default) or 'cuda:N'")
    parser.add_argument('--amp', action='store_true', help='also time the 2D step in mixed precision')
    parser.add_argument('--model-dir', default='/tmp/d_model', help='demo model (trained here when missing)')
    parser.add_argument('--data-dir', default='/tmp/slice_speed_data', help='cache of the synthetic volumes')
    parser.add_argument('--out', help='JSON output (default benchmarks/results/slice_speed[_tuning|_profile].json)')
    args = parser.parse_args()
    args.shape = tuple(args.shape)
    if args.tune and args.profile:
        parser.error('--tune and --profile: one mode at a time')
    if args.tune or args.profile:  # their cases and repeats are their own, on the CPU
        unused = [flag for flag, value, default in (('--cases', args.cases, list(BENCHMARK_CASES)),
                                                    ('--repeats', args.repeats, 2), ('--device', args.device, 'cpu'),
                                                    ('--amp', args.amp, False)) if value != default]
        if unused:
            parser.error(f"{'--tune' if args.tune else '--profile'} does not use {', '.join(unused)}")

    import torch

    from libnet_mmdet.io import write_json
    mode, run = (('tuning', tune) if args.tune else ('profile', profile) if args.profile else ('', benchmark))
    record = run_record()
    report = run(args)
    report.update(run=finish_record(record), torch_threads=torch.get_num_threads())
    out = args.out or osp.join(RESULTS, 'slice_speed' + (f'_{mode}' if mode else '') + '.json')
    write_json(out, report, indent=1)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
