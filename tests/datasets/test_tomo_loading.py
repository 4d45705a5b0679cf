"""LoadTomoImageFromFile: TIFF (8/16/32-bit, 2D page or stack slice), PNG/JPG, normalisation and clear errors."""
import numpy as np
import pytest
import tifffile
from PIL import Image

from libnet_mmdet.io import ImageFormatError
from libnet_mmdet.io.images import fill_by_mirror, intensity_range, normalize_intensity, outside_view_mask
from libnet_mmdet.datasets.transforms import LoadTomoImageFromFile, LoadTomoImageFromNDArray


def ramp(dtype, shape=(24, 30)):
    """A (H, W) ramp spanning the dtype's typical range, with one hot and one cold outlier pixel."""
    values = np.linspace(0, 1, shape[0] * shape[1]).reshape(shape)
    scale = {np.uint8: 200, np.uint16: 50000, np.float32: 3.5}[dtype]
    image = (values * scale + (10 if dtype != np.float32 else -1.0)).astype(dtype)
    image[0, 0], image[-1, -1] = image.min() // 2 if dtype != np.float32 else -100, image.max()
    return image


def load(path=None, **kwargs):
    results = dict(img_path=str(path)) if path is not None else {}
    return LoadTomoImageFromFile(**kwargs)(results)


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16, np.float32])
def test_tiff_is_normalised_to_0_255_float32_with_3_channels(tmp_path, dtype):
    image = ramp(dtype)
    tifffile.imwrite(tmp_path / 'slice.tif', image, photometric='minisblack')
    results = load(tmp_path / 'slice.tif')
    img = results['img']
    assert img.dtype == np.float32 and img.shape == (24, 30, 3)
    assert results['img_shape'] == results['ori_shape'] == (24, 30)
    np.testing.assert_array_equal(img[..., 0], img[..., 2])
    low, high = np.percentile(image.astype(np.float32), (0.5, 99.5))
    expected = np.clip((image.astype(np.float32) - low) * 255 / (high - low), 0, 255)
    np.testing.assert_allclose(img[..., 0], expected, atol=1e-3)
    assert img.min() == 0 and img.max() == 255  # the outliers are clipped, not stretched to


def test_png_8_and_16_bit_and_options(tmp_path):
    image16 = ramp(np.uint16)
    Image.fromarray(image16).save(tmp_path / 'a16.png')
    np.testing.assert_allclose(load(tmp_path / 'a16.png', normalize='minmax')['img'][..., 0],
                               normalize_intensity(image16, 'minmax'), atol=1e-3)
    image8 = ramp(np.uint8)
    Image.fromarray(image8).save(tmp_path / 'a8.png')
    raw = load(tmp_path / 'a8.png', normalize='none', channels=1, to_float32=False)['img']
    assert raw.dtype == np.uint8 and raw.shape == (24, 30, 1)
    np.testing.assert_array_equal(raw[..., 0], image8)
    Image.fromarray(np.stack([image8] * 3, -1)).save(tmp_path / 'rgb.jpg', quality=100)
    assert load(tmp_path / 'rgb.jpg')['img'].shape == (24, 30, 3)
    with pytest.raises(ValueError, match=r'a16\.png: normalize="none" with to_float32=False needs 8-bit data'):
        load(tmp_path / 'a16.png', normalize='none', to_float32=False)


def test_stack_slice_is_read_from_data_info_keys(tmp_path):
    stack = np.random.default_rng(0).normal(size=(5, 12, 9)).astype(np.float32)
    tifffile.imwrite(tmp_path / 'stack.tif', stack, photometric='minisblack')
    for axis, index in (('z', 3), ('y', 11), ('x', 0)):
        results = LoadTomoImageFromFile(normalize='none', channels=1)(
            dict(img_path=str(tmp_path / 'stack.tif'), slice_axis=axis, slice_index=index))
        np.testing.assert_array_equal(results['img'][..., 0], np.take(stack, index, axis='zyx'.index(axis)))


def test_context_slices_give_a_stack_slice_its_neighbours_as_channels(tmp_path):
    stack = np.random.default_rng(0).normal(size=(5, 12, 9)).astype(np.float32)
    tifffile.imwrite(tmp_path / 'stack.tif', stack, photometric='minisblack')
    load_context = LoadTomoImageFromFile(normalize='none', context_slices=True)
    for axis, index, neighbours in (('z', 2, (1, 2, 3)), ('z', 0, (0, 0, 1)), ('y', 11, (10, 11, 11)),
                                    ('x', 4, (3, 4, 5))):
        img = load_context(dict(img_path=str(tmp_path / 'stack.tif'), slice_axis=axis, slice_index=index))['img']
        expected = np.stack([np.take(stack, k, axis='zyx'.index(axis)) for k in neighbours], axis=-1)
        np.testing.assert_array_equal(img, expected)
    # a 2D image has no neighbours: its gray is repeated, as without context
    tifffile.imwrite(tmp_path / 'slice.tif', stack[0])
    np.testing.assert_array_equal(load(tmp_path / 'slice.tif', normalize='none', context_slices=True)['img'],
                                  load(tmp_path / 'slice.tif', normalize='none')['img'])
    assert 'context_slices=True' in repr(load_context)
    with pytest.raises(ValueError, match='context_slices=True needs channels=3'):
        LoadTomoImageFromFile(channels=1, context_slices=True)
    with pytest.raises(ValueError, match='context_slices must be True or False'):
        LoadTomoImageFromFile(context_slices='yes')


