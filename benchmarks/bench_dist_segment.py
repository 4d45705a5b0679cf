"""Benchmark: distributed volume segmentation (``tools/dist_segment.sh``) against one process — the whole pipeline
with a model: inference, the blockwise 3D assembly on every rank, the output.

Usage:
    python benchmarks/bench_dist_segment.py [--demo demo_out | --config C --checkpoint P] [--shape 32 160 160]
        [--ranks 2] [--views xy] [--device cpu] [--out benchmarks/results/dist_segment.json]

Model: the one trained by ``make demo`` (``<demo>/train_config.py`` and its last checkpoint), or ``--config`` and
``--checkpoint``. Volume: a synthetic ``typical`` volume generated here. Measured, each as a fresh command (model
loading included, as a user runs it):

1. ``tools/segment.py`` in one process (``--keep-work``);
2. ``tools/dist_segment.sh`` with ``--ranks`` processes (on the CPU: gloo, one thread per process; ``--keep-work``);
3. and 4. each command again on its kept work folder: all inference is reused, so these time what is left — start-up,
   reading and checksumming the input, the 3D assembly and writing — in one process and on the ranks.

The outputs of 1 and 2 must be identical. Serial share from the two full runs (Amdahl on N ranks):
``s = (N * T_N / T_1 - 1) / (N - 1)``, expected speed-up ``1 / (s + (1 - s) / n)``. Writes a table and JSON.
"""
import argparse
import os
import os.path as osp
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import tifffile

from libnet_mmdet.io import write_json
from libnet_mmdet.synth import generate_volume, preset_params
from run_record import finish_record, run_record  # noqa: E402 (benchmarks/ is sys.path[0])

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--demo', default='demo_out', help='folder of a finished `make demo` run')
    parser.add_argument('--config', help='model config (with --checkpoint, instead of --demo)')
    parser.add_argument('--checkpoint')
    parser.add_argument('--shape', nargs=3, type=int, default=[32, 160, 160])
    parser.add_argument('--ranks', type=int, default=2)
    parser.add_argument('--views', nargs='+', default=['xy'])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', default='benchmarks/results/dist_segment.json')
    return parser.parse_args()


def timed(command, env):
    started = time.time()
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f'{" ".join(command)} failed:\n{result.stderr[-3000:]}')
    return time.time() - started


def main():
    run = run_record()
    args = parse_args()
    config, checkpoint = args.config, args.checkpoint
    if config is None:
        config = osp.join(args.demo, 'train_config.py')
        with open(osp.join(args.demo, 'work_dir', 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHON=sys.executable, PORT='29541')
    if args.device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    with tempfile.TemporaryDirectory() as tmp:
        stack = osp.join(tmp, 'stack.tif')
        tifffile.imwrite(stack, generate_volume(tuple(args.shape), preset_params('typical', mean_diameter_vox=22),
                                                seed=21).image_zyx)
        common = ['--config', osp.abspath(config), '--checkpoint', osp.abspath(checkpoint), '--device', args.device,
                  '--views', *args.views]
        one, many = osp.join(tmp, 'one.tif'), osp.join(tmp, 'many.tif')
        one_process = [sys.executable, 'tools/segment.py', stack, '--out', one, '--keep-work', *common]
        distributed = ['bash', 'tools/dist_segment.sh', stack, str(args.ranks), '--out', many, '--keep-work', *common]
        t_one, t_many = timed(one_process, env), timed(distributed, env)
        identical = bool(np.array_equal(tifffile.imread(one), tifffile.imread(many)))
        t_rest_one, t_rest_many = timed(one_process + ['--overwrite'], env), timed(distributed + ['--overwrite'], env)
    n_slices = sum(args.shape[{'xy': 0, 'xz': 1, 'yz': 2}[view]] for view in args.views)
    serial_fraction = max(0.0, (args.ranks * t_many / t_one - 1) / (args.ranks - 1))

    def expected(n):
        return round(1 / (serial_fraction + (1 - serial_fraction) / n), 2)

    result = dict(
        command=' '.join(sys.argv), date=time.strftime('%Y-%m-%d %H:%M'),
        machine=dict(cpus=os.cpu_count(), processor=platform.processor() or platform.machine(), device=args.device),
        shape=args.shape, views=args.views, slices=n_slices, ranks=args.ranks, seconds_one_process=round(t_one, 1),
        seconds_distributed=round(t_many, 1), seconds_without_inference_one_process=round(t_rest_one, 1),
        seconds_without_inference_distributed=round(t_rest_many, 1),
        measured_speedup=round(t_one / t_many, 2), serial_fraction=round(serial_fraction, 3),
        expected_speedup={n: expected(n) for n in (2, 4, 8, 16, 32)}, identical_output=identical)
    print(f"{n_slices} slices, views {args.views}: 1 process {t_one:.1f} s, {args.ranks} ranks {t_many:.1f} s "
          f"(speed-up {t_one / t_many:.2f}, serial share {100 * serial_fraction:.1f} %); without inference "
          f"{t_rest_one:.1f} s / {t_rest_many:.1f} s; identical output: {identical}")
    print('expected speed-up on N ranks:', result['expected_speedup'])
    write_json(args.out, dict(result, run=finish_record(run)), indent=1)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
