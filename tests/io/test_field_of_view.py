"""Slices outside the reconstructed field of view: which pixels are fill (outside_view_mask) and what the model sees
there instead (fill_by_mirror)."""
import numpy as np
import pytest
from scipy import ndimage

from libnet_mmdet.io.images import fill_by_mirror, outside_view_mask

SIDE = 96


def noise(dtype=np.uint16, seed=0):
    return np.random.default_rng(seed).integers(5000, 60000, (SIDE, SIDE)).astype(dtype)


def disc(radius, centre=(SIDE / 2 - 0.5, SIDE / 2 - 0.5)):
    yy, xx = np.mgrid[:SIDE, :SIDE]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2


@pytest.mark.parametrize('dtype', [np.uint16, np.float32])
def test_the_fill_around_a_reconstructed_disc_is_found(dtype):
    image = noise(dtype)
    image[~disc(SIDE / 2)] = 0
    np.testing.assert_array_equal(outside_view_mask(image), ~disc(SIDE / 2))
    band = noise(dtype)  # an xz slice of the cylinder: a band of the field of view, fill on both sides
    band[:, :20], band[:, -10:] = 0, 0
    expected = np.zeros(band.shape, bool)
    expected[:, :20], expected[:, -10:] = True, True
    np.testing.assert_array_equal(outside_view_mask(band), expected)


def test_dark_pore_a_lone_particle_and_saturation_are_not_fill():
    assert outside_view_mask(noise()) is None  # no fill
    rng = np.random.default_rng(1)
    particles = np.zeros((SIDE, SIDE), bool)
    for y, x in rng.uniform(8, SIDE - 8, (25, 2)):
        particles |= disc(7, (y, x))
    clipped = np.where(particles, noise(), 0).astype(np.uint16)  # pore clipped to 0 between particles
    assert outside_view_mask(clipped) is None  # the particles are not one convex field of view
    lone = np.where(disc(20), noise(), 0).astype(np.uint16)  # one particle on an empty background
    assert outside_view_mask(lone) is None
    saturated = noise()
    saturated[~disc(SIDE / 2)] = 65535  # bright: the maximum is never fill
    assert outside_view_mask(saturated) is None
    assert outside_view_mask(np.zeros((SIDE, SIDE), np.uint16)) is None and outside_view_mask(noise()[None]) is None


def test_the_fill_gets_the_values_of_its_mirror_images_inside():
    """Each pixel outside takes the value of its reflection across the nearest pixel inside (that pixel's own where
    the reflection is outside too): the nearest pixel's value alone drew radial stripes."""
    image = noise()
    outside = ~disc(SIDE / 2 - 4)
    image[outside] = 0
    filled = fill_by_mirror(image, outside)
    np.testing.assert_array_equal(filled[~outside], image[~outside])  # inside untouched, input untouched
    assert (image[outside] == 0).all() and filled.min() >= 5000
    _, (rows, cols) = ndimage.distance_transform_edt(outside, return_indices=True)
    for y, x in zip(*np.nonzero(outside)):
        mirror = (min(max(2 * rows[y, x] - y, 0), SIDE - 1), min(max(2 * cols[y, x] - x, 0), SIDE - 1))
        assert filled[y, x] == (image[rows[y, x], cols[y, x]] if outside[mirror] else image[mirror])
    stripes = image[rows, cols][outside]  # the old fill: far fewer distinct values, each repeated along a ray
    assert len(np.unique(filled[outside])) > 2 * len(np.unique(stripes))
    np.testing.assert_array_equal(fill_by_mirror(image + 1, outside), filled + 1)  # same mask, new slice
