"""tools/segment.py on one 2D image (a single-page TIFF or a PNG): segmented as one slice into an (H, W) label TIFF,
with a stand-in predictor for the model; the options of volumes are refused before the model is loaded."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from helpers import import_tool, never_loaded
from libnet_mmdet.volume.testing import IntensityPredictor


@pytest.fixture
def segment_tool():
    return import_tool('segment')


def _two_discs():
    """(40, 48) uint8: two discs of different grey values, the instances :class:`IntensityPredictor` finds."""
    yy, xx = np.mgrid[:40, :48]
    image = np.zeros((40, 48), np.uint8)
    image[(yy - 12) ** 2 + (xx - 12) ** 2 <= 36] = 200
    image[(yy - 26) ** 2 + (xx - 32) ** 2 <= 64] = 120
    return image


@pytest.fixture(params=['slice.tif', 'slice.png'])
def image_file(tmp_path, request):
    path = tmp_path / request.param
    if path.suffix == '.png':
        Image.fromarray(_two_discs()).save(path)
    else:
        tifffile.imwrite(path, _two_discs())
    return path


def _argv(image_file, *extra):
    return [str(image_file), '--config', 'model.py', '--checkpoint', 'model.pth', '--device', 'cpu',
            '--out', str(image_file.parent / 'labels.tif'), *map(str, extra)]


def test_the_labels_of_a_2d_image_keep_its_pixel_size(segment_tool, tmp_path, monkeypatch):
    """An ImageJ-calibrated slice (20 px/um): its labels were written without a pixel size (Fiji then overlaid the
    two at different scales); a PNG records none and gives none."""
    from libnet_mmdet.io import read_voxel_size
    monkeypatch.setattr(segment_tool, 'init_segmenter', lambda *args, **kwargs: IntensityPredictor())
    calibrated = tmp_path / 'calibrated.tif'
    tifffile.imwrite(calibrated, _two_discs(), imagej=True, resolution=(20, 20), metadata={'unit': 'um'})
    png = tmp_path / 'slice.png'
    Image.fromarray(_two_discs()).save(png)
    for image, expected in ((calibrated, [50, 50, 50]), (png, None)):
        segment_tool.main(_argv(image, '--overwrite'))
        size = read_voxel_size(tmp_path / 'labels.tif')
        assert size is None if expected is None else list(size) == expected
        assert tifffile.imread(tmp_path / 'labels.tif').shape == (40, 48)


def test_a_2d_image_gives_2d_labels_and_an_overlay(segment_tool, image_file, monkeypatch, capsys):
    monkeypatch.setattr(segment_tool, 'init_segmenter', lambda *args, **kwargs: IntensityPredictor())
    overlays = image_file.parent / 'overlays'
    segment_tool.main(_argv(image_file, '--overlays', overlays))
    labels = tifffile.imread(image_file.parent / 'labels.tif')
    assert labels.shape == (40, 48) and labels.dtype == np.uint16
    expected = _two_discs()
    assert sorted(np.unique(labels[expected == 200])) == [1] and sorted(np.unique(labels[expected == 120])) == [2]
    assert not labels[expected == 0].any()
    out = capsys.readouterr().out
    assert 'scale: 1' in out and f"wrote {image_file.parent / 'labels.tif'}: 2 particles, (H, W) = (40, 48)" in out
    picture = np.asarray(Image.open(overlays / 'overlay.png'))
    assert picture.shape == (40, 48, 3) and sorted(p.name for p in overlays.glob('*.png')) == ['overlay.png']
    with pytest.raises(SystemExit, match='labels.tif: exists; pass --overwrite'):  # nothing replaced without it
        segment_tool.main(_argv(image_file))
    segment_tool.main(_argv(image_file, '--overwrite', '--scale', 2))
    assert capsys.readouterr().out.startswith('scale: 2\n')


@pytest.mark.parametrize('extra, message', [
    (['--views', 'xy'], 'is a 2D image: --views is for volumes only'),
    (['--smooth', '1'], 'is a 2D image: --smooth is for volumes only'),
    (['--min-voxels', 'auto', '--slab', 4], 'is a 2D image: --min-voxels, --slab are for volumes only'),
    (['--report', '{tmp}/report', '--voxel-size-nm', 50],
     'is a 2D image: --report, --voxel-size-nm are for volumes only'),
    (['--launcher', 'pytorch'], 'is a 2D image: --launcher is for volumes only'),
    (['--scale', 0], r'scale must be in \(0, 16\]'),
    (['--out', '{tmp}/labels.zarr'], 'labels.zarr: the labels of a 2D image are written as TIFF'),
    (['--out', '{tmp}/{name}'], 'the output would overwrite the input|unknown label volume format .\\.png'),
])
def test_volume_options_and_bad_settings_are_refused_before_the_model(segment_tool, image_file, monkeypatch, extra,
                                                                       message):
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    extra = [str(value).format(tmp=image_file.parent, name=image_file.name) for value in extra]
    with pytest.raises(SystemExit, match=message) as info:
        segment_tool.main(_argv(image_file, *extra))
    assert '\n' not in str(info.value.code)
    assert sorted(p.name for p in image_file.parent.iterdir()) == [image_file.name]


def test_an_unreadable_image_is_one_line(segment_tool, tmp_path, monkeypatch):
    path = tmp_path / 'broken.tif'
    path.write_bytes(b'II*\x00 not a tiff')
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    with pytest.raises(SystemExit, match='segment.py: error: .*broken.tif') as info:
        segment_tool.main(_argv(path))
    assert '\n' not in str(info.value.code)


def test_pixels_that_cannot_be_segmented_are_refused_before_the_model(segment_tool, tmp_path, monkeypatch):
    """A sound header over NaN pixels: found by reading the pixels before the model loads, not after."""
    path = tmp_path / 'nan.tif'
    image = np.ones((32, 40), np.float32)
    image[5, 7] = np.nan
    tifffile.imwrite(path, image)
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    with pytest.raises(SystemExit, match=r'segment.py: error: .*nan\.tif.*1 NaN/Inf pixel'):
        segment_tool.main(_argv(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['nan.tif']
