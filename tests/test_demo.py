"""tools/demo.py end to end on small volumes (a smoke run: 2 training iterations), its resumption, and a rerun with
other settings refused."""
import pandas as pd
import pytest

from helpers import run_tool

pytestmark = pytest.mark.slow


def test_demo_runs_end_to_end_and_resumes(tmp_path):
    out = tmp_path / 'demo'
    result = run_tool('tools/demo.py', '--out', out, '--model', 'own', '--size', 'small', '--iters', '2',
                      timeout=1200)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    assert f"Report: {out / 'report.md'}" in result.stdout
    for name in ('train/labels.tif', 'test/labels.tif', 'work_dir/iter_2.pth', 'pred_labels_xy.tif',
                 'pred_labels_xyz.tif', 'pred_labels_watershed.tif', 'timings.json'):
        assert (out / name).is_file(), name
    scores = pd.read_csv(out / 'scores.csv', index_col=0)
    assert list(scores.index) == ['xy', 'xyz', 'watershed']
    assert scores.loc['watershed', 'f1_50'] > 0.3  # the tuned baseline finds the synthetic particles
    report = (out / 'report.md').read_text()
    assert 'classic watershed (tuned' in report and '| ours, xy/xz/yz fused |' in report
    assert 'merge fragments smaller than 206 voxels' in report  # a sphere of 22 / 3 voxels across
    # the fused masks smoothed as tools/segment.py smooths them by default, the linked ones not
    assert 'smooth: auto -> none (linked views)' in result.stdout
    assert 'smooth: auto -> Gaussian sigma 0.75 x 0.75 x 0.75 voxels (fused views)' in result.stdout
    assert "smoothed as\n`tools/segment.py` does by default (`smooth='auto'`" in report

    again = run_tool('tools/demo.py', '--out', out, '--model', 'own', '--size', 'small', '--iters', '2', timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert 'training skipped' in again.stdout and 'exists, kept' in again.stdout
    assert pd.read_csv(out / 'scores.csv', index_col=0).equals(scores)

    other = run_tool('tools/demo.py', '--out', out, '--model', 'own', '--size', 'small', '--iters', '2',
                     '--voxel-size-nm', '50', timeout=300)  # the volumes and model above are not of this voxel size
    assert other.returncode == 1 and 'holds a demo made with other settings (voxel_size_nm)' in other.stderr
    assert pd.read_csv(out / 'scores.csv', index_col=0).equals(scores)
