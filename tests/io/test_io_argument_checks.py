"""io functions that wrapped, truncated or failed deep inside numpy on bad arguments."""
import re

import numpy as np
import pytest
import tifffile

from libnet_mmdet.io import (ImageFormatError, InputError, LabelVolumeWriter, check_int, check_number, check_slicing,
                             read_image, voxel_size_zyx)


def test_a_label_writer_never_wraps_ids(tmp_path):
    writer = LabelVolumeWriter(tmp_path / 'labels.tif', (2, 4, 4), np.uint16, chunk_z=2)
    writer.create()
    for labels, found in ((np.full((2, 4, 4), 70000, np.uint32), 'uint32 values from 70000 to 70000'),
                          (np.full((2, 4, 4), -1, np.int32), 'values from -1 to -1'),
                          (np.full((2, 4, 4), 1.5), 'float64')):
        with pytest.raises(ValueError, match=f'labels to write must be integers from 0 to 65535 .*{found}'):
            writer.write(0, labels)
    writer.write(0, np.full((2, 4, 4), 65535, np.uint32))  # fits: written as uint16
    writer.finish()
    writer.commit()
    written = tifffile.imread(tmp_path / 'labels.tif')
    assert written.dtype == np.uint16 and (written == 65535).all()


@pytest.mark.parametrize('value', [True, '50', ('50', 50, 50), [np.True_, 1, 1]])
def test_voxel_sizes_are_numbers(value):
    with pytest.raises(ValueError, match='voxel_size_nm: voxel sizes must be numbers'):
        voxel_size_zyx(value)


def test_a_stack_slice_needs_an_integer_index(tmp_path):
    path = tmp_path / 'stack.tif'
    tifffile.imwrite(path, np.zeros((3, 4, 5), np.uint8), photometric='minisblack')
    for index in (None, 2.7):
        with pytest.raises(ImageFormatError, match=f"slice_index must be an integer with slice_axis='z', got {index}"):
            read_image(path, slice_axis='z', slice_index=index)
    assert read_image(path, slice_axis='z', slice_index=np.int64(2)).shape[:2] == (4, 5)


def test_check_slicing_is_the_one_slicing_check():
    """Datasets, the synthetic export and the tools slice stacks through this one check (their own names)."""
    assert check_slicing('zyx', np.int64(2)) == (('z', 'y', 'x'), 2)
    assert type(check_slicing(['y'], np.int64(3))[1]) is int
    for axes in ('', 'zz', 'zw', ('xy',)):
        with pytest.raises(ValueError, match=r"--axes must be a non-empty selection of \('z', 'y', 'x'\), each axis "
                           'once, got'):
            check_slicing(axes, 1, names=('--axes', '--step'))
    for step in (0, -1, True, 2.0, '2'):
        with pytest.raises(ValueError, match=f'slice_step must be an integer >= 1, got {step!r}'):
            check_slicing('z', step)


def test_check_int_is_the_one_integer_check():
    """Batch sizes, slabs, tiles, overlaps, steps and radii are checked by this one function (their own names)."""
    assert check_int(np.int64(3), 'slab', 1) == 3 and type(check_int(np.uint8(0), 'overlap')) is int
    for value in (0, -2, 2.0, 1.5, True, np.nan, '3', None):
        with pytest.raises(InputError, match=f'tile_size must be an integer >= 1, got {value!r}'):
            check_int(value, 'tile_size', 1)


