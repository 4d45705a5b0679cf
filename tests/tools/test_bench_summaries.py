"""The summaries benchmark scripts compute from their measured rows (a benchmarks audit found two wrong)."""
import pytest

from helpers import import_benchmark


def test_size_spread_pools_the_slices_counts():
    """METRICS.md: counts pooled over slices, then the ratio (a slice of 10 particles and one of 100 do not weigh
    the same, as a mean of per-slice F1 would have them)."""
    spread = import_benchmark('bench_size_spread')
    counts = [[9, 1, 0], [50, 0, 50]]  # F1 0.947 and 0.667: mean 0.807
    assert spread.pooled_f1(counts) == pytest.approx(2 * 59 / (2 * 59 + 1 + 50), abs=1e-4)
    assert spread.pooled_f1([[0, 0, 0]]) == 0.0


def test_assembly_timed_share_is_rank_0s_collective_time_on_two_ranks():
    assembly = import_benchmark('bench_assembly')
    shape = [512, 512, 512]
    cases = [dict(mode='fusion', shape=shape, ranks=1, seconds=100.0, serial_seconds_rank0=0.1),
             dict(mode='fusion', shape=shape, ranks=2, seconds=52.0, serial_seconds_rank0=1.0),
             dict(mode='fusion', shape=[128, 512, 512], ranks=2, seconds=13.0, serial_seconds_rank0=0.5)]
    (row,) = assembly.summarize(cases, ['fusion', 'linking'], shape)
    assert row['serial_share_timed'] == pytest.approx(0.01) and row['serial_share_amdahl'] == pytest.approx(0.04)
    t1_2048 = 100.0 * 64
    assert row['projected_2048_seconds_timed'][32] == pytest.approx(t1_2048 * (0.01 + 0.99 / 32))
    assert row['projected_2048_seconds_amdahl'][8] == pytest.approx(t1_2048 * (0.04 + 0.96 / 8))


def test_each_size_spread_mode_writes_its_own_results_file():
    """The validation slices, --volumes and --zero-shot wrote one default file: a run of one replaced another's."""
    spread = import_benchmark('bench_size_spread')
    outs = [spread.parse_args(argv).out for argv in ([], ['--volumes'], ['--zero-shot'])]
    assert [out.rsplit('/', 1)[-1] for out in outs] == ['size_spread_val.json', 'size_spread_3d.json',
                                                        'size_spread_zero_shot.json']
    assert spread.parse_args(['--volumes', '--out', 'x.json']).out == 'x.json'


@pytest.mark.parametrize('argv, message', [
    (['--tune', '--device', 'cuda:0'], '--tune does not use --device'),  # it loaded the model on the CPU anyway
    (['--profile', '--cases', 'clean', '--repeats', '3'], '--profile does not use --cases, --repeats'),
    (['--tune', '--profile'], '--tune and --profile: one mode at a time')])
def test_slice_speed_refuses_the_flags_a_mode_does_not_use(argv, message):
    from helpers import run_tool
    result = run_tool('benchmarks/bench_slice_speed.py', *argv, timeout=120)
    assert result.returncode == 2 and message in result.stderr


def test_edge_level_of_touching_instances_is_that_of_their_union():
    """bench_real_outlines compares our instances' outline with the expert's phase mask: the seams between touching
    instances (inside bright particle) are no outline of the phase (they raised ours to 1.0 against 0.7)."""
    import numpy as np
    from scipy import ndimage
    outlines = import_benchmark('bench_real_outlines')
    labels = np.zeros((96, 96), np.int32)
    for k, (y, x) in enumerate(((y, x) for y in range(24, 72, 12) for x in range(24, 72, 12)), 1):
        labels[y:y + 12, x:x + 12] = k  # a 4 x 4 grid of touching squares
    image = ndimage.gaussian_filter((labels > 0).astype(float), 2.0)
    levels = outlines.edge_levels(image, labels > 0, dict(ours=labels, expert=labels > 0))
    assert levels['ours'] == levels['expert'] < 0.9
