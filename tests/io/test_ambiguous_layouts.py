"""Files that the header reader and the pixel reader would read differently are refused in one line naming the
file, before anything is segmented: a TIFF of several separate images (only the first would be read), a TIFF
whose pages tifffile takes as alike while one in between differs (it would be decoded as the first), a palette
PNG or BMP (its colours, not its indices, reach the pixels), a planar RGB TIFF (a colour image, not 3 slices), a
TIFF of channels (not z slices)."""
import json
import warnings

import numpy as np
import pytest
import tifffile
from PIL import Image

from libnet_mmdet.io import ImageFormatError, open_volume, read_volume
from libnet_mmdet.io.images import is_2d_image_file, open_stack, read_image, read_image_info


@pytest.mark.parametrize('pages', [
    [np.zeros((16, 20), np.uint8)] * 3,  # slices appended one call at a time: three series of one slice
    [np.zeros((4, 16, 20), np.uint16), np.zeros((8, 10), np.uint16)],  # a stack and a page that differs
], ids=['appended', 'odd-page'])
def test_a_tiff_of_several_images_is_refused_not_read_in_part(tmp_path, pages):
    path = tmp_path / 'stack.tif'
    for page in pages:
        tifffile.imwrite(path, page, append=True, photometric='minisblack')
    assert len(tifffile.TiffFile(path).series) == len(pages)  # what tifffile makes of it
    message = rf'^{path}: holds {len(pages)} separate images \(shapes \({pages[0].shape[0]}, '
    for read in (read_image_info, read_image, is_2d_image_file, open_volume):
        with pytest.raises(ImageFormatError, match=message):
            read(path)


@pytest.mark.parametrize('description', [None, json.dumps({'shape': [10, 16, 20]}),
                                         'ImageJ=1.11a\nimages=10\nslices=10\n'], ids=['plain', 'shaped', 'imagej'])
@pytest.mark.parametrize('odd', [dict(z=3, dtype=np.uint8), dict(z=7, compression='zlib'), dict(z=1, shape=(8, 20)),
                                 dict(z=3, photometric='miniswhite')],
                         ids=['dtype', 'compression', 'height', 'photometric'])
def test_a_page_unlike_the_others_is_refused_not_decoded_as_the_first(tmp_path, description, odd):
    """tifffile decodes every page of a stack as the first, checking only its width (a plain file whose pages 1, 7
    and last match the first, tifffile's JSON and ImageJ stacks): the odd page below came back as garbage, or failed
    as a corrupt file for another width."""
    path = tmp_path / 'stack.tif'
    stack = np.arange(10 * 16 * 20, dtype=np.uint16).reshape(10, 16, 20)
    with tifffile.TiffWriter(path) as tif:
        for z, page in enumerate(stack):
            layout = dict(photometric='minisblack')
            if z == odd['z']:
                page = np.zeros(odd.get('shape', page.shape), odd.get('dtype', page.dtype))
                layout = dict(photometric=odd.get('photometric', 'minisblack'), compression=odd.get('compression'))
            tif.write(page, metadata=None, contiguous=False, description=description if z == 0 else None, **layout)
    what = next(key for key in odd if key != 'z')  # named first among the differences
    message = rf'^{path}: page {odd["z"]} is stored unlike page 0 \({what} '
    if description is None and odd['z'] in (1, 7):  # not pages alike to tifffile: it makes them separate images
        message = rf'^{path}: holds 2 separate images'
    for read in (read_image_info, lambda path: read_image(path, 'z', odd['z']), open_volume):
        with pytest.raises(ImageFormatError, match=message):
            read(path)
    alike = tmp_path / 'alike.tif'
    with tifffile.TiffWriter(alike) as tif:
        for page in stack:
            tif.write(page, metadata=None, contiguous=False, compression='zlib')
    np.testing.assert_array_equal(read_image(alike, 'z', 3), stack[3])


@pytest.mark.parametrize('transparency', [False, True])
def test_a_palette_png_is_what_its_pixels_are_a_colour_image(tmp_path, transparency):
    """OpenCV reads a palette PNG as BGR (BGRA with a transparent colour): the header says so too, so a folder of
    such slices, or one given as labels, is refused as colour by the checks that read only headers."""
    path = tmp_path / 'slice.png'
    image = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).convert('P')
    image.save(path, **(dict(transparency=0) if transparency else {}))
    shape, dtype, is_stack = read_image_info(path)
    assert shape == read_image(path).shape == (8, 8, 4 if transparency else 3) and not is_stack
    folder = tmp_path / 'slices'
    folder.mkdir()
    for z in range(2):
        image.save(folder / f'slice_{z}.png')
    with pytest.raises(ImageFormatError, match=rf'^{folder / "slice_0.png"}: expected a 2D grayscale slice, got '
                       r'shape \(8, 8, 3\)'):
        open_volume(folder)


def test_a_tiff_stack_with_a_thumbnail_is_read_as_the_stack(tmp_path):
    """A reduced-resolution page beside the data (a preview some software writes) is not a second image."""
    path = tmp_path / 'stack.tif'
    stack = np.arange(4 * 16 * 20, dtype=np.uint16).reshape(4, 16, 20)
    with tifffile.TiffWriter(path) as tif:
        tif.write(stack, photometric='minisblack')
        tif.write(stack[0, ::4, ::4], photometric='minisblack', subfiletype=1)
    assert len(tifffile.TiffFile(path).series) == 2  # what tifffile makes of it
    assert read_image_info(path)[0] == stack.shape
    with open_volume(path) as reader:
        np.testing.assert_array_equal(reader.read('z', 0, 4), stack)


