"""The output rule of libnet_mmdet.io.errors: outputs never replace inputs, folders are new, empty or ours."""
import json
import re

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
