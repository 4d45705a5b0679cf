"""libnet_mmdet.visualization.render: the one label renderer, the one (atomic) PNG writer and the volume overlays."""
import os

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from libnet_mmdet.io import InputError, open_volume, write_tiff
from libnet_mmdet.io.images import normalize_intensity
from libnet_mmdet.visualization import render_labels, write_overlays, write_png


def _slice_and_labels():
    """(12, 16) uint16 ramp and two square instances: 1 at rows 2-6, columns 2-6; 2 at rows 6-10, columns 9-14."""
    image = (np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 300)
    labels = np.zeros((12, 16), np.int32)
    labels[2:7, 2:7] = 1
    labels[6:11, 9:15] = 2
    return image, labels


def _read_png(path):
    with Image.open(path) as png:
        assert png.format == 'PNG'
        return np.asarray(png)


def test_render_labels_tints_instances_colours_boundaries_and_leaves_the_background_gray():
    image, labels = _slice_and_labels()

    picture = render_labels(image, labels)

    assert picture.shape == (12, 16, 3) and picture.dtype == np.uint8
    assert tuple(picture[2, 2]) == (255, 255, 0) and tuple(picture[6, 4]) == (255, 255, 0)  # inner boundaries
    interior = picture[3:6, 3:6].astype(int)
    assert (interior.max(-1) - interior.min(-1) > 20).all()  # tinted
    background = labels == 0
    gray = np.repeat(normalize_intensity(image)[background][:, None], 3, axis=1)
    assert np.allclose(picture[background], gray, atol=0.5 + 1e-3)  # untinted
    assert tuple(render_labels(image, labels, boundary_color=(0, 0, 255))[2, 2]) == (0, 0, 255)


def test_render_labels_of_a_channel_image_and_without_instances():
    image, labels = _slice_and_labels()
    channels = np.repeat(image[..., None].astype(np.float32), 3, axis=-1)  # (H, W, 3) as the pipeline gives

    assert np.array_equal(render_labels(channels, labels), render_labels(image, labels))
    empty = render_labels(image, np.zeros_like(labels))
    assert (empty[..., 0] == empty[..., 1]).all() and (empty[..., 1] == empty[..., 2]).all()
    with pytest.raises(ValueError, match=r'labels_hw: shape \(12, 15\) does not match'):
        render_labels(image, labels[:, :15])


def test_render_labels_refuses_a_bad_alpha_and_non_label_arrays():
    """Audit #20: alpha=5, float and negative labels were drawn in wrong colours without a word."""
    image, labels = _slice_and_labels()
    for alpha in (5, -1, float('nan'), '0.3', True):
        with pytest.raises(InputError, match=r'alpha must be in \[0, 1\], got'):
            render_labels(image, labels, alpha=alpha)
    with pytest.raises(TypeError, match='labels_hw: instance labels must have an integer dtype'):
        render_labels(image, labels * 0.5)
    with pytest.raises(ValueError, match='labels_hw: instance labels must be >= 0, found -2'):
        render_labels(image, -labels)
    with pytest.raises(ValueError, match=r'labels_hw: expected a 2-D instance label array, got shape \(1, 12, 16\)'):
        render_labels(image, labels[None])
    assert render_labels(image, labels, alpha=np.float32(1)).shape == (12, 16, 3)


@pytest.mark.parametrize('picture', [np.arange(60, dtype=np.uint8).reshape(5, 12),
                                     np.arange(180, dtype=np.uint8).reshape(5, 12, 3)], ids=['gray', 'rgb'])
def test_write_png_writes_an_array_pixel_for_pixel_and_atomically(tmp_path, picture, monkeypatch):
    path = tmp_path / 'new_folder' / 'picture.png'

    write_png(path, picture)

    assert np.array_equal(_read_png(path), picture) and os.listdir(path.parent) == ['picture.png']

    def broken_save(self, stream, *args, **kwargs):
        stream.write(b'partial')
        raise OSError('disk full')

    monkeypatch.setattr(Image.Image, 'save', broken_save)
    with pytest.raises(OSError, match='disk full'):
        write_png(path, np.zeros_like(picture))
    monkeypatch.undo()
    assert np.array_equal(_read_png(path), picture) and os.listdir(path.parent) == ['picture.png']