def test_in_memory_array_is_normalised():
    image = ramp(np.uint16)
    results = LoadTomoImageFromFile()(dict(img=image, img_id=0))
    assert results['img'].shape == (24, 30, 3) and results['img'].max() == 255


def test_ndarray_loader_prepares_the_array_as_the_file_loader_the_file(tmp_path):
    image = ramp(np.uint16)
    tifffile.imwrite(tmp_path / 'slice.tif', image, photometric='minisblack')
    from_file = LoadTomoImageFromFile(percentiles=(1, 99), channels=1)(dict(img_path=str(tmp_path / 'slice.tif')))
    from_array = LoadTomoImageFromNDArray(percentiles=(1, 99), channels=1)(
        dict(img=image, img_path=str(tmp_path / 'other.tif')))  # the array, never the file
    np.testing.assert_array_equal(from_array['img'], from_file['img'])
    assert from_array['img_shape'] == from_array['ori_shape'] == (24, 30)


@pytest.mark.parametrize('dtype, mode', [(np.uint8, 'none'), (np.uint16, 'percentile'), (np.float32, 'percentile')])
def test_auto_keeps_8_bit_data_and_normalises_other_dtypes(dtype, mode):
    image = ramp(dtype)
    results = LoadTomoImageFromNDArray(normalize='auto')(dict(img=image))
    assert results['img'].dtype == np.float32 and results['img'].shape == (24, 30, 3)
    np.testing.assert_array_equal(results['img'][..., 1], normalize_intensity(image, mode))


def test_constant_image_maps_to_zero(tmp_path):
    tifffile.imwrite(tmp_path / 'flat.tif', np.full((8, 8), 7, np.uint16), photometric='minisblack')
    assert not load(tmp_path / 'flat.tif')['img'].any()


@pytest.mark.parametrize('case, error, message', [
    ('missing', FileNotFoundError, r'image file not found: .*missing\.tif'),
    ('corrupt', ImageFormatError, r'corrupt\.tif: not a readable TIFF file'),
    ('corrupt_png', ImageFormatError, r'corrupt_png\.png: not a readable image file'),
    ('nan', ImageFormatError, r'nan\.tif: 1 NaN/Inf pixel\(s\), first at index \(2, 3\)'),
    ('inf_slice', ImageFormatError, r'inf_slice\.tif \[z=1\]: 1 NaN/Inf pixel\(s\), first at index \(4, 0\)'),
    ('4d', ImageFormatError, r'4d\.tif: unsupported 4D image of shape \(2, 3, 8, 8\)'),
    ('stack', ImageFormatError, r'stack\.tif: a 3D stack of shape \(Z, Y, X\) = \(3, 8, 8\), not one 2D image'),
    ('out_of_range', ImageFormatError, r'out_of_range\.tif \[y=8\]: slice index out of range'),
])
def test_bad_images_raise_one_clear_error_naming_the_file(tmp_path, case, error, message):
    path = tmp_path / f'{case}.{"png" if case == "corrupt_png" else "tif"}'
    results = dict(img_path=str(path))
    if case in ('corrupt', 'corrupt_png'):
        path.write_bytes(b'II*\x00garbage' if case == 'corrupt' else b'\x89PNG garbage')
    elif case == 'nan':
        image = np.zeros((8, 8), np.float32)
        image[2, 3] = np.nan
        tifffile.imwrite(path, image, photometric='minisblack')
    elif case == 'inf_slice':
        stack = np.zeros((3, 8, 8), np.float32)
        stack[1, 4, 0] = np.inf
        tifffile.imwrite(path, stack, photometric='minisblack')
        results.update(slice_axis='z', slice_index=1)
    elif case == '4d':
        tifffile.imwrite(path, np.zeros((2, 3, 8, 8), np.uint16), photometric='minisblack')
    elif case in ('stack', 'out_of_range'):
        tifffile.imwrite(path, np.zeros((3, 8, 8), np.uint16), photometric='minisblack')
        if case == 'out_of_range':
            results.update(slice_axis='y', slice_index=8)
    with pytest.raises(error, match=message):
        LoadTomoImageFromFile()(results)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='normalize must be one of'):
        LoadTomoImageFromFile(normalize='zscore')
    with pytest.raises(ValueError, match='percentiles must satisfy'):
        LoadTomoImageFromFile(percentiles=(99, 1))
    with pytest.raises(ValueError, match='channels must be 1 or 3'):
        LoadTomoImageFromFile(channels=2)


