"""The output rule of libnet_mmdet.io.errors: outputs never replace inputs, folders are new, empty or ours."""
import json
import os
import re
from pathlib import Path

import pytest

from libnet_mmdet.io import (InputError, as_json, check_label_output, check_output_dir, check_output_file,
                             prepare_output_dir, write_json)


def test_an_output_file_is_never_an_input(tmp_path):
    source = tmp_path / 'gt.tif'
    source.write_bytes(b'data')
    with pytest.raises(InputError, match='would overwrite the input'):
        check_output_file(tmp_path / '.' / 'gt.tif', overwrite=True, inputs=(None, source))
    assert check_output_file(tmp_path / 'new.json', inputs=(source,)) == str(tmp_path / 'new.json')
    with pytest.raises(InputError, match='exists; pass --overwrite'):
        check_output_file(source)


def test_overwrite_never_empties_a_folder_holding_an_input(tmp_path):
    out = prepare_output_dir(tmp_path / 'run')  # ours: marked
    (tmp_path / 'run' / 'labels.tif').write_bytes(b'data')
    for inputs in ((tmp_path / 'run' / 'labels.tif',), (tmp_path / 'run',), (tmp_path / 'run' / 'later' / 'x.tif',)):
        with pytest.raises(InputError, match='the output folder holds the input'):
            prepare_output_dir(out, overwrite=True, inputs=inputs)
        assert (tmp_path / 'run' / 'labels.tif').is_file()
    prepare_output_dir(out, overwrite=True, inputs=(tmp_path / 'elsewhere.tif',))
    assert not (tmp_path / 'run' / 'labels.tif').exists()


def test_a_folder_of_other_files_is_never_emptied(tmp_path):
    (tmp_path / 'keep.txt').write_text('mine')
    with pytest.raises(InputError, match='not written by libnet-mmdet'):
        check_output_dir(tmp_path, overwrite=True)
    with pytest.raises(InputError, match='folder is not empty; pass --overwrite'):
        check_output_dir(tmp_path)


def test_an_output_where_this_user_cannot_write_is_refused_before_anything(tmp_path, monkeypatch):
    """A read-only destination was found only when the first file was written, after the model load or the whole
    run. ``os.access`` is faked: the tests may run as root, who may write anywhere."""
    import os
    from libnet_mmdet.io import check_label_output
    from libnet_mmdet.volume.workdir import WorkFolder
    read_only = tmp_path / 'beamline'
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, 'access', lambda path, mode: real_access(path, mode) and os.fspath(path) != str(read_only))
    for check, path in ((check_output_file, read_only / 'labels.tif'), (check_output_dir, read_only / 'report'),
                        (check_output_dir, read_only), (check_label_output, read_only / 'new' / 'labels.zarr'),
                        (lambda path: WorkFolder(path).check(), read_only / 'labels.tif.work')):
        with pytest.raises(InputError, match=f'{path}: cannot write there \\({read_only} is not writable by this '
                           'user\\)'):
            check(path)
    assert check_output_file(tmp_path / 'elsewhere' / 'labels.tif') == str(tmp_path / 'elsewhere' / 'labels.tif')
    assert list(read_only.iterdir()) == []


def test_json_outputs_write_a_missing_number_as_null(tmp_path):
    path = tmp_path / 'summary.json'
    write_json(path, {'mean_damage': float('nan'), 'rows': [1.5, (float('inf'), -float('inf'))], 'n': 3})
    text = path.read_text()
    assert 'NaN' not in text and 'Infinity' not in text
    assert json.loads(text) == {'mean_damage': None, 'rows': [1.5, [None, None]], 'n': 3}
    record = {'scale': (1.0, float('nan'))}  # a record compares equal to its file (resume checks do)
    write_json(path, record, indent=1)
    assert as_json(record) == json.loads(path.read_text()) == {'scale': [1.0, None]}
    import numpy as np  # numpy numbers: json writes none but np.float64 ("Object of type int64 ...")
    write_json(path, {'n': np.int64(3), 'f': np.float32(0.5), 'nan': np.float32('nan'), 'ok': np.bool_(True)})
    assert json.loads(path.read_text()) == {'n': 3, 'f': 0.5, 'nan': None, 'ok': True}


