"""tools/make_synthetic.py in-process: everything is checked before the volume is generated (issue 17), and its
output folder follows the one rule: new or empty, or emptied with --overwrite."""
import json

import pytest

SMALL = ['--shape', '4', '32', '32', '--preset', 'clean', '--mean-diameter', '10', '--seed', '3']


def test_export_every_zero_is_refused_first_and_the_corrected_rerun_works(tool, tmp_path, capsys):
    """Issue 17, defect 3: --export-every 0 failed after writing the volumes; the corrected rerun was then refused
    as "not empty"."""
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as info:
        tool.main(SMALL + ['--export-every', '0', '--out', str(out)])
    assert info.value.code == 2 and "argument --export-every: expected an integer >= 1, got '0'" in \
        capsys.readouterr().err
    assert not out.exists()
    tool.main(SMALL + ['--export-every', '2', '--out', str(out)])
    assert json.loads((out / 'params.json').read_text())['seed'] == 3


def test_a_used_folder_is_refused_or_emptied_with_overwrite(tool, tmp_path):
    out = tmp_path / 'out'
    tool.main(SMALL + ['--export-axes', 'z', 'y', '--out', str(out)])
    assert list((out / 'coco' / 'images').glob('y*.tif'))
    before = sorted(p.relative_to(out) for p in out.rglob('*'))
    with pytest.raises(SystemExit, match=f'make_synthetic.py: error: {out}: folder is not empty; pass --overwrite'):
        tool.main(SMALL + ['--out', str(out)])
    assert sorted(p.relative_to(out) for p in out.rglob('*')) == before
    tool.main(SMALL + ['--out', str(out), '--overwrite'])
    assert not list((out / 'coco' / 'images').glob('y*.tif'))  # no slice of the first run left beside the new
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('mine')
    with pytest.raises(SystemExit, match='foreign: folder is not empty and was not written by libnet-mmdet'):
        tool.main(SMALL + ['--out', str(foreign), '--overwrite'])
    assert [p.name for p in foreign.iterdir()] == ['notes.txt']


def test_a_volume_larger_than_the_memory_is_refused_before_allocating(tool, tmp_path, monkeypatch):
    """Issue 17, defect 5: --shape 2048 2048 2048 on a small machine gave a raw memory error."""
    monkeypatch.setattr('libnet_mmdet.cli.available_memory_bytes', lambda: 8 * 2 ** 30)  # an 8 GiB machine
    with pytest.raises(SystemExit) as info:
        tool.main(['--shape', '2048', '2048', '2048', '--out', str(tmp_path / 'out')])
    assert info.value.code == ('make_synthetic.py: error: --shape 2048 2048 2048: needs at least 120.0 GiB of '
                               'memory, 8.0 GiB are available; choose a smaller size')
    assert not (tmp_path / 'out').exists()


def test_ctrl_c_says_what_was_kept(tool, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(tool, 'write_dataset', interrupted)
    with pytest.raises(SystemExit) as info:
        tool.main(SMALL + ['--out', str(tmp_path / 'out')])
    assert info.value.code == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"make_synthetic.py: interrupted: {tmp_path / 'out'} is as it was (written whole or not at all); run the "
        'same command again')


def test_a_repeated_export_axis_is_refused_before_the_volume_is_generated(tool, tmp_path, monkeypatch):
    """--export-axes z z was deduplicated silently by the export but refused by the datasets' slicing; now one check
    (io.check_slicing) refuses it everywhere, here before any work."""
    monkeypatch.setattr(tool, 'generate_volume', lambda *args, **kwargs: pytest.fail('generated before the check'))
    with pytest.raises(SystemExit) as info:
        tool.main(SMALL + ['--export-axes', 'z', 'z', '--out', str(tmp_path / 'out')])
    assert info.value.code == ("make_synthetic.py: error: --export-axes must be a non-empty selection of ('z', 'y', "
                               "'x'), each axis once, got ('z', 'z')")
    assert not (tmp_path / 'out').exists()


def test_a_negative_min_area_is_refused_before_the_volume_is_made(tool, tmp_path, monkeypatch):
    """It was taken as 0; the library writer now refuses it, so the tool checks it before generating."""
    monkeypatch.setattr(tool, 'generate_volume', lambda *args, **kwargs: pytest.fail('generated'))
    with pytest.raises(SystemExit, match='make_synthetic.py: error: --min-area must be an integer >= 0, got -1'):
        tool.main(SMALL + ['--min-area', '-1', '--out', str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()