def test_a_given_intensity_range_replaces_the_slice_own():
    """One mapping for every slice of a volume: results['intensity_range'] maps to 0-255, beyond is clipped."""
    image = np.array([[100, 150], [200, 400]], np.uint16)
    loader = LoadTomoImageFromNDArray(channels=1)

    shared = loader(dict(img=image, intensity_range=(100.0, 300.0)))['img'][..., 0]

    np.testing.assert_allclose(shared, [[0, 63.75], [127.5, 255]])
    np.testing.assert_array_equal(loader(dict(img=image, intensity_range=None))['img'], loader(dict(img=image))['img'])
    assert loader.intensity_range(image) == intensity_range(image, 'percentile', (0.5, 99.5))
    assert LoadTomoImageFromNDArray(normalize='auto').intensity_range(image.astype(np.uint8)) is None  # kept as is
    kept = LoadTomoImageFromNDArray(normalize='auto')(dict(img=image.astype(np.uint8), intensity_range=(0, 1)))
    np.testing.assert_array_equal(kept['img'][..., 0], image.astype(np.uint8))  # 'none' ignores a range



def test_a_fill_value_outside_the_field_of_view_is_left_out_of_the_range():
    """Reconstructions write 0 outside the reconstructed cylinder: those pixels must not set the dark end."""
    rng = np.random.default_rng(2)
    sample = rng.normal(20000, 3000, (64, 64)).clip(5000, 60000).astype(np.uint16)
    yy, xx = np.mgrid[:64, :64]
    filled = np.where((yy - 31.5) ** 2 + (xx - 31.5) ** 2 <= 32 ** 2, sample, 0).astype(np.uint16)  # 21 % zeros
    inside = filled > 0

    assert intensity_range(filled) == intensity_range(filled[inside])
    prepared = LoadTomoImageFromNDArray(channels=1, fill_outside_view=False)(dict(img=filled))['img'][..., 0]
    np.testing.assert_allclose(prepared[inside], normalize_intensity(filled[inside]), atol=1e-3)
    assert (prepared[~inside] == 0).all()
    saturated = np.minimum(sample, 22000)  # 25 % at the detector's ceiling: the rest sets the range, they map to 255
    assert intensity_range(saturated)[1] < 22000
    assert (normalize_intensity(saturated)[saturated == 22000] == 255).all()
    three_values = np.repeat([0, 120, 200], 30).astype(np.uint8)  # piecewise constant: nothing is left out
    assert intensity_range(three_values, 'percentile', (0, 100)) == (0, 200)
    assert intensity_range(filled, 'minmax') == (0, filled.max())  # 'minmax' means the image's own extremes


def test_the_fill_outside_the_field_of_view_is_shown_as_the_inference_api_shows_it(tmp_path):
    """Training slices (and tools/test.py's) see the fill around a reconstructed disc given the nearest pixel's
    value, as segment_image shows it to the model: not a flat black edge cutting the particles."""
    rng = np.random.default_rng(3)
    stack = rng.normal(20000, 3000, (3, 64, 64)).clip(5000, 60000).astype(np.uint16)
    yy, xx = np.mgrid[:64, :64]
    outside = (yy - 31.5) ** 2 + (xx - 31.5) ** 2 > 30 ** 2
    stack[:, outside] = 0
    assert (outside_view_mask(stack[1]) == outside).all()
    tifffile.imwrite(tmp_path / 'stack.tif', stack, photometric='minisblack')
    sliced = dict(img_path=str(tmp_path / 'stack.tif'), slice_axis='z', slice_index=1)

    img = LoadTomoImageFromFile(channels=1)(dict(sliced))['img'][..., 0]

    np.testing.assert_allclose(img, normalize_intensity(fill_by_mirror(stack[1], outside)), atol=1e-3)
    assert np.mean(img[outside] == 0) <= 2 * np.mean(img[~outside] == 0) + 0.01  # no flat 0 left
    raw = LoadTomoImageFromFile(channels=1, fill_outside_view=False)(dict(sliced))['img'][..., 0]
    assert (raw[outside] == 0).all()
    np.testing.assert_array_equal(LoadTomoImageFromNDArray(channels=1)(dict(img=stack[1]))['img'][..., 0], img)
    # a 2.5D stack: its centre slice's field of view fills all three channels
    context = LoadTomoImageFromFile(normalize='none', context_slices=True)(dict(sliced))['img']
    for channel, index in enumerate((0, 1, 2)):
        np.testing.assert_array_equal(context[..., channel], fill_by_mirror(stack[index], outside))
    clean = rng.normal(20000, 3000, (64, 64)).clip(5000, 60000).astype(np.uint16)  # no fill: left as it is
    kept = LoadTomoImageFromNDArray(normalize='none', channels=1)(dict(img=clean))['img'][..., 0]
    np.testing.assert_array_equal(kept, clean)
    assert 'fill_outside_view=True' in repr(LoadTomoImageFromFile())
    with pytest.raises(ValueError, match='fill_outside_view must be True or False'):
        LoadTomoImageFromFile(fill_outside_view=1)
