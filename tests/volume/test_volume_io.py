"""Lazy volume reading (TIFF memmap, compressed TIFF, folder of slices, arrays), clear input errors and atomic
label TIFF output with the voxel size."""
import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from libnet_mmdet.io import read_volume, read_voxel_size
from libnet_mmdet.io.images import read_image
from libnet_mmdet.io import ImageFormatError
from libnet_mmdet.io import open_volume
from libnet_mmdet.io.tiff import write_tiff_pages
from libnet_mmdet.io import volume as volume_io
from libnet_mmdet.io.chunked import ChunkedVolume, slab_chunks


@pytest.fixture
def stack():
    return np.random.default_rng(0).integers(0, 60000, (6, 20, 24)).astype(np.uint16)


def read_all(reader, axis):
    n = reader.shape['zyx'.index(axis)]
    return np.concatenate([reader.read(axis, s, min(s + 4, n)) for s in range(0, n, 4)])


def test_uncompressed_tiff_reads_every_axis(tmp_path, stack):
    tifffile.imwrite(tmp_path / 'v.tif', stack, photometric='minisblack')
    with open_volume(tmp_path / 'v.tif') as reader:
        assert reader.shape == stack.shape and reader.dtype == np.uint16 and reader.streams_any_axis
        np.testing.assert_array_equal(read_all(reader, 'z'), stack)
        np.testing.assert_array_equal(read_all(reader, 'y'), stack.transpose(1, 0, 2))  # xz slices (Z, X)
        np.testing.assert_array_equal(read_all(reader, 'x'), stack.transpose(2, 0, 1))  # yz slices (Z, Y)


def test_big_endian_tiff_reads_in_native_byte_order(tmp_path, stack):
    tifffile.imwrite(tmp_path / 'v.tif', stack, byteorder='>', photometric='minisblack')
    with open_volume(tmp_path / 'v.tif') as reader:
        slab = reader.read('x', 3, 9)
    assert slab.dtype == np.dtype('=u2')
    np.testing.assert_array_equal(slab, stack[:, :, 3:9].transpose(2, 0, 1))
    for axis, index in (('z', 2), ('x', 3)):  # one slice, as the dataset loaders read it: native too
        image = read_image(tmp_path / 'v.tif', axis, index)
        assert type(image) is np.ndarray and image.dtype == np.dtype('=u2')
        np.testing.assert_array_equal(image, np.take(stack, index, axis='zyx'.index(axis)))


def test_strided_slabs_are_read_in_z_ranges(tmp_path, stack, monkeypatch):
    monkeypatch.setattr(volume_io, 'MAP_CHUNK_BYTES', 2 * stack[0].nbytes)  # two z-planes mapped at a time
    tifffile.imwrite(tmp_path / 's.tif', stack, photometric='minisblack')
    stored = volume_io.StoredVolume.tiff(tmp_path / 's.tif')
    maps, memmap = [], np.memmap
    monkeypatch.setattr(np, 'memmap', lambda *args, **kwargs: maps.append(kwargs['shape']) or memmap(*args, **kwargs))
    for start in range(0, 20, 6):
        np.testing.assert_array_equal(stored.read('y', start, min(start + 6, 20)),
                                      stack[:, start:start + 6].transpose(1, 0, 2))
    np.testing.assert_array_equal(stored.read('x', 5, 24), stack[:, :, 5:].transpose(2, 0, 1))
    assert maps and all(shape[0] <= 2 for shape in maps)


def test_chunked_scratch_reads_and_writes_any_axis(tmp_path, stack):
    chunks = slab_chunks(stack.shape, 4, ('z', 'y'))
    assert chunks == (4, 4, 24)
    created = ChunkedVolume.create(tmp_path / 's.zarr', stack.shape, stack.dtype, chunks)
    for start in range(0, 20, 4):  # y-slabs of whole chunks, as one rank's slabs are written
        created.write('y', start, stack[:, start:start + 4].transpose(1, 0, 2))
    reopened = ChunkedVolume.open(tmp_path / 's.zarr')
    assert (reopened.shape, reopened.dtype) == (stack.shape, stack.dtype)
    np.testing.assert_array_equal(reopened.read('x', 5, 24), stack[:, :, 5:].transpose(2, 0, 1))
    np.testing.assert_array_equal(reopened.read('z', 2, 3)[0], stack[2])


