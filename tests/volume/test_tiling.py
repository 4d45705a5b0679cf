"""Tiled segmentation gives the same instances as untiled segmentation (fixed deterministic predictor)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage.draw import disk

from libnet_mmdet.volume import segment_tiled
from libnet_mmdet.volume.tiling import order_by_score, tile_windows
from libnet_mmdet.volume.testing import IntensityPredictor
from libnet_mmdet.volume.tiling import tile_starts


def disc_image(seed, shape=(300, 410), n_discs=70, max_radius=14):
    """Discs of random distinct-ish intensities, overlapping and touching each other and the image borders."""
    rng = np.random.default_rng(seed)
    image = np.zeros(shape, np.uint8)
    for _ in range(n_discs):
        radius = rng.uniform(3, max_radius)
        image[disk(tuple(rng.uniform(0, shape)), radius, shape=shape)] = rng.integers(1, 256)
    return image


def untiled(image):
    return order_by_score(*IntensityPredictor()([image])[0])


@pytest.mark.parametrize('tile_size, overlap', [(128, 32), (100, 30), (64, 29), (256, 64)])
@pytest.mark.parametrize('seed', [0, 1])
def test_tiled_equals_untiled(seed, tile_size, overlap):
    """Particles up to 28 px across, overlap >= 29: identical labels, scores and boxes (no duplicates, no cuts)."""
    image = disc_image(seed)
    expected = untiled(image)
    tiled = order_by_score(*segment_tiled(image, IntensityPredictor(), tile_size, overlap))
    for got, want in zip(tiled, expected):
        np.testing.assert_array_equal(got, want)


def test_particle_larger_than_the_overlap_is_merged_across_the_seam():
    image = np.zeros((120, 300), np.uint8)
    image[50:60, 40:260] = 200  # a 220 px bar crossing the seams of 128 px tiles overlapping by 32
    image[20:30, 100:115] = 90
    image[60:70, 100:160] = 120  # touches the bar: must stay a separate instance
    labels, scores = segment_tiled(image, IntensityPredictor(), 128, 32)
    expected, _, _ = untiled(image)
    assert labels.max() == 3
    np.testing.assert_array_equal(order_by_score(labels, scores)[0], expected)


class ThresholdComponents:
    """Connected components of pixels > 100: at scale 0.5 each tile resamples a particle at its own pixel phase,
    so two tiles' masks of one particle differ by a pixel, as a CNN's do."""

    def __init__(self):
        self.shapes = []  # of the images it was given

    def __call__(self, images):
        results = []
        self.shapes += [np.shape(image)[:2] for image in images]
        for image in images:
            labels, n = ndimage.label(np.asarray(image, np.float64) > 100)
            results.append((labels, np.linspace(0.99, 0.6, n).astype(np.float32)))
        return results


def test_a_particle_on_the_owners_midline_is_kept_when_the_tiles_masks_differ_by_a_pixel():
    """Each of two tiles saw the particle's box centre on the other's side of the midline: neither kept it."""
    from libnet_mmdet.apis import segment_image
    image = np.zeros((181, 263), np.uint16)
    rows, cols = np.mgrid[:181, :263]
    for row, col in [(20, 30), (90, 130), (160, 240)]:
        image[(rows - row) ** 2 + (cols - col) ** 2 <= 12**2] = 1000
    untiled_labels, _ = segment_image(ThresholdComponents(), image, tile_size=None, scale=0.5)
    tiles = ThresholdComponents()
    tiled_labels, _ = segment_image(tiles, image, tile_size=64, overlap=30, scale=0.5)
    assert len(tiles.shapes) > 1 and set(tiles.shapes) == {(64, 64)}  # the 91 x 132 px slice at scale 0.5, tiled
    assert untiled_labels.max() == tiled_labels.max() == 3
    assert tiled_labels[90, 130] > 0 and abs(int((tiled_labels == tiled_labels[90, 130]).sum()) - 497) <= 25


def test_order_by_score_renumbers_by_score_and_boxes_each_instance_s_pixels():
    labels = np.zeros((50, 50), np.int32)
    labels[10:30, 10:30] = 1
    labels[20:40, 20:40] = 2  # painted over label 1 where they overlap
    labels[12:14, 40:50] = 3  # scored between the two
    ordered, scores, boxes = order_by_score(labels, np.array([0.4, 0.9, 0.6]))
    assert scores.tolist() == pytest.approx([0.9, 0.6, 0.4])
    expected = np.zeros_like(labels)
    expected[labels == 2], expected[labels == 3], expected[labels == 1] = 1, 2, 3
    np.testing.assert_array_equal(ordered, expected)  # pixels keep their instance, renumbered by score
    np.testing.assert_array_equal(boxes, [[20, 20, 40, 40], [40, 12, 50, 14], [10, 10, 30, 30]])


@settings(max_examples=50, deadline=None)
@given(length=st.integers(1, 2000), tile=st.integers(16, 512), overlap_fraction=st.floats(0, 0.9))
def test_tiles_cover_the_axis_with_at_least_the_overlap(length, tile, overlap_fraction):
    overlap = int(tile * overlap_fraction)
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and min(starts[-1] + tile, length) == length
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))  # neighbours overlap >= overlap
    assert all(b > a for a, b in zip(starts, starts[1:]))


def test_small_image_is_one_tile():
    assert tile_windows((50, 60), 256, 64) == [(slice(0, 50), slice(0, 60))]


@pytest.mark.parametrize('tile_size, overlap, message', [
    (64, 64, r'overlap must be an integer in \[0, tile_size=64\), got 64'),
    (64, -1, 'overlap must be an integer >= 0, got -1'), (0, 0, 'tile_size must be an integer >= 1, got 0'),
    (64.5, 8, 'tile_size must be an integer >= 1, got 64.5')])
def test_bad_tiling_is_refused(tile_size, overlap, message):
    with pytest.raises(ValueError, match=message):
        tile_starts(100, tile_size, overlap)
