"""smooth_labels / resolve_smooth: each particle's mask rounded by a Gaussian majority, none lost, contacts between
particles kept; the sigma a volume run uses."""
import re

import numpy as np
import pytest

from libnet_mmdet.volume.labels import SMOOTH_SIGMA_VOXELS, resolve_smooth, smooth_labels
from libnet_mmdet.volume.testing import sphere_labels


def test_a_spike_goes_and_a_hole_fills_and_a_ball_stays():
    labels = sphere_labels((24, 24, 24), [((12, 12, 12), 7)]).astype(np.uint16) * 5
    ragged = labels.copy()
    ragged[12, 12, 19:22] = 5  # a one-voxel spike out of the surface
    ragged[12, 12, 12] = 0  # a hole inside
    smoothed = smooth_labels(ragged, 0.75)
    assert smoothed.dtype == np.uint16 and set(np.unique(smoothed)) == {0, 5}
    assert not smoothed[12, 12, 20:22].any() and smoothed[12, 12, 12] == 5
    assert np.count_nonzero(smoothed != labels) < 0.02 * np.count_nonzero(labels)  # the ball itself stays
    np.testing.assert_array_equal(smooth_labels(ragged, 0), ragged)


def test_touching_particles_keep_their_contact_and_a_speck_is_kept():
    labels = np.zeros((12, 12, 20), np.int32)
    labels[2:10, 2:10, 2:10] = 3
    labels[2:10, 2:10, 10:18] = 9  # a flat contact at x = 9.5
    labels[0, 0, 0] = 4  # a speck smaller than the kernel
    smoothed = smooth_labels(labels, 1.0)
    assert smoothed.dtype == np.int32 and smoothed[0, 0, 0] == 4
    np.testing.assert_array_equal(smoothed[4:8, 4:8, 4:10], 3)
    np.testing.assert_array_equal(smoothed[4:8, 4:8, 10:16], 9)  # no background opened between them
    assert smoothed[2, 2, 2] == 0  # the cubes' corners are rounded off


def test_a_window_without_background_and_bad_sigmas():
    labels = np.ones((6, 6, 6), np.uint8)
    labels[:, :, 3:] = 2
    np.testing.assert_array_equal(smooth_labels(labels, 1.0), labels)
    for bad in (-1, np.nan, np.inf, (1, 1), (1, 2, 3, 4), 'x'):
        message = r'sigma_zyx: expected one sigma or three \(Z, Y, X\), finite and >= 0 \(voxels\), got '
        with pytest.raises(ValueError, match=message + re.escape(repr(bad)) + '$'):
            smooth_labels(labels, bad)


def test_the_sigma_of_a_volume_run():
    assert resolve_smooth('auto', ('xy', 'xz', 'yz')) == (SMOOTH_SIGMA_VOXELS,) * 3 == (0.75,) * 3
    assert resolve_smooth('auto', ('xy',)) is None and resolve_smooth(0, ('xy', 'xz')) is None
    assert resolve_smooth(None, ('xy', 'xz', 'yz')) is None
    assert resolve_smooth(1.5, ('xy',)) == (1.5, 1.5, 1.5)
    assert resolve_smooth(1.0, ('xy', 'xz', 'yz'), (200, 100, 100)) == (0.5, 1.0, 1.0)  # the same length in nm