def random_access_copy(reader, path, slab=4):
    """What segment_volume does in one process: a chunked copy, then reads from it."""
    copy = ChunkedVolume.create(path, reader.shape, reader.dtype, slab_chunks(reader.shape, slab))
    reader.copy_to(copy, 0, reader.shape[0], slab)
    return reader.random_access(ChunkedVolume.open(path))


def test_compressed_tiff_streams_pages_and_copies_for_random_access(tmp_path, stack):
    tifffile.imwrite(tmp_path / 'v.tif', stack, compression='zlib', photometric='minisblack')
    with open_volume(tmp_path / 'v.tif') as reader:
        assert not reader.streams_any_axis
        np.testing.assert_array_equal(reader.read('z', 2, 5), stack[2:5])
        with pytest.raises(RuntimeError, match='random_access'):
            reader.read('y', 0, 2)
        with pytest.raises(ValueError, match='a copy of shape'):
            reader.copy_to(ChunkedVolume.create(tmp_path / 'bad.zarr', (1, 2, 3), stack.dtype, (1, 2, 3)), 0, 1)
        random_access_copy(reader, tmp_path / 'copy.zarr')
        assert reader.streams_any_axis
        np.testing.assert_array_equal(read_all(reader, 'x'), stack.transpose(2, 0, 1))


def test_folder_of_slices_in_natural_order_without_hidden_files_and_folders(tmp_path, stack):
    stack = np.concatenate([stack, stack[::-1]])  # 12 slices: alphabetically slice_10 and slice_11 follow slice_1
    for z, image in enumerate(stack):
        tifffile.imwrite(tmp_path / f'slice_{z}.tif', image, photometric='minisblack')
        (tmp_path / f'._slice_{z}.tif').write_bytes(b'\x00\x05\x16\x07')  # macOS metadata beside a copied file
    (tmp_path / 'thumbnails.tif').mkdir()
    with open_volume(tmp_path) as reader:
        assert reader.shape == stack.shape
        np.testing.assert_array_equal(read_all(reader, 'z'), stack)
        assert reader.describe('z', 3).endswith('slice_3.tif')
        assert reader.describe('z', 10).endswith('slice_10.tif')


def test_a_slice_that_is_a_link_to_nothing_is_named_not_skipped(tmp_path, stack):
    """A slice moved away behind its link: the folder was read one slice short, without a word."""
    for z, image in enumerate(stack):
        tifffile.imwrite(tmp_path / f'slice_{z}.tif', image, photometric='minisblack')
    (tmp_path / 'slice_2.tif').rename(tmp_path / 'moved.tiff.bak')
    (tmp_path / 'slice_2.tif').symlink_to(tmp_path / 'gone' / 'slice_2.tif')
    with pytest.raises(ImageFormatError, match=f"{tmp_path / 'slice_2.tif'}: a link to a file that does not exist"):
        open_volume(tmp_path)


def test_array_like_input(stack):
    reader = open_volume(stack.astype(np.float32))
    np.testing.assert_array_equal(reader.read('y', 5, 7), stack.astype(np.float32)[:, 5:7].transpose(1, 0, 2))


@pytest.mark.parametrize('make, error, message', [
    (lambda p: tifffile.imwrite(p / 'v.tif', np.zeros((8, 8), np.uint8)), ValueError,
     'expected a 3D .* got a single 2D image of shape \\(8, 8\\).*segment_image'),
    (lambda p: tifffile.imwrite(p / 'v.tif', np.zeros((2, 3, 8, 8), np.uint8), photometric='minisblack'), ImageFormatError,
     'unsupported 4D image'),
    (lambda p: (p / 'v.tif').write_bytes(b'II*\x00 this is not a tiff'), ImageFormatError,
     'not a readable TIFF'),
    (lambda p: (p / 'v.tif').mkdir(), ValueError, 'empty volume: no image files'),
])
def test_bad_files_are_named(tmp_path, make, error, message):
    make(tmp_path)
    with pytest.raises(error, match=message) as info:
        open_volume(tmp_path / 'v.tif')
    assert str(tmp_path / 'v.tif') in str(info.value)


