"""A (1, Y, X) volume stays a (1, Y, X) volume through a file: what segment_volume and write_tiff write reads back
so with read_volume, open_volume, max_label and tifffile (issue 17, defect 6); 2D files stay 2D; a length-1 Y or X
axis stays too."""
import numpy as np
import pytest
import tifffile
from PIL import Image

from libnet_mmdet.apis import segment_volume
from libnet_mmdet.io import (ImageFormatError, LabelVolumeWriter, is_2d_image_file, max_label, open_labels, open_volume,
                             read_volume, read_voxel_size, write_tiff)
from libnet_mmdet.io.images import read_image, read_image_info
from libnet_mmdet.volume.testing import IntensityPredictor


def one_slice_scene(n_particles):
    """(1, Y, X) uint8 volume with ``n_particles`` 2x2 squares one pixel apart, bright enough for the default
    score threshold (IntensityPredictor finds each as one particle, scored intensity / 255)."""
    per_row = int(np.ceil(np.sqrt(n_particles)))
    volume = np.zeros((1, 3 * per_row, 3 * per_row), np.uint8)
    for k in range(n_particles):
        row, col = divmod(k, per_row)
        volume[0, 3 * row:3 * row + 2, 3 * col:3 * col + 2] = 128 + k % 128
    return volume


def test_segment_volume_output_of_one_slice_reads_back_as_a_volume(tmp_path):
    n_particles, dtype = 300, np.uint16
    volume = one_slice_scene(n_particles)
    out = tmp_path / 'labels.tif'
    labels = segment_volume(IntensityPredictor(), volume, out=out, tile_size=None, progress=False,
                            voxel_size_nm=(60, 50, 40))
    assert labels.shape == (1,) + volume.shape[1:] and labels.dtype == dtype and labels.max() == n_particles
    array, voxel_size = read_volume(out)
    assert array.shape == volume.shape and array.dtype == dtype
    np.testing.assert_array_equal(array, labels)
    np.testing.assert_allclose(voxel_size, [60, 50, 40])
    assert tifffile.imread(out).shape == volume.shape  # tifffile (and other readers of its metadata) agree
    with open_volume(out) as reader:
        assert reader.shape == volume.shape
        np.testing.assert_array_equal(reader.read('x', 0, 3), np.asarray(labels)[:, :, :3].transpose(2, 0, 1))
    assert max_label(out) == n_particles


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16, np.float32, np.uint32])
def test_write_tiff_keeps_the_z_axis_of_one_slice_and_the_shape_of_others(tmp_path, dtype):
    """Label files (uint16, uint32: what segment_volume writes through write_tiff_pages) and images alike."""
    rng = np.random.default_rng(0)
    for shape in [(1, 5, 7), (3, 5, 7), (5, 7)]:
        array = rng.integers(1, 200, shape).astype(dtype)
        path = tmp_path / f'{len(shape)}_{shape[0]}.tif'
        write_tiff(path, array, voxel_size_nm=25)
        assert read_image_info(path)[0] == shape
        np.testing.assert_array_equal(read_image(path, allow_stack=True), array)
        assert max_label(path) == array.max()
        if len(shape) == 3:
            read, voxel_size = read_volume(path)
            np.testing.assert_array_equal(read, array)
            np.testing.assert_allclose(voxel_size, [25, 25, 25])
        with tifffile.TiffFile(path) as tif:  # ImageJ where ImageJ can say the dtype and the shape, as before
            assert tif.is_imagej == (dtype != np.uint32 and shape[:-2] != (1,))


def test_imagej_slices_entry_declares_a_one_slice_stack(tmp_path):
    image = np.arange(20, dtype=np.uint16).reshape(4, 5)
    tifffile.imwrite(tmp_path / 'stack.tif', image, description='ImageJ=1.11a\nimages=1\nslices=1\n', metadata=None)
    tifffile.imwrite(tmp_path / 'flat.tif', image, imagej=True)
    assert read_volume(tmp_path / 'stack.tif')[0].shape == (1, 4, 5)
    with open_volume(tmp_path / 'stack.tif') as reader:
        np.testing.assert_array_equal(reader.read('z', 0, 1), image[None])
    assert read_image_info(tmp_path / 'flat.tif')[0] == (4, 5)  # no z axis declared: a 2D image, as before


