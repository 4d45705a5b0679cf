"""The output rule of libnet_mmdet.io.errors: outputs never replace inputs, folders are new, empty or ours."""
import pytest

from libnet_mmdet.io import InputError, check_output_dir, check_output_file, prepare_output_dir


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
