"""tools/evaluate_volume.py on tiny TIFFs: end to end as a subprocess, errors in-process."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from helpers import REPO_ROOT, import_tool

TOOL = REPO_ROOT / 'tools' / 'evaluate_volume.py'


def _run(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_evaluate_volume_prints_table_and_writes_json(tmp_path):
    gt = np.zeros((10, 12, 14), np.uint16)
    gt[1:5, 1:5, 1:5] = 1
    gt[5:9, 6:10, 8:12] = 2
    pred = np.zeros_like(gt)
    pred[1:5, 1:5, 2:6] = 9  # IoU 48 / 80 = 0.6
    pred[5:9, 6:10, 8:12] = 4
    tifffile.imwrite(tmp_path / 'gt.tif', gt, photometric='minisblack')
    tifffile.imwrite(tmp_path / 'pred.tif', pred, photometric='minisblack')
    out = tmp_path / 'metrics.json'

    result = _run(tmp_path / 'gt.tif', tmp_path / 'pred.tif', '--voxel-size-nm', '50', '--out', out)

    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    table = {line[0]: line[1:] for line in lines if line and line[0] in ('0.50', '0.75')}  # threshold n_true n_pred tp
    assert table['0.50'][:3] == ['2', '2', '2'] and table['0.75'][:3] == ['2', '2', '1']  # the printed table
    summary = {line[0]: line[1] for line in lines if len(line) == 2}
    assert (summary['f1_50'], summary['f1_75']) == ('1.0', '0.5') and 'wasserstein_um' in summary
    saved = json.loads(out.read_text())
    assert saved['summary']['f1_50'] == 1.0 and saved['summary']['f1_75'] == 0.5
    assert saved['summary']['count_error'] == 0 and saved['summary']['voxel_size_nm'] == [50, 50, 50]
    assert [row['threshold'] for row in saved['per_threshold']][:2] == [0.5, 0.55]


def test_evaluate_volume_errors(tmp_path):
    tool = import_tool('evaluate_volume')
    tifffile.imwrite(tmp_path / 'gt.tif', np.ones((4, 5, 6), np.uint16), photometric='minisblack')
    tifffile.imwrite(tmp_path / 'pred.tif', np.ones((4, 5, 7), np.uint16), photometric='minisblack')
    tifffile.imwrite(tmp_path / 'float.tif', np.ones((4, 5, 6), np.float32), photometric='minisblack')
    cases = [(['gt.tif', 'pred.tif'], f"{tmp_path / 'pred.tif'}: shape (4, 5, 7) does not match"),
             (['gt.tif', 'float.tif'], f"{tmp_path / 'float.tif'}: instance labels must have an integer dtype"),
             (['gt.tif', 'gt.tif', '--voxel-size-nm', '1', '2'], '--voxel-size-nm: expected one value or three')]
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            tool.main([str(tmp_path / a) if a.endswith('.tif') else a for a in args])
        assert message in str(exit_info.value.code)


def test_evaluate_volume_compares_shapes_before_reading_the_volumes(tmp_path, monkeypatch):
    tool = import_tool('evaluate_volume')
    tifffile.imwrite(tmp_path / 'gt.tif', np.ones((4, 5, 6), np.uint16), photometric='minisblack')
    tifffile.imwrite(tmp_path / 'pred.tif', np.ones((4, 5, 7), np.uint16), photometric='minisblack')
    monkeypatch.setattr(tool, 'read_whole_volume', lambda source: pytest.fail(f'{source} read before the check'))
    with pytest.raises(SystemExit, match=r'pred\.tif: shape \(4, 5, 7\) does not match .*gt\.tif shape \(4, 5, 6\)'):
        tool.main([str(tmp_path / 'gt.tif'), str(tmp_path / 'pred.tif')])


def test_the_voxel_size_is_the_ground_truth_s_else_the_prediction_s_and_both_must_agree(tmp_path, monkeypatch):
    """The prediction's recorded voxel size was ignored (until 2026-12-07): a GT of 50 nm scored against a 100 nm
    prediction without a word, and a GT recording none gave diameters in voxels though the prediction had one."""
    from libnet_mmdet.io import write_tiff
    tool = import_tool('evaluate_volume')
    labels = np.zeros((4, 6, 6), np.uint16)
    labels[1:3, 1:4, 1:4] = 1
    tifffile.imwrite(tmp_path / 'bare.tif', labels, photometric='minisblack')
    write_tiff(tmp_path / 'gt50.tif', labels, voxel_size_nm=50)
    write_tiff(tmp_path / 'pred100.tif', labels, voxel_size_nm=100)
    summary = tool.run(tool.parse_args([str(tmp_path / 'bare.tif'), str(tmp_path / 'pred100.tif')]))[1]
    assert summary['voxel_size_nm'] == [100, 100, 100]
    monkeypatch.setattr(tool, 'read_whole_volume', lambda source: pytest.fail(f'{source} read before the check'))
    with pytest.raises(SystemExit, match=r'pred100\.tif: records voxel size 100 x 100 x 100 nm, .*gt50\.tif 50 x 50 x '
                       r'50 nm \(Z x Y x X\): not the same scan, or resampled; pass --voxel-size-nm'):
        tool.main([str(tmp_path / 'gt50.tif'), str(tmp_path / 'pred100.tif')])


def test_evaluate_volume_reads_the_zarr_labels_segment_writes(tmp_path, capsys):
    """tools/segment.py writes OME-Zarr labels (``--out labels.zarr``); they were reported as "file not found"."""
    from libnet_mmdet.io import LabelVolumeWriter
    gt = np.zeros((6, 8, 8), np.uint16)
    gt[1:4, 1:5, 1:5] = 1
    tifffile.imwrite(tmp_path / 'gt.tif', gt, photometric='minisblack')
    writer = LabelVolumeWriter(tmp_path / 'pred.zarr', gt.shape, np.uint16, chunk_z=4)
    writer.create()
    writer.write(0, gt)
    writer.finish()
    writer.commit()
    import_tool('evaluate_volume').main([str(tmp_path / 'gt.tif'), str(tmp_path / 'pred.zarr')])
    summary = dict(line.split() for line in capsys.readouterr().out.splitlines() if len(line.split()) == 2)
    assert (summary['f1_50'], summary['n_pred']) == ('1.0', '1')  # its labels read, not only a file found
    with pytest.raises(SystemExit, match='evaluate_volume.py: error: .*: lies inside the input folder'):
        import_tool('evaluate_volume').main([str(tmp_path / 'gt.tif'), str(tmp_path / 'pred.zarr'), '--out',
                                             str(tmp_path / 'pred.zarr' / 'metrics.json')])


def test_an_existing_json_is_replaced_only_with_overwrite(tmp_path, capsys):
    """Issue 17, defect 2: --out replaced an existing file without a word."""
    tool = import_tool('evaluate_volume')
    tifffile.imwrite(tmp_path / 'gt.tif', np.ones((4, 5, 6), np.uint16), photometric='minisblack')
    out = tmp_path / 'metrics.json'
    out.write_text('my notes')
    argv = [str(tmp_path / 'gt.tif'), str(tmp_path / 'gt.tif'), '--out', str(out)]
    with pytest.raises(SystemExit, match=f'evaluate_volume.py: error: {out}: exists; pass --overwrite'):
        tool.main(argv)
    assert out.read_text() == 'my notes'
    tool.main(argv + ['--overwrite'])
    assert json.loads(out.read_text())['summary']['f1_50'] == 1.0
    with pytest.raises(SystemExit, match=f"evaluate_volume.py: error: {tmp_path}: is a folder"):
        tool.main(argv[:2] + ['--out', str(tmp_path)])


def test_a_bad_threshold_is_a_usage_error_before_the_volumes_are_read(tmp_path, capsys):
    """--thresholds 1.5 was found after both volumes were read whole, and named `thresholds`."""
    tool = import_tool('evaluate_volume')
    with pytest.raises(SystemExit) as info:
        tool.main([str(tmp_path / 'missing_gt.tif'), str(tmp_path / 'missing_pred.tif'), '--thresholds', '0.5', '1.5'])
    assert info.value.code == 2
    assert "argument --thresholds: expected an IoU threshold in (0, 1], got '1.5'" in capsys.readouterr().err
