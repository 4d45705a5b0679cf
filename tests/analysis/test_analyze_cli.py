"""tools/analyze.py on tiny TIFFs: once as a subprocess, then in-process (fast) for the other cases and errors."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from helpers import REPO_ROOT, import_tool
from libnet_mmdet.analysis import CARBON_BINDER, NMC, PORE

TOOL = REPO_ROOT / 'tools' / 'analyze.py'


def _run(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=120)


def never_read(source):
    """A stand-in for ``read_whole_volume`` where a check must come first."""
    raise AssertionError(f'{source} read whole before the check')


@pytest.fixture(scope='module')
def analyze_tool():
    """tools/analyze.py imported as a module (its ``main(argv)``), without a new interpreter."""
    return import_tool('analyze')


def _volumes(tmp_path, phantoms):
    shape = (20, 24, 28)
    labels = np.zeros(shape, np.uint16)
    labels[phantoms.ball_mask(shape, (9.5, 8, 8), 5)] = 1
    labels[phantoms.ball_mask(shape, (9.5, 15, 19), 6)] = 2
    phases = np.where(labels > 0, NMC, PORE).astype(np.uint8)
    phases[(labels == 0) & (np.indices(shape)[0] > 9)] = CARBON_BINDER
    image = np.array([10, 200, 100], np.uint8)[phases]
    paths = {}
    for name, volume in (('labels', labels), ('phases', phases), ('image', image)):
        paths[name] = tmp_path / f'{name}.tif'
        tifffile.imwrite(paths[name], volume, imagej=True, resolution=(1 / 0.04, 1 / 0.04),
                         metadata={'spacing': 0.04, 'unit': 'um', 'axes': 'ZYX'})
    return paths


def test_analyze_with_phases_reads_voxel_size_from_metadata(tmp_path, phantoms):
    paths = _volumes(tmp_path, phantoms)
    out = tmp_path / 'report'

    result = _run(paths['labels'], '--phases', paths['phases'], '--out', out)

    assert result.returncode == 0, result.stderr
    assert '2 particles' in result.stdout
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['settings']['voxel_size_nm'] == [40, 40, 40]
    assert summary['phase_source'] == 'given' and summary['mean_contact_carbon_binder'] > 0
    assert {p.name for p in out.iterdir()} >= {'particles.csv', 'summary.md', 'slices.png', 'detachment_vs_depth.png'}


def test_analyze_with_image_only_is_flagged_approximate(tmp_path, phantoms, analyze_tool, capsys):
    paths = _volumes(tmp_path, phantoms)
    out = tmp_path / 'report'

    analyze_tool.main([str(paths['labels']), '--image', str(paths['image']), '--voxel-size-nm', '25',
                       '--phase-model', 'none', '--device', 'cuda:0', '--out', str(out)])  # none: built or not

    captured = capsys.readouterr()
    assert 'approximate' in captured.out
    # the device is not needed for multi-Otsu: noted, not checked (it refused a machine without CUDA)
    assert 'note: --device cuda:0 not used: no phase model, the phases come from multi-Otsu' in captured.err
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['phase_source'] == 'multi_otsu_approximate'
    assert summary['settings']['voxel_size_nm'] == [25, 25, 25]
    assert 'approximate' in (out / 'summary.md').read_text()


def test_analyze_errors_name_the_file(tmp_path, phantoms, analyze_tool):
    paths = _volumes(tmp_path, phantoms)
    wrong = tmp_path / 'wrong_shape.tif'
    tifffile.imwrite(wrong, np.zeros((20, 24, 27), np.uint8), photometric='minisblack')
    floats = tmp_path / 'floats.tif'
    tifffile.imwrite(floats, np.ones((4, 5, 6), np.float32), photometric='minisblack')
    empty = tmp_path / 'empty.tif'
    tifffile.imwrite(empty, np.zeros((4, 5, 6), np.uint16), photometric='minisblack')
    no_size = tmp_path / 'no_size.tif'
    tifffile.imwrite(no_size, np.ones((4, 5, 6), np.uint16), photometric='minisblack')

    cases = [
        ((paths['labels'], '--phases', wrong), f'{wrong}: shape (20, 24, 27) does not match'),
        ((floats, '--voxel-size-nm', 50), f'{floats}: instance labels must have an integer dtype'),
        ((empty, '--voxel-size-nm', 50), f'{empty}: no instance'),
        ((no_size,), f'{no_size}: no voxel size in its metadata; pass --voxel-size-nm'),
        ((tmp_path / 'missing.tif', '--voxel-size-nm', 50), 'missing.tif: file not found'),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            analyze_tool.main([*map(str, args), '--out', str(tmp_path / 'out')])
        assert message in str(exit_info.value.code), (args, exit_info.value.code)
    assert not (tmp_path / 'out').exists()


def test_shapes_and_the_voxel_size_are_checked_from_headers_before_a_volume_is_read(tmp_path, phantoms,
                                                                                    analyze_tool, monkeypatch):
    paths = _volumes(tmp_path, phantoms)
    wrong = tmp_path / 'wrong_shape.tif'
    tifffile.imwrite(wrong, np.zeros((20, 24, 27), np.uint8), photometric='minisblack')
    no_size = tmp_path / 'no_size.tif'
    tifffile.imwrite(no_size, np.ones((4, 5, 6), np.uint16), photometric='minisblack')
    monkeypatch.setattr(analyze_tool, 'read_whole_volume', never_read)
    cases = [((paths['labels'], '--image', wrong, '--phase-model', 'none'), f'{wrong}: shape (20, 24, 27) does not '
              f"match {paths['labels']} shape"),
             ((paths['labels'], '--phases', wrong), f'{wrong}: shape (20, 24, 27) does not match'),
             ((no_size, '--image', no_size, '--phase-model', 'none'), f'{no_size}: no voxel size in its metadata')]
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            analyze_tool.main([*map(str, args), '--out', str(tmp_path / 'out')])
        assert message in str(exit_info.value.code), (args, exit_info.value.code)
    assert not (tmp_path / 'out').exists()


def test_the_voxel_size_may_come_from_another_input_and_inputs_that_disagree_are_refused(tmp_path, phantoms,
                                                                                         analyze_tool, monkeypatch):
    """Review 2026-12-07: only the labels' voxel size was read; phases or an image of another voxel size (another
    scan, or resampled) passed unseen, and labels without one were refused although the image recorded it."""
    paths = _volumes(tmp_path, phantoms)
    labels = tifffile.imread(paths['labels'])
    bare, coarse = tmp_path / 'bare.tif', tmp_path / 'coarse.tif'
    tifffile.imwrite(bare, labels, photometric='minisblack')
    tifffile.imwrite(coarse, tifffile.imread(paths['phases']), imagej=True, resolution=(1 / 0.08, 1 / 0.08),
                     metadata={'spacing': 0.08, 'unit': 'um', 'axes': 'ZYX'})
    analyze_tool.main([str(bare), '--phases', str(paths['phases']), '--out', str(tmp_path / 'from_phases')])
    summary = json.loads((tmp_path / 'from_phases' / 'summary.json').read_text())
    assert summary['settings']['voxel_size_nm'] == [40, 40, 40]
    monkeypatch.setattr(analyze_tool, 'read_whole_volume', never_read)
    with pytest.raises(SystemExit, match=f'{coarse}: records voxel size 80 x 80 x 80 nm, {paths["labels"]} 40 x 40 '
                       'x 40 nm \\(Z x Y x X\\): not the same scan, or resampled; pass --voxel-size-nm to say which'):
        analyze_tool.main([str(paths['labels']), '--phases', str(coarse), '--out', str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()


def test_a_second_report_never_mixes_with_the_first(tmp_path, phantoms, analyze_tool, capsys):
    """Issue 17, defect 1: a run without phases into the folder of a run with phases replaced some files and left
    the detachment plots next to a summary saying there are no phases."""
    paths = _volumes(tmp_path, phantoms)
    out = tmp_path / 'report'
    analyze_tool.main([str(paths['labels']), '--phases', str(paths['phases']), '--out', str(out)])
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert 'detachment_vs_esd.png' in first

    with pytest.raises(SystemExit, match=f'analyze.py: error: {out}: folder is not empty; pass --overwrite'):
        analyze_tool.main([str(paths['labels']), '--out', str(out)])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # untouched

    analyze_tool.main([str(paths['labels']), '--out', str(out), '--overwrite'])
    names = {p.name for p in out.iterdir()}
    assert not {'detachment_vs_esd.png', 'detachment_vs_depth.png'} & names
    assert json.loads((out / 'summary.json').read_text())['phase_source'] == 'none'


def test_overwrite_never_empties_a_folder_holding_the_inputs(tmp_path, phantoms, analyze_tool):
    """A folder that holds the inputs (e.g. one make_synthetic.py wrote, which carries our marker) is never emptied,
    not even with --overwrite."""
    from libnet_mmdet.io import prepare_output_dir
    prepare_output_dir(tmp_path / 'data')  # marked as ours, as make_synthetic.py leaves it
    paths = _volumes(tmp_path / 'data', phantoms)
    with pytest.raises(SystemExit, match='analyze.py: error: .*data: the output folder holds the input'):
        analyze_tool.main([str(paths['labels']), '--out', str(tmp_path / 'data'), '--overwrite'])
    assert paths['labels'].is_file() and paths['phases'].is_file()


def test_overwrite_never_empties_a_folder_holding_the_phase_model(tmp_path, phantoms, analyze_tool):
    """A phase model kept in an earlier report folder: --phase-model was not counted as an input of the folder, so
    --overwrite removed it with the report (until 2026-12-07)."""
    from libnet_mmdet.io import prepare_output_dir
    from helpers import REPO_ROOT
    paths = _volumes(tmp_path, phantoms)
    report = prepare_output_dir(tmp_path / 'report')
    model = tmp_path / 'report' / 'phases'
    model.mkdir()
    base = REPO_ROOT / 'configs' / 'nmc' / 'phase-fpn_r18-gn_fpn-c64_cpu-tiny_generalist.py'
    (model / 'config.py').write_text(f'_base_ = {str(base)!r}\n')
    for name in ('model.pth', 'model.json'):
        (model / name).write_text('')
    with pytest.raises(SystemExit, match=f"analyze.py: error: {report}: the output folder holds the input "
                       f"{model / 'config.py'}"):
        analyze_tool.main([str(paths['labels']), '--image', str(paths['image']), '--phase-model', str(model),
                           '--out', report, '--overwrite'])
    assert sorted(p.name for p in model.iterdir()) == ['config.py', 'model.json', 'model.pth']


def test_a_folder_of_other_files_is_not_emptied(tmp_path, phantoms, analyze_tool):
    paths = _volumes(tmp_path, phantoms)
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'notes.txt').write_text('mine')
    with pytest.raises(SystemExit, match=f'analyze.py: error: {other}: folder is not empty and was not written '
                       'by libnet-mmdet'):
        analyze_tool.main([str(paths['labels']), '--out', str(other), '--overwrite'])
    assert sorted(p.name for p in other.iterdir()) == ['notes.txt']


def test_bad_arguments_are_refused_before_reading(tmp_path, analyze_tool):
    missing = tmp_path / 'missing.tif'  # never read: the argument is checked first
    with pytest.raises(SystemExit, match='analyze.py: error: --voxel-size-nm: voxel sizes must be finite and > 0'):
        analyze_tool.main([str(missing), '--voxel-size-nm', '0', '--out', str(tmp_path / 'out')])
    with pytest.raises(SystemExit, match="analyze.py: error: --min-voxels must be 'auto' or an integer >= 0, got -5"):
        analyze_tool.main([str(missing), '--min-voxels', '-5', '--out', str(tmp_path / 'out')])
    (tmp_path / 'file').write_text('x')
    with pytest.raises(SystemExit, match=f"analyze.py: error: {tmp_path / 'file'}: exists and is not a folder"):
        analyze_tool.main([str(missing), '--out', str(tmp_path / 'file')])
    # options for the phase model with nothing to run it on were ignored without a word (a misspelt folder too)
    with pytest.raises(SystemExit, match='analyze.py: error: --phase-model and --device: for the phase model on '
                       '--image, and no --image is given; leave them out'):
        analyze_tool.main([str(missing), '--phase-model', 'models/phase', '--device', 'cuda', '--out',
                           str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()


def test_nan_in_the_image_names_the_file(tmp_path, phantoms, analyze_tool):
    """Issue 17, defect 5: NaN in --image gave "range [nan, nan] is not finite" without the file name."""
    paths = _volumes(tmp_path, phantoms)
    image = tmp_path / 'nan.tif'
    volume = tifffile.imread(paths['image']).astype(np.float32)
    volume[4, 2, 2] = np.nan
    tifffile.imwrite(image, volume, photometric='minisblack')
    with pytest.raises(SystemExit, match=rf'analyze.py: error: {image} \[z=4\]: 1 NaN/Inf'):
        analyze_tool.main([str(paths['labels']), '--image', str(image), '--out', str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('hot_pixel', [False, True])
def test_an_image_multi_otsu_cannot_split_names_the_file(tmp_path, phantoms, analyze_tool, hot_pixel):
    """A flat image (one intensity): multi-Otsu's error named its argument (image_zyx), not the file; two levels and
    one hot pixel (three distinct values, two of its 256 bins) passed the check and failed in skimage, unnamed."""
    paths = _volumes(tmp_path, phantoms)
    image = tmp_path / 'flat.tif'
    volume = np.ones(tifffile.imread(paths['image']).shape, np.uint16)
    if hot_pixel:
        volume[:, :, : volume.shape[2] // 2] = 2
        volume[0, 0, 0] = 60000
    tifffile.imwrite(image, volume, photometric='minisblack')
    with pytest.raises(SystemExit, match=rf'analyze.py: error: {image}: fewer than three of the 256 intensity bins'):
        analyze_tool.main([str(paths['labels']), '--image', str(image), '--phase-model', 'none', '--out',
                           str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()


def test_min_voxels_leaves_specks_out_of_the_summary_only(tmp_path, phantoms, analyze_tool, capsys):
    """A one-voxel label (a watershed's or a phase split's speck) sits in pore: detachment 1 by one voxel."""
    paths = _volumes(tmp_path, phantoms)
    labels = tifffile.imread(paths['labels'])
    labels[2, 2, 2] = 3
    tifffile.imwrite(paths['labels'], labels, imagej=True, resolution=(1 / 0.04, 1 / 0.04),
                     metadata={'spacing': 0.04, 'unit': 'um', 'axes': 'ZYX'})
    argv = [str(paths['labels']), '--phases', str(paths['phases'])]
    summaries = {}
    for extra in (['0'], ['auto'], ['100']):
        out = tmp_path / f'report_{extra[0]}'
        analyze_tool.main(argv + ['--out', str(out), '--min-voxels', *extra])
        summaries[extra[0]] = json.loads((out / 'summary.json').read_text())
        assert len((out / 'particles.csv').read_text().splitlines()) == 1 + 3  # the CSV keeps every particle
    assert summaries['0']['n_particles'] == 3 and summaries['0']['n_below_min_voxels'] == 0
    for kept in (summaries['auto'], summaries['100']):
        assert kept['n_particles'] == 2 and kept['n_below_min_voxels'] == 1
        assert kept['mean_detachment'] < summaries['0']['mean_detachment']
    assert summaries['100']['min_voxels'] == 100 and 1 < summaries['auto']['min_voxels'] < 100
    assert '1 of fewer than 100 voxels, excluded' in (tmp_path / 'report_100' / 'summary.md').read_text()


def test_a_report_larger_than_memory_is_refused_before_the_volumes_are_read(tmp_path, phantoms, analyze_tool,
                                                                            monkeypatch):
    """The report holds the labels, the image and the phases whole: without the memory for them the line comes
    before anything is read (labels uint16 + image uint8 + phases: 4 bytes per voxel here)."""
    paths = _volumes(tmp_path, phantoms)
    monkeypatch.setattr('libnet_mmdet.cli.available_memory_bytes', lambda: 20 * 24 * 28 * 4 - 1)
    read_whole_volume = analyze_tool.read_whole_volume
    monkeypatch.setattr(analyze_tool, 'read_whole_volume', never_read)
    with pytest.raises(SystemExit, match=f"analyze.py: error: {paths['labels']} \\(20, 24, 28\\): needs at least 0.0 "
                       'GiB of memory, 0.0 GiB are available; run it where there is more memory$'):
        analyze_tool.main([str(paths['labels']), '--image', str(paths['image']), '--phase-model', 'none', '--out',
                           str(tmp_path / 'report')])
    assert not (tmp_path / 'report').exists()
    monkeypatch.setattr(analyze_tool, 'read_whole_volume', read_whole_volume)
    monkeypatch.setattr('libnet_mmdet.cli.available_memory_bytes', lambda: 20 * 24 * 28 * 4)
    analyze_tool.main([str(paths['labels']), '--image', str(paths['image']), '--phase-model', 'none', '--out',
                       str(tmp_path / 'report')])
    assert (tmp_path / 'report' / 'particles.csv').is_file()


def test_the_memory_check_counts_a_phase_file_in_its_own_dtype(tmp_path, phantoms, analyze_tool, monkeypatch):
    """--phases is read whole in the file's dtype before its uint8 copy: an int64 file was counted as 1 byte/voxel."""
    paths = _volumes(tmp_path, phantoms)
    wide = tmp_path / 'phases64.tif'
    tifffile.imwrite(wide, tifffile.imread(paths['phases']).astype(np.int64))
    needed = []
    monkeypatch.setattr(analyze_tool, 'check_memory', lambda nbytes, *args: needed.append(nbytes))
    for phases in (paths['phases'], wide):
        analyze_tool.main([str(paths['labels']), '--phases', str(phases), '--voxel-size-nm', '40', '--out',
                           str(tmp_path / f'report_{phases.stem}')])
    voxels = np.prod(tifffile.imread(paths['labels']).shape)
    assert needed[1] - needed[0] == 7 * voxels