def test_max_label_counts_compressed_and_old_one_slice_files(tmp_path):
    labels = np.zeros((6, 8, 8), np.uint16)
    labels[2, 1:3, 1:3], labels[5, 4:6, 4:6] = 7, 9
    tifffile.imwrite(tmp_path / 'zlib.tif', labels, compression='zlib', photometric='minisblack')
    assert max_label(tmp_path / 'zlib.tif', slab=4) == 9
    tifffile.imwrite(tmp_path / 'old.tif', labels[5], imagej=True)  # a one-slice result written before the fix
    assert max_label(tmp_path / 'old.tif') == 9


def test_is_2d_image_file_tells_one_image_from_a_volume(tmp_path):
    """tools/segment.py segments a 2D image file as one slice and anything else as a volume: a written (1, Y, X)
    volume stays a volume, a plain one-page TIFF or a PNG is an image."""
    write_tiff(tmp_path / 'volume.tif', np.zeros((1, 8, 8), np.uint8))
    tifffile.imwrite(tmp_path / 'stack.tif', np.zeros((4, 8, 8), np.uint8), photometric='minisblack')
    tifffile.imwrite(tmp_path / 'page.tif', np.zeros((8, 8), np.uint16))
    tifffile.imwrite(tmp_path / 'rgb.tiff', np.zeros((8, 8, 3), np.uint8))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / 'slice.png')
    (tmp_path / 'folder').mkdir()
    assert [is_2d_image_file(tmp_path / name) for name in ('page.tif', 'rgb.tiff', 'slice.png')] == [True] * 3
    assert not any(is_2d_image_file(tmp_path / name) for name in ('volume.tif', 'stack.tif', 'folder', 'missing.tif'))
    assert not is_2d_image_file(f"{tmp_path / 'scan.h5'}:/data")
    (tmp_path / 'broken.png').write_bytes(b'not a png')
    with pytest.raises(ImageFormatError, match='broken.png'):
        is_2d_image_file(tmp_path / 'broken.png')


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16, np.float32, np.uint32])
@pytest.mark.parametrize('shape', [(4, 1, 30), (4, 30, 1), (1, 1, 30), (1, 30), (30, 1)])
def test_a_length_1_y_or_x_axis_reads_back_as_written(tmp_path, shape, dtype):
    """ImageJ drops a length-1 Y or X: a (Z, 1, X) stack read back as a 2D (Z, X) image, a (Z, Y, 1) one as a damaged
    file; the uint32 JSON description was read with the axis squeezed away."""
    array = np.arange(1, np.prod(shape) + 1).reshape(shape).astype(dtype)
    path = tmp_path / 'thin.tif'
    write_tiff(path, array, voxel_size_nm=(60, 50, 40))
    assert read_image_info(path)[:2] == (shape, dtype) and tifffile.imread(path).shape == shape
    np.testing.assert_array_equal(read_image(path, allow_stack=True), array)
    np.testing.assert_allclose(read_voxel_size(path)[3 - len(shape):], [60, 50, 40][3 - len(shape):])
    if len(shape) == 3:
        np.testing.assert_array_equal(read_volume(path)[0], array)
        with open_volume(path) as reader:
            assert reader.shape == shape
            np.testing.assert_array_equal(reader.read('x', 0, shape[2]), np.moveaxis(array, 2, 0))
        assert max_label(path) == array.max()


@pytest.mark.parametrize('dtype', [np.uint16, np.uint32])
def test_a_label_writer_keeps_a_length_1_y_or_x_axis(tmp_path, dtype):
    labels = np.arange(1, 4 * 30 + 1).reshape(4, 1, 30).astype(dtype)
    for k, shape in enumerate(((4, 1, 30), (4, 30, 1))):
        out = tmp_path / f'labels_{k}.tif'
        writer = LabelVolumeWriter(out, shape, dtype, (60, 50, 40), chunk_z=2)
        writer.create()
        writer.write(0, labels.reshape(shape))
        writer.commit()
        np.testing.assert_array_equal(open_labels(out), labels.reshape(shape))
        np.testing.assert_allclose(read_voxel_size(out), [60, 50, 40])
