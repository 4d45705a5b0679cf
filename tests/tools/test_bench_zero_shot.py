"""benchmarks/bench_zero_shot.py's MATBOX rows (a real phase volume rendered and segmented): the particle-phase Dice
against the NMC phase and the share of the split's particles found whole; its argument check."""
import argparse

import numpy as np
import pytest
import tifffile

from helpers import import_benchmark, run_tool


@pytest.fixture(scope='module')
def bench():
    return import_benchmark('bench_zero_shot')


def test_matbox_rows_score_against_the_nmc_phase_and_its_split(bench, tmp_path, monkeypatch):
    from libnet_mmdet.analysis import split_particles
    phases = np.zeros((24, 48, 48), np.uint8)  # two touching balls of NMC (1) in pore (0), a carbon-binder slab (2)
    zz, yy, xx = np.mgrid[:24, :48, :48]
    for centre in ((12, 24, 15), (12, 24, 31)):
        phases[np.sum((np.stack([zz, yy, xx], -1) - centre) ** 2, -1) < 81] = 1
    phases[:, :4] = 2
    path = tmp_path / 'matbox.tif'
    tifffile.imwrite(path, phases)
    split = split_particles(phases == 1)
    assert split.max() == 2
    one_missing = np.where(split == 2, 0, split)
    outputs = iter([(split, 1.0, 1.0), (one_missing, 1.0, 1.0)])  # a perfect linking and a fusion missing a ball
    monkeypatch.setattr(bench, 'MATBOX', str(path))
    monkeypatch.setattr(bench, 'segment_timed', lambda *args: next(outputs))
    args = argparse.Namespace(presets=['clean'], fusion=True, skip=['watershed'], seeds=[5000], smooth='auto')

    rows = {row['method']: row for row in bench.matbox_rows({'generalist': dict(segmenter=None)}, args)}

    assert set(rows) == {'generalist_linked', 'generalist_fused', 'otsu'}
    assert rows['generalist_linked']['dice'] == 1.0 and rows['generalist_linked']['split_sized_found'] == 1.0
    assert rows['generalist_linked']['f1_50'] == 1.0 and rows['generalist_linked']['instances'] == 2
    assert rows['generalist_fused']['split_sized_found'] == 0.5 and rows['generalist_fused']['instances'] == 1
    assert rows['generalist_fused']['dice'] == pytest.approx(2 / 3, abs=0.01)
    assert 'instances' not in rows['otsu'] and rows['otsu']['dice'] > 0.8
    fused_line = f"| clean | generalist_fused | {rows['generalist_fused']['dice']:.3f} | 1 | 0.500 |"
    assert fused_line in bench.matbox_markdown(list(rows.values()))


def test_nothing_to_score_is_refused():
    result = run_tool('benchmarks/bench_zero_shot.py', '--no-synthetic', '--no-real', timeout=300)
    assert result.returncode == 2
    assert '--no-synthetic --no-real: nothing to score (add --matbox)' in result.stderr


def test_a_test_seed_that_tunes_another_ones_watershed_is_refused():
    """Seed S's watershed is tuned on seed S + 1000 of the same shape: scoring that seed too scores a tuning volume."""
    result = run_tool('benchmarks/bench_zero_shot.py', '--seeds', '5000', '6000', '--no-real', timeout=300)
    assert result.returncode == 2
    assert '--seeds: [6000] would be scored and also tune the watershed of the seed 1000 below' in result.stderr


def test_synthetic_table_says_which_result_each_2d_score_is_of(bench):
    def mean_row(method, f1_3d, f1_2d):
        return dict(preset='hard', diameter_px=12.0, method=method, f1_50=f1_3d, f1_50_2d=f1_2d, scale=2.5)

    table = bench.synthetic_markdown([mean_row('generalist_linked', 0.65, 0.835),
                                      mean_row('generalist_fused', 0.92, 0.845)])
    header, _, row = table.splitlines()
    columns = [cell.strip() for cell in header.strip('|').split('|')]
    cells = dict(zip(columns, (cell.strip() for cell in row.strip('|').split('|'))))
    assert cells['generalist linked 2D F1@0.5'] == '0.835'
    assert cells['generalist fused 2D F1@0.5'] == '0.845'
    assert cells['generalist fused 3D F1@0.5'] == '0.920'
