"""Benchmark: particle table and 3-D matching on a synthetic volume of ~1000 spheres.

Usage:
    python benchmarks/bench_analysis.py                      # 512^3, 1000 spheres (the speed goal: <= 60 s)
    python benchmarks/bench_analysis.py --size 256 --particles 150 --out /tmp/analysis.json   # quick run

Builds a (Z, Y, X) volume of non-overlapping spheres (radius 10-28 voxels, random sequential placement; every
tenth one hollow), a phase volume (NMC inside the spheres, a 3-voxel carbon-binder cap over the upper half of
each sphere, pore elsewhere), then times :func:`libnet_mmdet.analysis.particle_table` and
:func:`libnet_mmdet.evaluation.match_instances` (ground truth against the same labels shifted by one voxel).
It prints a table and writes the numbers as JSON (atomically) to ``benchmarks/results/analysis.json``.
Set ``OMP_NUM_THREADS`` to the number of cores to measure on (the goal is stated for 2 cores).
"""
import argparse
import os
import time

import numpy as np

from libnet_mmdet.analysis import CARBON_BINDER, NMC, particle_table
from libnet_mmdet.io import write_json
from libnet_mmdet.evaluation import match_instances, matching_summary
from run_record import finish_record, run_record  # noqa: E402 (benchmarks/ is sys.path[0])

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results', 'analysis.json')


def sphere_phantom(size, n_particles, seed=0, radius_range=(10, 28), coat_voxels=3, max_tries=200_000):
    """Random non-overlapping spheres in a ``size``^3 volume.

    Returns:
        tuple: ``(labels_zyx uint16, phases_zyx uint8)``; fewer than ``n_particles`` spheres when the volume is
        too full to place them within ``max_tries`` attempts.
    """
    rng = np.random.default_rng(seed)
    labels_zyx = np.zeros((size,) * 3, np.uint16)
    phases_zyx = np.zeros((size,) * 3, np.uint8)
    placed = 0
    for _ in range(max_tries):
        if placed == n_particles:
            break
        radius = rng.uniform(*radius_range)
        reach = int(np.ceil(radius)) + coat_voxels
        centre = rng.uniform(reach + 1, size - 3 - reach, 3)
        low = np.floor(centre - reach).astype(int)
        box = tuple(slice(lo, lo + 2 * reach + 2) for lo in low)
        grid = np.indices([2 * reach + 2] * 3, dtype=np.float32).reshape(3, -1).T + low
        distance = np.linalg.norm(grid - centre, axis=1).reshape([2 * reach + 2] * 3)
        inside = distance <= radius
        if labels_zyx[box][distance <= radius + 1].any():  # keep a one-voxel gap between spheres
            continue
        placed += 1
        labels_zyx[box][inside] = placed
        hollow_core = distance <= (0.4 * radius if placed % 10 == 0 else -1)
        phases_zyx[box][inside & ~hollow_core] = NMC
        upper = (grid[:, 0] > centre[0]).reshape(distance.shape)
        cap = (distance > radius) & (distance <= radius + coat_voxels) & upper & (labels_zyx[box] == 0)
        phases_zyx[box][cap] = CARBON_BINDER
    return labels_zyx, phases_zyx


def main():
    run = run_record()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=int, default=512, help='edge of the cubic volume, voxels (default 512)')
    parser.add_argument('--particles', type=int, default=1000, help='spheres to place (default 1000)')
    parser.add_argument('--voxel-size-nm', type=float, default=50.0)
    parser.add_argument('--out', default=RESULTS, help=f'JSON output (default {RESULTS})')
    args = parser.parse_args()

    start = time.perf_counter()
    labels_zyx, phases_zyx = sphere_phantom(args.size, args.particles)
    build_s = time.perf_counter() - start

    start = time.perf_counter()
    df = particle_table(labels_zyx, phases_zyx, voxel_size_nm=args.voxel_size_nm)
    table_s = time.perf_counter() - start

    shifted = np.roll(labels_zyx, 1, axis=2)
    start = time.perf_counter()
    matching = match_instances(labels_zyx, shifted)
    match_s = time.perf_counter() - start

    result = {
        'volume_shape': list(labels_zyx.shape),
        'particles': int(len(df)),
        'build_phantom_s': round(build_s, 2),
        'particle_table_s': round(table_s, 2),
        'particle_table_ms_per_particle': round(1e3 * table_s / len(df), 2),
        'match_instances_3d_s': round(match_s, 2),
        'match_f1_50_shift_1_voxel': round(matching_summary(matching)['f1_50'], 4),
        'mean_sphericity': round(float(df['sphericity'].mean()), 4),
        'goal_particle_table_s': 60.0,
    }
    width = max(map(len, result))
    for key, value in result.items():
        print(f'{key:<{width}}  {value}')
    write_json(args.out, dict(result, run=finish_record(run)), indent=2)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
