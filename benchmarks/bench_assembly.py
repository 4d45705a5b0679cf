"""Benchmark: the blockwise 3D assembly (:func:`libnet_mmdet.volume.assembly.assemble_volume`) on 1 and 2 ranks,
its serial share, peak memory per rank at two volume depths, and the Amdahl projection to 2048^3.

Usage:
    python benchmarks/bench_assembly.py                                   # 512^3, fusion and linking (~15 min)
    python benchmarks/bench_assembly.py --shape 64 128 128 --depths 32 --out /tmp/assembly.json   # quick

Input: a packing of touching convex particles (Voronoi cells of random centres cut to a sphere, ~``--diameter``
voxels across) made here with a fixed seed. The "predictor" is the ground truth itself: every view's 2D labels are
the particles' sections (what a perfect, instant model gives; their 3D ids serve as 2D ids), written straight into a
work folder (:func:`libnet_mmdet.volume.testing.work_folder_with_views`), so the time
measured is the assembly's alone — linking (``xy``) or fusing (``xy xz yz``) the views, merging fragments below
``--min-voxels`` and writing the output TIFF — on 1 and on 2 ranks (torch.distributed, gloo, one thread each,
forked processes on this machine). Each rank's peak RSS (``VmHWM``) is read at its end, and the disk use of the
work folder (view arrays and the assembly's scratch, compressed) after the run.

Serial share: from the two times, ``s = 2 * T2 / T1 - 1`` (Amdahl on 2 ranks; it includes whatever the two ranks
contend for: the 2 cores' memory bandwidth, the disk), and the time rank 0 spends in the collective steps
(gathers, waits, the graph and table solves) on 2 ranks, timed directly, over T1. Projection to a 2048^3 volume:
T1 scaled by the number of voxels, then ``T(N) = T1 * (s + (1 - s) / N)`` with each share.

Writes a table and ``benchmarks/results/assembly.json``.
"""
import argparse
import json
import os
import os.path as osp
import platform
import shutil
import tempfile
import time
from datetime import datetime, timezone

import numpy as np
from scipy import ndimage

from libnet_mmdet.volume.testing import work_folder_with_views
from run_record import finish_record, run_record  # noqa: E402 (benchmarks/ is sys.path[0])

RESULTS = osp.join(osp.dirname(osp.abspath(__file__)), 'results', 'assembly.json')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shape', nargs=3, type=int, default=[512, 512, 512], help='(Z, Y, X) of the timed volume')
    parser.add_argument('--depths', nargs='+', type=int, default=[128],
                        help='other depths (Z) for the peak-RSS comparison (the --shape depth is included)')
    parser.add_argument('--diameter', type=float, default=24, help='particle diameter (voxels)')
    parser.add_argument('--slab', type=int, default=16)
    parser.add_argument('--min-voxels', type=int, default=200)
    parser.add_argument('--modes', nargs='+', default=['fusion', 'linking'], choices=['fusion', 'linking'])
    parser.add_argument('--ranks', nargs='+', type=int, default=[1, 2])
    parser.add_argument('--out', default=RESULTS)
    return parser.parse_args()


def particle_labels(shape, diameter, seed=0):
    """(Z, Y, X) uint16 labels of touching convex particles: Voronoi cells of random centres (one per
    ``diameter``^3 voxels) cut to a sphere of ``diameter`` / 2 around their centre."""
    rng = np.random.default_rng(seed)
    n = max(1, int(np.prod(shape) / diameter ** 3))
    centres = (rng.random((n, 3)) * shape).astype(np.int64)
    seeds = np.ones(shape, bool)
    seeds[tuple(centres.T)] = False
    distance, nearest = ndimage.distance_transform_edt(seeds, return_indices=True)
    ids = np.zeros(shape, np.int32)
    ids[tuple(centres.T)] = np.arange(1, n + 1)
    labels = ids[tuple(nearest)]
    labels[distance > diameter / 2] = 0
    return labels.astype(np.uint16)


def _disk_bytes(folder):
    return sum(osp.getsize(osp.join(root, name)) for root, _, names in os.walk(folder) for name in names)


def _peak_rss_mb():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith('VmHWM'))


def _rank_main(rank, world_size, init_file, work_path, shape, views, slab, min_voxels, out, report_dir):
    import torch
    import torch.distributed as dist
    os.sched_setaffinity(0, {rank % os.cpu_count()})  # one core per rank, in the 1-rank run too
    torch.set_num_threads(1)
    if world_size > 1:
        dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=world_size)
    from libnet_mmdet.volume import assembly, blocks, fusion
    from libnet_mmdet.volume.workdir import WorkFolder
    serial = [0.0]

    def timed(function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                serial[0] += time.perf_counter() - started
        return wrapper

    # the collective steps and the solves every rank does on the gathered tables
    blocks.Ranks.gather = timed(blocks.Ranks.gather)
    blocks.Ranks.barrier = timed(blocks.Ranks.barrier)
    for module, name in ((assembly, 'connected_groups'), (fusion, 'connected_groups'), (fusion, 'vote_lut'),
                         (fusion, 'dominant_ids'), (assembly, 'merge_small_lut')):
        setattr(module, name, timed(getattr(module, name)))
    started = time.perf_counter()
    assembly.assemble_volume(WorkFolder(work_path), tuple(shape), tuple(views), slab, min_voxels=min_voxels,
                             out=out, overwrite=True, ranks=blocks.Ranks.current())
    seconds = time.perf_counter() - started
    with open(osp.join(report_dir, f'rank{rank}.json'), 'w') as f:
        json.dump(dict(seconds=seconds, serial_seconds=serial[0], peak_rss_mb=_peak_rss_mb()), f)
    if world_size > 1:
        dist.destroy_process_group()


def run_assembly(world_size, work_path, shape, views, slab, min_voxels, out, temp_dir):
    import torch.multiprocessing as mp
    report_dir = tempfile.mkdtemp(dir=temp_dir)
    init_file = osp.join(report_dir, 'init')
    mp.start_processes(_rank_main, args=(world_size, init_file, work_path, shape, views, slab, min_voxels, out,
                                         report_dir), nprocs=world_size, start_method='spawn')
    reports = []
    for rank in range(world_size):
        with open(osp.join(report_dir, f'rank{rank}.json')) as f:
            reports.append(json.load(f))
    return reports


def summarize(cases, modes, shape):
    """Per mode: the 1- and 2-rank times (seconds) of the full-depth volume, the serial share two ways (fractions
    of T1) and the 2048^3 projections ``T1 * (s + (1 - s) / N)`` in seconds for N = 1, 8, 32 ranks (module
    docstring).

    The timed share is rank 0's time in the collective steps *on 2 ranks* over T1: on one rank the gathers and
    barriers cost nothing, so the 1-rank time would understate it (0.19 % instead of 0.98 % for fusion).
    """
    summary = []
    for mode in modes:
        timed = {c['ranks']: c for c in cases if c['mode'] == mode and c['shape'][0] == shape[0]}
        if 1 in timed and 2 in timed:
            t1, t2 = timed[1]['seconds'], timed[2]['seconds']
            shares = dict(amdahl=max(0.0, 2 * t2 / t1 - 1), timed=timed[2]['serial_seconds_rank0'] / t1)
            t1_2048 = t1 * 2048 ** 3 / np.prod(shape)
            row = dict(mode=mode, t1=t1, t2=t2, speedup=t1 / t2, serial_share_amdahl=shares['amdahl'],
                       serial_share_timed=shares['timed'])
            for name, share in shares.items():
                row[f'projected_2048_seconds_{name}'] = {n: t1_2048 * (share + (1 - share) / n) for n in (1, 8, 32)}
            summary.append(row)
            print(json.dumps(row))
    return summary


def main():
    run = run_record()
    args = parse_args()
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    load_before = os.getloadavg()
    results = dict(date=datetime.now(timezone.utc).isoformat(timespec='seconds'), machine=platform.processor() or
                   platform.machine(), cpus=os.cpu_count(), load_before=load_before, args=vars(args), cases=[])
    with tempfile.TemporaryDirectory(prefix='bench_assembly_') as temp_dir:
        for depth in sorted(set(args.depths) | {args.shape[0]}, reverse=True):
            shape = (depth,) + tuple(args.shape[1:])
            labels = particle_labels(shape, args.diameter)
            n_particles = len(np.unique(labels)) - 1
            for mode in args.modes:
                views = ('xy',) if mode == 'linking' else ('xy', 'xz', 'yz')
                work_folder_with_views(osp.join(temp_dir, f'work_{mode}_{depth}'), {view: labels for view in views},
                                       args.slab)
            del labels
            for mode in args.modes:
                views = ('xy',) if mode == 'linking' else ('xy', 'xz', 'yz')
                work_path = osp.join(temp_dir, f'work_{mode}_{depth}')
                outputs = []
                for world_size in args.ranks if depth == args.shape[0] else [2]:
                    out = osp.join(temp_dir, f'labels_{mode}_{depth}_{world_size}.tif')
                    reports = run_assembly(world_size, work_path, shape, views, args.slab, args.min_voxels, out,
                                           temp_dir)
                    outputs.append(out)
                    case = dict(mode=mode, shape=shape, particles=n_particles, ranks=world_size,
                                work_bytes_per_voxel=_disk_bytes(work_path) / np.prod(shape),
                                seconds=max(r['seconds'] for r in reports),
                                serial_seconds_rank0=reports[0]['serial_seconds'],
                                peak_rss_mb=[r['peak_rss_mb'] for r in reports])
                    results['cases'].append(case)
                    print(json.dumps(case))
                if len(outputs) > 1:
                    import tifffile
                    reference = tifffile.imread(outputs[0])
                    same = all(np.array_equal(reference, tifffile.imread(path)) for path in outputs[1:])
                    results['cases'][-1]['equal_to_one_rank'] = same
                shutil.rmtree(work_path)
    results['load_after'] = os.getloadavg()
    results['summary'] = summarize(results['cases'], args.modes, args.shape)
    for mode in args.modes:
        rss = {c['shape'][0]: max(c['peak_rss_mb']) for c in results['cases'] if c['mode'] == mode
               and c['ranks'] == 2}
        if len(rss) > 1:
            print(f'{mode}: peak RSS per rank (2 ranks) by depth: {rss}')
    from libnet_mmdet.io import write_json
    write_json(args.out, dict(results, run=finish_record(run)), indent=1)


if __name__ == '__main__':
    main()