def test_write_png_writes_a_figure_atomically(tmp_path, monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    figure = Figure(figsize=(2, 1))
    figure.add_subplot().plot([0, 1], [1, 0])
    path = tmp_path / 'figure.png'

    write_png(path, figure, dpi=50)

    first = _read_png(path)
    assert first.ndim == 3 and max(first.shape[:2]) <= 100 and os.listdir(tmp_path) == ['figure.png']

    def broken_print(self, stream, *args, **kwargs):  # fails half-way through writing (mathtext fails earlier)
        stream.write(b'partial')
        raise OSError('disk full')

    monkeypatch.setattr(FigureCanvasAgg, 'print_png', broken_print)
    with pytest.raises(OSError, match='disk full'):
        write_png(path, figure)
    monkeypatch.undo()
    assert np.array_equal(_read_png(path), first) and os.listdir(tmp_path) == ['figure.png']


def test_write_png_refuses_other_arrays(tmp_path):
    with pytest.raises(ValueError, match=r'expected an \(H, W\) or \(H, W, 3\) uint8 array .* got float64 array'):
        write_png(tmp_path / 'x.png', np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r'of shape \(4, 4, 4\)'):
        write_png(tmp_path / 'x.png', np.zeros((4, 4, 4), np.uint8))
    assert not os.listdir(tmp_path)


def test_write_overlays_every_step_th_z_slice(tmp_path):
    image, labels = _slice_and_labels()
    image_zyx = np.stack([image + z for z in range(11)])
    labels_zyx = np.stack([labels] * 11)
    reader = open_volume(image_zyx)

    paths = write_overlays(reader, labels_zyx, tmp_path / 'overlays', step=5)

    assert [os.path.basename(p) for p in paths] == ['overlay_z00.png', 'overlay_z05.png', 'overlay_z10.png']
    assert sorted(p.name for p in (tmp_path / 'overlays').glob('*.png')) == [os.path.basename(p) for p in paths]
    assert np.array_equal(_read_png(paths[1]), render_labels(image_zyx[5], labels_zyx[5]))
    for step in (0, 1.5, 2.0, True):  # 2.0 and True were taken as 2 and 1
        with pytest.raises(ValueError, match='step must be an integer >= 1'):
            write_overlays(reader, labels_zyx, tmp_path / 'overlays', step=step)


def _volume_and_labels(depth=11):
    image, labels = _slice_and_labels()
    return np.stack([image + z for z in range(depth)]), np.stack([labels] * depth)


def test_write_overlays_takes_an_array_or_a_file(tmp_path):
    """Audit #3: an image array (the natural notebook call) failed with "'numpy.ndarray' object has no attribute
    'read'"."""
    image_zyx, labels_zyx = _volume_and_labels()
    from_array = write_overlays(image_zyx, labels_zyx, tmp_path / 'array', step=5)
    write_tiff(tmp_path / 'stack.tif', image_zyx)
    from_file = write_overlays(tmp_path / 'stack.tif', labels_zyx, tmp_path / 'file', step=5)
    assert [os.path.basename(p) for p in from_array] == ['overlay_z00.png', 'overlay_z05.png', 'overlay_z10.png']
    for array_png, file_png in zip(from_array, from_file):
        assert np.array_equal(_read_png(array_png), _read_png(file_png))
    assert np.array_equal(_read_png(from_array[2]), render_labels(image_zyx[10], labels_zyx[10]))


def test_write_overlays_refuses_a_used_folder_unless_overwrite(tmp_path):
    """Audit #3: a second run into the same folder replaced its PNGs silently."""
    image_zyx, labels_zyx = _volume_and_labels()
    out = tmp_path / 'overlays'
    first = write_overlays(image_zyx, labels_zyx, out, step=5)
    before = {p: _read_png(p) for p in first}
    with pytest.raises(InputError, match=f'{out}: folder is not empty; pass --overwrite'):
        write_overlays(image_zyx[::-1], labels_zyx, out, step=5)
    assert all(np.array_equal(_read_png(p), picture) for p, picture in before.items())
    write_overlays(image_zyx, labels_zyx, out, step=4, overwrite=True)
    assert sorted(p.name for p in out.glob('*.png')) == ['overlay_z00.png', 'overlay_z04.png', 'overlay_z08.png']
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'overlay_z00.png').write_bytes(b'mine')
    with pytest.raises(InputError, match='foreign: folder is not empty and was not written by libnet-mmdet'):
        write_overlays(image_zyx, labels_zyx, foreign, overwrite=True)
    assert (foreign / 'overlay_z00.png').read_bytes() == b'mine'
    (tmp_path / 'afile').write_text('mine')
    with pytest.raises(InputError, match='afile: exists and is not a folder'):
        write_overlays(image_zyx, labels_zyx, tmp_path / 'afile')


def test_write_overlays_checks_the_labels_before_writing(tmp_path):
    """Audit #3: labels of another depth failed with IndexError after the first PNGs were written."""
    image_zyx, labels_zyx = _volume_and_labels()
    out = tmp_path / 'overlays'
    with pytest.raises(ValueError, match=r'labels_zyx: shape \(2, 12, 16\) does not match image <array> shape '
                       r'\(11, 12, 16\)'):
        write_overlays(image_zyx, labels_zyx[:2], out)
    with pytest.raises(TypeError, match='labels_zyx: instance labels must have an integer dtype'):
        write_overlays(image_zyx, labels_zyx.astype(np.float32), out)
    negative = labels_zyx.copy()
    negative[-1, 0, 0] = -3
    with pytest.raises(ValueError, match='labels_zyx: instance labels must be >= 0, found -3'):
        write_overlays(image_zyx, negative, out)
    assert not out.exists()


def test_an_instance_has_the_colour_of_its_id_in_every_slice():
    """Visualization audit: skimage's label2rgb coloured by rank among the labels present, so a particle changed
    colour between slices of a volume when another one was absent, and 10 colours served every id."""
    image = np.full((12, 16), 1000, np.uint16)
    image[0, 0] = 0  # some contrast: a constant slice is shown black
    alone = np.zeros((12, 16), np.int32)
    alone[3:9, 3:9] = 7
    with_another = alone.copy()
    with_another[3:9, 10:15] = 2
    first, second = render_labels(image, alone), render_labels(image, with_another)
    assert tuple(first[5, 5]) == tuple(second[5, 5])
    colours = {tuple(render_labels(image, np.where(alone > 0, k, 0))[5, 5]) for k in range(1, 31)}
    assert len(colours) == 30


def test_render_labels_can_show_values_as_they_are():
    """The dataset browser shows what the model gets (0-255 after its loader): a contrast change stays visible."""
    image = np.array([[60.0, 90.0], [120.0, 150.0]])
    labels = np.zeros((2, 2), np.int32)
    np.testing.assert_array_equal(render_labels(image, labels, intensity_range=(0, 255))[..., 0], image.round())
    np.testing.assert_array_equal(render_labels(image * 1.3, labels, intensity_range=(0, 255))[..., 0],
                                  (image * 1.3).round())