def test_an_output_below_a_file_is_refused_before_anything(tmp_path):
    """An output path below a file (``notes.txt/sub/report``) passed every check and failed only when written,
    after the inputs were read."""
    notes = tmp_path / 'notes.txt'
    notes.write_text('mine')
    for check, path in ((check_output_dir, notes / 'sub' / 'report'), (prepare_output_dir, notes / 'report'),
                        (check_output_file, notes / 'sub' / 'out.tif'), (check_output_file, notes / 'out.tif'),
                        (check_label_output, notes / 'sub' / 'labels.tif'),
                        (check_label_output, notes / 'labels.zarr')):
        with pytest.raises(InputError, match=f'^{re.escape(str(path))}: cannot write there '
                           f'\\({re.escape(str(notes))} is not a folder\\)$'):
            check(path)
    assert [p.name for p in tmp_path.iterdir()] == ['notes.txt'] and notes.read_text() == 'mine'


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*'))


def test_an_output_folder_is_written_whole_or_not_at_all(tmp_path):
    """A failure or Ctrl-C half-way left half a folder, and with --overwrite the earlier output was already gone."""
    from libnet_mmdet.io import output_folder
    out = tmp_path / 'report'
    with output_folder(out) as folder:
        assert not out.exists() and os.path.basename(folder).startswith('.report.partial-')
        (Path(folder) / 'a.txt').write_text('first')
    assert _listing(out) == ['.libnet_mmdet_output', 'a.txt'] and _listing(tmp_path) == [
        'report', 'report/.libnet_mmdet_output', 'report/a.txt']
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~current_umask())  # not mkdtemp's 0700
    for interruption in (OSError(28, 'No space left on device'), KeyboardInterrupt()):
        with pytest.raises(type(interruption)):
            with output_folder(out, overwrite=True) as folder:
                (Path(folder) / 'b.txt').write_text('second')
                raise interruption
        assert (out / 'a.txt').read_text() == 'first' and _listing(tmp_path)[0] == 'report'  # as it was, no partial
        assert len(_listing(tmp_path)) == 3
    with output_folder(out, overwrite=True) as folder:
        (Path(folder) / 'b.txt').write_text('second')
    assert _listing(out) == ['.libnet_mmdet_output', 'b.txt'] and len(_listing(tmp_path)) == 3  # replaced whole
    with pytest.raises(InputError, match='folder is not empty; pass --overwrite'):  # checked before the block
        with output_folder(out):
            pytest.fail('the block ran')


def test_a_swap_stopped_between_its_renames_puts_the_earlier_output_back(tmp_path, monkeypatch):
    from libnet_mmdet.io import errors, output_folder
    out = tmp_path / 'new' / 'nested' / 'report'  # its parents are made: swapped too, not filled in place
    with output_folder(out) as folder:
        assert Path(folder).parent == out.parent
        (Path(folder) / 'a.txt').write_text('first')
    renames = []

    def second_fails(source, destination):
        renames.append(destination)
        if len(renames) == 2:
            raise OSError(5, 'Input/output error')
        return os.rename(source, destination)

    monkeypatch.setattr(errors.os, 'replace', second_fails)
    with pytest.raises(OSError, match='Input/output error'):
        with output_folder(out, overwrite=True) as folder:
            (Path(folder) / 'b.txt').write_text('second')
    monkeypatch.undo()
    assert _listing(out.parent) == ['report', 'report/.libnet_mmdet_output', 'report/a.txt']


def test_a_link_inside_the_output_folder_is_an_input_it_holds(tmp_path):
    """An input named through a link inside an earlier output folder: emptying the folder removed the input's name
    (the link resolved to a file outside, so the folder did not count as holding it)."""
    source = tmp_path / 'labels.tif'
    source.write_bytes(b'data')
    out = prepare_output_dir(tmp_path / 'report')
    (out_link := tmp_path / 'report' / 'mylabels.tif').symlink_to(source)
    with pytest.raises(InputError, match='the output folder holds the input'):
        check_output_dir(out, overwrite=True, inputs=(out_link,))
    assert out_link.is_symlink()


def current_umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask
