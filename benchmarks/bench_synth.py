"""Benchmark: synthetic volume generation + writing, for each preset (speed goal: 128x256x256 in <= 60 s, 2 cores).

Usage:
    python benchmarks/bench_synth.py                                   # 128x256x256, clean/typical/hard
    python benchmarks/bench_synth.py --shape 64 128 128 --presets typical --out /tmp/synth.json   # quick run

For each preset it times :func:`libnet_mmdet.synth.generate_volume` (split into microstructure, imaging and
ground-truth table) and :func:`libnet_mmdet.synth.write_dataset` (TIFF stacks, CSV, JSON and the 2D exports of
every z-slice as COCO + VIA) into a temporary folder, prints a table and writes the numbers as JSON (atomically)
to ``benchmarks/results/synth.json``. The first preset also pays for building the sparse projector (cached for
the next ones). Set ``OMP_NUM_THREADS`` to the number of cores to measure on (the goal is stated for 2 cores).
"""
import argparse
import os
import tempfile
import time

from libnet_mmdet.io import write_json
from libnet_mmdet.synth import PRESETS, generate_volume, preset_params, write_dataset
from run_record import finish_record, run_record  # noqa: E402 (benchmarks/ is sys.path[0])

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results', 'synth.json')
GOAL_S = 60.0


def bench_preset(shape, preset, seed, axes):
    """Generate and write one volume; return a dict of timings (s) and facts."""
    start = time.perf_counter()
    volume = generate_volume(shape, preset_params(preset), seed=seed)
    generate_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as out_dir:
        start = time.perf_counter()
        write_dataset(out_dir, volume, axes=axes, overwrite=True)
        write_s = time.perf_counter() - start
    return {
        'preset': preset, 'particles': volume.summary['n_particles'],
        'particle_fraction': volume.summary['particle_fraction'],
        'carbon_binder_fraction': volume.summary['phase_fractions']['carbon_binder'],
        'projections': volume.summary['n_projection_angles'],
        **{f'{stage}_s': round(seconds, 2) for stage, seconds in volume.timings_s.items()},
        'generate_s': round(generate_s, 2), 'write_s': round(write_s, 2), 'total_s': round(generate_s + write_s, 2),
    }


def main():
    run = run_record()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--shape', nargs=3, type=int, default=[128, 256, 256], metavar=('Z', 'Y', 'X'))
    parser.add_argument('--presets', nargs='+', choices=sorted(PRESETS), default=['clean', 'typical', 'hard'])
    parser.add_argument('--export-axes', nargs='+', choices=['z', 'y', 'x'], default=['z'])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=RESULTS, help=f'JSON output (default {RESULTS})')
    args = parser.parse_args()

    rows = [bench_preset(tuple(args.shape), preset, args.seed, args.export_axes) for preset in args.presets]
    columns = list(rows[0])
    print(' | '.join(columns))
    for row in rows:
        print(' | '.join(str(row[column]) for column in columns))
    result = {
        'volume_shape': list(args.shape), 'export_axes': args.export_axes, 'goal_total_s': GOAL_S,
        'presets': rows,
    }
    write_json(args.out, dict(result, run=finish_record(run)), indent=2)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