@pytest.mark.parametrize('array, message', [
    (np.zeros((0, 8, 8), np.uint8), 'empty volume'),
    (np.zeros((8, 8), np.uint8), 'expected a 3D'),
    (np.zeros((2, 2, 8, 8), np.uint8), 'expected a 3D'),
])
def test_bad_arrays_are_refused(array, message):
    with pytest.raises(ValueError, match=message):
        open_volume(array)


def test_missing_path_and_mixed_slices(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.tif: file not found'):
        open_volume(tmp_path / 'missing.tif')
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / 'a1.png')
    Image.fromarray(np.zeros((8, 9), np.uint8)).save(tmp_path / 'a2.png')
    with pytest.raises(ImageFormatError, match='a2.png: slice of shape'):
        open_volume(tmp_path)


def test_nan_voxels_name_the_slice(tmp_path):
    volume = np.zeros((4, 8, 8), np.float32)
    volume[2, 3, 5] = np.nan
    tifffile.imwrite(tmp_path / 'v.tif', volume, photometric='minisblack')
    with open_volume(tmp_path / 'v.tif') as reader:
        reader.read('z', 0, 2)
        with pytest.raises(ImageFormatError, match=r'v.tif \[z=2\]: 1 NaN/Inf'):
            reader.read('z', 0, 4)
        with pytest.raises(ImageFormatError, match=r'\[x=5\]'):
            reader.read('x', 4, 8)


@pytest.mark.parametrize('dtype, imagej', [(np.uint16, True), (np.uint32, False)])
def test_label_tiff_is_written_atomically_with_the_voxel_size(tmp_path, dtype, imagej):
    labels = np.arange(3 * 5 * 7, dtype=dtype).reshape(3, 5, 7)
    path = tmp_path / 'labels.tif'
    write_tiff_pages(path, labels.shape, dtype, iter(labels), voxel_size_nm=(60, 50, 50))
    assert os.listdir(tmp_path) == ['labels.tif']
    array, voxel_size = read_volume(path)
    np.testing.assert_array_equal(array, labels)
    np.testing.assert_allclose(voxel_size, [60, 50, 50])
    np.testing.assert_allclose(read_voxel_size(path), [60, 50, 50])  # header only
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej == imagej
        if not imagej:
            assert '"voxel_size_nm": [60.0, 50.0, 50.0]' in tif.pages[0].description
    assert isinstance(tifffile.memmap(path, mode='r'), np.memmap)


@pytest.mark.parametrize('write, detail', [
    (dict(imagej=True, resolution=(20, 20), metadata={'spacing': 0, 'unit': 'um', 'axes': 'ZYX'}),
     r'OME, ImageJ or resolution tags: voxel sizes must be finite and > 0 nm, got \(0\.0, 50\.0, 50\.0\)'),
    (dict(imagej=True, resolution=(20, 20), metadata={'spacing': '0.05 um', 'unit': 'um', 'axes': 'ZYX'}),
     "OME, ImageJ or resolution tags: could not convert string to float: '0.05 um'"),
], ids=['zero-spacing', 'text-spacing'])
def test_unusable_voxel_size_metadata_read_as_none_with_a_warning_naming_the_file(tmp_path, stack, write, detail):
    """The pixels are sound and a voxel size given by the user needs none from the file: metadata that give no
    usable one (a zero or a text spacing) are warned once naming the file, not called a corrupt TIFF."""
    path = tmp_path / 'scan.tif'
    tifffile.imwrite(path, stack, **write)
    with pytest.warns(UserWarning, match=rf'^{path}: unusable voxel size in its metadata \(.*({detail})'):
        assert read_voxel_size(path) is None
    with pytest.warns(UserWarning):
        array, voxel_size = read_volume(path)
    np.testing.assert_array_equal(array, stack)
    assert voxel_size is None


def test_failed_write_leaves_the_old_output(tmp_path):
    path = tmp_path / 'labels.tif'
    path.write_bytes(b'previous result')

    def failing_pages():
        yield np.zeros((4, 4), np.uint16)
        raise RuntimeError('disk full')
    with pytest.raises(RuntimeError, match='disk full'):
        write_tiff_pages(path, (2, 4, 4), np.uint16, failing_pages())
    assert path.read_bytes() == b'previous result' and os.listdir(tmp_path) == ['labels.tif']
