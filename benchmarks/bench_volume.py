"""Benchmark: peak memory (RSS) and speed of streaming volume segmentation (:func:`libnet_mmdet.apis.segment_volume`)
against the plain in-memory way (whole stack in memory, ``mmdet.apis.inference_detector`` per slice, results kept).

Usage:
    python benchmarks/bench_volume.py                          # 256^3, 512^3, 1024x256x256 (~10 min, 1 thread)
    python benchmarks/bench_volume.py --sizes 128 --tall 0 --model-slices 2 --out /tmp/volume.json   # quick

Two parts, each case in a fresh worker process whose peak RSS (``VmHWM``) is read from ``/proc/self/status``:

* **pipeline** (whole volume): a deterministic stand-in predictor
  (:class:`libnet_mmdet.volume.testing.IntensityPredictor`, milliseconds per slice) replaces the network so that
  every slice of a 256^3, a 512^3 and a 1024x256x256 TIFF stack goes through reading, 2D labelling, linking
  (``xy``) or three-view fusion (``xy xz yz``), relabelling and the output TIFF. This measures what the streaming
  design controls: memory must not grow with the volume (it grows with the slice area: a slab is held). Compared
  with the in-memory way: ``tifffile.imread`` the stack, label every slice into an in-memory stack,
  :func:`libnet_mmdet.volume.link_slices`.
* **model** (first ``--model-slices`` z-slices): the CPU-tiny Mask R-CNN (``configs/nmc/...cpu-tiny.py``),
  **randomly initialised** with a fixed seed (speed and memory do not depend on the weights, but an untrained
  model scores almost every proposal ~0.5, so each image carries the maximum 500 detections: slower than a
  trained model), through ``segment_volume`` (tiled at the 256 px training size, one image per forward pass; for
  512 px slices also untiled, the same work as the baseline) and through ``inference_detector`` on the same slices
  (whole slice at once, the config's test pipeline, the ``DetDataSample`` results kept in a list as a plain
  script would).

Writes a table and ``benchmarks/results/volume.json``. Set ``OMP_NUM_THREADS`` to the cores to measure on.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from run_record import finish_record, run_record  # noqa: E402 (benchmarks/ is sys.path[0])

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results', 'volume.json')
CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs', 'nmc',
                      'mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py')
N_LEVELS = 8  # intensity levels of the stand-in volume (the stand-in predictor labels each level separately)


def memory_mib():
    """(current RSS, peak RSS) of this process in MiB, from /proc/self/status."""
    fields = {}
    with open('/proc/self/status') as f:
        for line in f:
            key, _, value = line.partition(':')
            fields[key] = value
    return int(fields['VmRSS'].split()[0]) / 1024, int(fields['VmHWM'].split()[0]) / 1024


def write_sphere_stack(path, shape, seed=0):
    """Write a (Z, Y, X) uint8 TIFF of random overlapping spheres (radius 6-16 voxels, ~35 % filled, N_LEVELS grey
    levels), page by page so that not even the generator holds the volume; returns the number of spheres."""
    import tifffile
    from skimage.draw import disk
    rng = np.random.default_rng(seed)
    n_spheres = int(0.35 * np.prod(shape) / (4 / 3 * np.pi * 11 ** 3) * 1.4)
    centres = rng.uniform(0, shape, (n_spheres, 3))
    radii = rng.uniform(6, 16, n_spheres)
    levels = (rng.integers(1, N_LEVELS + 1, n_spheres) * (255 // N_LEVELS)).astype(np.uint8)

    def pages():
        for z in range(shape[0]):
            page = np.zeros(shape[1:], np.uint8)
            for i in np.flatnonzero(np.abs(centres[:, 0] - z) < radii):
                page[disk(tuple(centres[i, 1:]), np.sqrt(radii[i] ** 2 - (centres[i, 0] - z) ** 2),
                          shape=page.shape)] = levels[i]
            yield page
    tifffile.imwrite(path, pages(), shape=tuple(shape), dtype=np.uint8)
    return n_spheres


def run_case(case):
    """The worker: run one case (dict) and return its measurements."""
    import tifffile
    import torch

    from libnet_mmdet.apis import init_segmenter, segment_volume
    from libnet_mmdet.io import max_label
    from libnet_mmdet.volume import link_slices
    from libnet_mmdet.volume.testing import IntensityPredictor
    kind, stack, out = case['kind'], case['stack'], case['out']
    if case['model']:
        torch.manual_seed(0)  # the same random weights in every worker
        model = init_segmenter(CONFIG, None, device='cpu')
        n_slices = case['model_slices']
    else:
        model = IntensityPredictor()
    rss_before, _ = memory_mib()
    start = time.perf_counter()
    if kind == 'segment_volume':
        volume = tifffile.memmap(stack, mode='r')[:n_slices] if case['model'] else stack
        labels = segment_volume(model, volume, out=out, views=tuple(case['views']), tile_size=case['tile_size'],
                                progress=False, overwrite=True)  # every case writes the same labels.tif
        n_slices = sum(labels.shape[{'xy': 0, 'xz': 1, 'yz': 2}[view]] for view in case['views'])
        count = lambda: max_label(out)  # noqa: E731  (after the RSS reading: reads the whole output)
    elif case['model']:  # plain mmdet: whole stack in memory, one inference_detector call per slice, keep results
        from mmcv.transforms import Compose
        from mmdet.apis import inference_detector
        from mmdet.utils import get_test_pipeline_cfg
        # inference_detector's own array path swaps the loader's type for LoadImageFromNDArray but keeps its
        # arguments, which fails for LoadTomoImageFromFile(normalize=...): give it the config's pipeline (our
        # loader normalises an in-memory 'img' itself).
        pipeline = Compose(get_test_pipeline_cfg(model.cfg))
        volume = tifffile.imread(stack)
        results = [inference_detector(model, volume[z], test_pipeline=pipeline) for z in range(n_slices)]
        count = lambda: sum(int((r.pred_instances.scores >= 0.5).sum()) for r in results)  # noqa: E731
    else:  # plain in-memory assembly: whole stack, in-memory 2D labels, link_slices
        volume = tifffile.imread(stack)
        per_slice = np.stack([labels_hw for labels_hw, _ in model(list(volume))])
        labels = link_slices(per_slice)
        count, n_slices = lambda: int(labels.max()), volume.shape[0]  # noqa: E731
    seconds = time.perf_counter() - start
    _, peak = memory_mib()
    n_particles = count()
    return dict(seconds=round(seconds, 2), slices=n_slices, slices_per_s=round(n_slices / seconds, 2),
                rss_before_mib=round(rss_before), peak_rss_mib=round(peak),
                peak_minus_before_mib=round(peak - rss_before), particles_or_detections=n_particles)


def worker_result(case):
    """Run a case in a fresh Python process (its own peak RSS) and return the measurements."""
    completed = subprocess.run([sys.executable, os.path.abspath(__file__), '--worker', json.dumps(case)],
                               capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f'worker failed for {case}:\n{completed.stderr[-3000:]}')
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main():
    run = run_record()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', nargs='+', type=int, default=[256, 512], help='edge of the cubic test volumes')
    parser.add_argument('--tall', type=int, default=1024,
                        help='also run the pipeline part on a TALL x 256 x 256 stack (0: skip)')
    parser.add_argument('--model-slices', type=int, default=4, help='z-slices run through the real model')
    parser.add_argument('--skip-model', action='store_true', help='only the stand-in pipeline part')
    parser.add_argument('--out', default=RESULTS, help=f'JSON output (default {RESULTS})')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_case(json.loads(args.worker))))
        return

    from libnet_mmdet.io import write_json
    shapes = [(size,) * 3 for size in args.sizes] + ([(args.tall, 256, 256)] if args.tall else [])
    rows = []
    with tempfile.TemporaryDirectory(prefix='bench_volume_') as tmp:
        for shape in shapes:
            stack = os.path.join(tmp, 'spheres_{}x{}x{}.tif'.format(*shape))
            n_spheres = write_sphere_stack(stack, shape)
            cases = [('pipeline', 'segment_volume', ['xy'], 'auto'),
                     ('pipeline', 'segment_volume', ['xy', 'xz', 'yz'], 'auto'),
                     ('pipeline', 'in-memory', ['xy'], 'auto')]
            if not args.skip_model and shape[0] == shape[1]:
                cases += [('model', 'segment_volume', ['xy'], 'auto'), ('model', 'inference_detector', ['xy'], None)]
                if shape[1] > 256:  # larger than the training crop: also without tiling, for the same work
                    cases.append(('model', 'segment_volume', ['xy'], None))
            for part, kind, views, tile_size in cases:
                case = dict(kind=kind, stack=stack, out=os.path.join(tmp, 'labels.tif'), views=views,
                            model=part == 'model', model_slices=args.model_slices, tile_size=tile_size)
                tiling = '' if part == 'pipeline' or kind != 'segment_volume' else \
                    (' (256 px tiles)' if tile_size == 'auto' and shape[1] > 256 else ' (whole slice)')
                row = dict(part=part, volume='x'.join(map(str, shape)), spheres=n_spheres, method=kind + tiling,
                           views=' '.join(views), **worker_result(case))
                rows.append(row)
                print(row, flush=True)
    columns = list(rows[0])
    print('\n| ' + ' | '.join(columns) + ' |\n|' + '---|' * len(columns))
    for row in rows:
        print('| ' + ' | '.join(str(row[c]) for c in columns) + ' |')
    report = dict(
        benchmark='bench_volume',
        notes=('pipeline rows: whole volume, stand-in predictor (IntensityPredictor) instead of the network; model '
               f'rows: first {args.model_slices} z-slices, CPU-tiny Mask R-CNN with random initialisation'),
        rows=rows)
    write_json(args.out, dict(report, run=finish_record(run)), indent=1)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
