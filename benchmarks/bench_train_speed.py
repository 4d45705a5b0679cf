"""Training speed: our ``tools/train.py`` vs MMDetection's own ``tools/train.py`` on the same config and data.

Usage:
    python benchmarks/bench_train_speed.py [--config demo_out/train_config.py] [--iters 60]
                                           [--out benchmarks/results/train_speed.json]

Both tools train the same config (by default the one ``make demo`` wrote: CPU-tiny on the synthetic training
volume) for ``--iters`` iterations in a fresh work dir; the mean of MMEngine's logged per-iteration ``time`` after
the first 20 iterations (warm-up) is compared. Prints a table and writes JSON.
"""
import argparse
import os
import os.path as osp
import platform
import re
import subprocess
import sys
import tempfile
import time

import mmdet

from libnet_mmdet.io import write_json
from run_record import finish_record, run_record  # noqa: E402 (benchmarks/ is sys.path[0])

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = {
    'libnet-mmdet tools/train.py': osp.join(REPO_ROOT, 'tools', 'train.py'),
    'mmdet tools/train.py (stock)': osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py'),
}
ITER_TIME = re.compile(r'Iter\(train\) \[\s*(\d+)/\d+\].*?\btime: ([0-9.]+)')


def time_per_iteration(tool, config, iters, work_dir):
    """Run ``tool`` for ``iters`` iterations; return (mean s/iter after warm-up, wall seconds)."""
    command = [sys.executable, tool, config, '--work-dir', work_dir, '--cfg-options',
               f'train_cfg.max_iters={iters}', 'default_hooks.logger.interval=10',
               f'default_hooks.checkpoint.interval={iters + 1}']
    started = time.time()
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    wall = time.time() - started
    if result.returncode != 0:
        raise RuntimeError(f'{tool} failed:\n{result.stderr[-3000:]}')
    times = [float(t) for i, t in ITER_TIME.findall(result.stdout + result.stderr) if int(i) > 20]
    if not times:
        raise RuntimeError(f'{tool}: no iteration times logged after warm-up; raise --iters')
    return sum(times) / len(times), wall


def main():
    run = run_record()
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='demo_out/train_config.py')
    parser.add_argument('--iters', type=int, default=60)
    parser.add_argument('--out', default='benchmarks/results/train_speed.json')
    args = parser.parse_args()
    rows = {}
    for name, tool in TOOLS.items():
        with tempfile.TemporaryDirectory() as work_dir:
            seconds, wall = time_per_iteration(tool, osp.abspath(args.config), args.iters, work_dir)
        rows[name] = dict(seconds_per_iter=round(seconds, 3), iters_per_second=round(1 / seconds, 3),
                          wall_seconds=round(wall, 1))
        print(f'{name:32s} {seconds:.3f} s/iter  ({1 / seconds:.2f} it/s, {wall:.0f} s wall)', flush=True)
    ours, stock = (rows[name]['iters_per_second'] for name in TOOLS)
    result = dict(command=' '.join(sys.argv), date=time.strftime('%Y-%m-%d %H:%M'), config=args.config,
                  iters=args.iters, machine=dict(cpus=os.cpu_count(), processor=platform.processor()),
                  tools=rows, speed_ratio_ours_over_stock=round(ours / stock, 3))
    print(f"speed ratio (ours / stock): {result['speed_ratio_ours_over_stock']}")
    write_json(args.out, dict(result, run=finish_record(run)), indent=1)


if __name__ == '__main__':
    main()