def test_a_palette_bmp_is_what_its_pixels_are(tmp_path):
    """The header said (H, W) grayscale for a palette BMP that OpenCV reads as BGR colours: a folder of such slices
    passed the header checks and gave (Z, Y, X, 3) slabs. OpenCV reads a palette of grays (in any order) as gray."""
    indices = (np.arange(8 * 10).reshape(8, 10) % 4).astype(np.uint8)
    for name, palette, shape in (('colour', [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0], (8, 10, 3)),
                                 ('gray', [255, 255, 255, 0, 0, 0, 128, 128, 128, 7, 7, 7], (8, 10))):
        image = Image.fromarray(indices, 'P')
        image.putpalette(palette)
        folder = tmp_path / name
        folder.mkdir()
        for z in range(2):
            image.save(folder / f'slice_{z}.bmp')
        path = folder / 'slice_0.bmp'
        shape_read, dtype, is_stack = read_image_info(path)
        assert shape_read == read_image(path).shape == shape and dtype == np.uint8 and not is_stack
    with pytest.raises(ImageFormatError, match=rf'^{tmp_path / "colour" / "slice_0.bmp"}: expected a 2D grayscale '
                       r'slice, got shape \(8, 10, 3\)'):
        open_volume(tmp_path / 'colour')
    with open_volume(tmp_path / 'gray') as reader:
        np.testing.assert_array_equal(reader.read('z', 0, 2), np.stack([np.uint8([255, 0, 128, 7])[indices]] * 2))


@pytest.mark.parametrize('compression', [None, 'zlib'])
def test_a_planar_rgb_tiff_is_a_colour_image_not_three_slices(tmp_path, compression):
    """A planar (separate) RGB TIFF stores its samples first, tifffile axes SYX: it was read as a (3, Y, X) stack."""
    rgb = np.random.default_rng(0).integers(0, 255, (3, 16, 20)).astype(np.uint8)
    path = tmp_path / 'planar.tif'
    tifffile.imwrite(path, rgb, photometric='rgb', planarconfig='separate', compression=compression)
    assert tifffile.TiffFile(path).series[0].axes == 'SYX'  # what tifffile makes of it
    expected = np.moveaxis(rgb, 0, -1)  # as an interleaved RGB TIFF is read
    assert read_image_info(path) == ((16, 20, 3), np.uint8, False) and is_2d_image_file(path)
    np.testing.assert_array_equal(read_image(path), expected)
    np.testing.assert_array_equal(open_stack(path), expected)  # not a memory map of the planes as (16, 20, 3)
    with pytest.raises(ImageFormatError, match=rf'^{path}: expected a 3D \(Z, Y, X\) stack, got a single 2D image '
                       r'of shape \(16, 20, 3\)'):
        open_volume(path)
    with pytest.raises(ImageFormatError, match=rf'^{path}: expected a 3-D \(Z, Y, X\) stack'):
        read_volume(path)


@pytest.mark.parametrize('kwargs', [dict(imagej=True), dict(ome=True)], ids=['imagej', 'ome'])
def test_a_tiff_of_channels_is_refused_not_read_as_slices(tmp_path, kwargs):
    """An ImageJ composite or an OME-TIFF of 3 channels (axes CYX) was read as a (3, Y, X) volume; one channel is
    still a 2D image, a (Z, 1, Y, X) hyperstack a stack."""
    path = tmp_path / 'channels.tif'
    tifffile.imwrite(path, np.zeros((3, 16, 20), np.uint8), photometric='minisblack', metadata={'axes': 'CYX'},
                     **kwargs)
    message = (rf'^{path}: TIFF axes \(CYX\) of shape \(3, 16, 20\) hold 3 channels, not a grayscale image or a '
               r'\(Z, Y, X\) volume; save one channel per file$')
    for read in (read_image_info, read_image, is_2d_image_file, open_volume, read_volume):
        with pytest.raises(ImageFormatError, match=message):
            read(path)
    tifffile.imwrite(path, np.zeros((1, 16, 20), np.uint8), photometric='minisblack', metadata={'axes': 'CYX'},
                     **kwargs)
    assert read_image_info(path) == ((16, 20), np.uint8, False)
    tifffile.imwrite(path, np.zeros((4, 1, 16, 20), np.uint8), photometric='minisblack', metadata={'axes': 'ZCYX'},
                     **kwargs)
    assert read_image_info(path) == ((4, 16, 20), np.uint8, True)


@pytest.mark.parametrize('kwargs', [dict(imagej=True), dict(ome=True)], ids=['imagej', 'ome'])
def test_a_tiff_of_time_points_is_read_as_slices_with_a_warning(tmp_path, kwargs):
    """ImageJ frames or OME time points (axes TYX): often a stack saved as frames, sometimes a time series that
    3D linking would join over time. Read as z slices, as before, and said."""
    path = tmp_path / 'frames.tif'
    volume = np.arange(5 * 16 * 20, dtype=np.uint16).reshape(5, 16, 20)
    tifffile.imwrite(path, volume, photometric='minisblack', metadata={'axes': 'TYX'}, **kwargs)
    with pytest.warns(UserWarning, match=rf'^{path}: its 5 images are stored as time points \(TIFF axes TYX'):
        np.testing.assert_array_equal(read_volume(path)[0], volume)
    slices = tmp_path / 'slices.tif'
    tifffile.imwrite(slices, volume, photometric='minisblack', metadata={'axes': 'ZYX'}, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert read_image_info(slices) == ((5, 16, 20), np.uint16, True)