def test_check_number_is_the_one_real_number_check():
    """Fractions, thresholds, weights and sigmas are checked by this one function: finite real numbers in a range,
    either bound open or closed; numpy numbers pass, bools and NaN do not."""
    assert check_number(np.float32(0.5), 'min_overlap', high=1, low_open=True) == 0.5
    assert check_number(1, 'score_thr', high=1) == 1.0 and check_number(0, 'score_thr', high=1) == 0.0
    assert check_number(np.int64(7), 'h_voxels', low_open=True) == 7.0
    for value in (0, -0.1, 1.5, True, np.nan, np.inf, '0.5', None):
        message = rf'min_overlap must be in \(0, 1\], got {re.escape(repr(value))}'
        with pytest.raises(InputError, match=message):
            check_number(value, 'min_overlap', high=1, low_open=True)
    for value in (-1, np.inf, np.nan, False):
        with pytest.raises(InputError, match=r'smoothing_sigma must be a number >= 0 \(voxels\), got'):
            check_number(value, 'smoothing_sigma', unit='voxels')
    with pytest.raises(InputError, match=r'centre_jitter must be in \[0, 0.5\), got 0.5'):
        check_number(0.5, 'centre_jitter', high=0.5, high_open=True)
    with pytest.raises(InputError, match=r'ray_step must be a number > 0, got 0'):
        check_number(0, 'ray_step', low_open=True)


def test_write_tiff_replaces_a_file_only_when_told_and_names_what_it_cannot_write(tmp_path):
    """write_tiff replaced any file without a word (the raw stack too, given its path), and gave tifffile's errors
    for a 4D or empty array or a folder."""
    from libnet_mmdet.io import write_tiff
    stack = tmp_path / 'stack.tif'
    stack.write_bytes(b'the raw data')
    labels = np.ones((2, 4, 4), np.uint16)
    with pytest.raises(InputError, match=f'{stack}: exists; pass --overwrite \\(overwrite=True\\) to replace it'):
        write_tiff(stack, labels)
    assert stack.read_bytes() == b'the raw data'
    write_tiff(stack, labels, overwrite=True)
    assert tifffile.imread(stack).shape == (2, 4, 4)
    (tmp_path / 'folder.tif').mkdir()
    for path, array, message in ((tmp_path / 'a.tif', labels[None, None], r'got shape \(1, 1, 2, 4, 4\)'),
                                 (tmp_path / 'a.tif', np.zeros((0, 4, 4)), r'got shape \(0, 4, 4\)'),
                                 (tmp_path / 'folder.tif', labels, 'is a folder')):
        with pytest.raises(InputError, match=message):
            write_tiff(path, array)
    assert not (tmp_path / 'a.tif').exists()


@pytest.mark.parametrize('kwargs, message', [(dict(dtype='float32'), 'unsigned integer dtype'),
                                             (dict(shape=(8, -16, 16)), 'must be an integer >= 1, got -16'),
                                             (dict(shape=(16, 16)), r'shape must be \(Z, Y, X\)'),
                                             (dict(chunk_z=0), 'chunk_z must be an integer >= 1, got 0')])
def test_a_label_writer_checks_its_settings_when_made(tmp_path, kwargs, message):
    """A float dtype, a negative size or chunk_z 0 failed at create() or at the first write."""
    settings = dict(shape=(8, 16, 16), dtype='uint16', chunk_z=4) | kwargs
    with pytest.raises(InputError, match=message):
        LabelVolumeWriter(tmp_path / 'labels.tif', **settings)
    assert list(tmp_path.iterdir()) == []


def test_a_stack_given_as_one_2d_image_is_refused_before_its_pixels_are_decoded(tmp_path, monkeypatch):
    """read_image without a slice refuses a (Z, Y, X) TIFF from its header: a large stack passed where one image is
    expected is not decoded whole (gigabytes) only to be refused."""
    path = tmp_path / 'stack.tif'
    tifffile.imwrite(path, np.zeros((3, 8, 8), np.uint16), photometric='minisblack')

    def no_decoding(*args, **kwargs):
        raise AssertionError('the pixels were decoded')
    monkeypatch.setattr(tifffile.TiffPageSeries, 'asarray', no_decoding)
    with pytest.raises(ImageFormatError, match=re.escape(f'{path}: a 3D stack of shape (Z, Y, X) = (3, 8, 8), not one '
                                                         '2D image')):
        read_image(path)
    with pytest.raises(ImageFormatError, match='the pixels were decoded'):  # the spy sees a decode (wrapped)
        read_image(path, allow_stack=True)
