"""Analytic phantoms for the analysis tests."""
from types import SimpleNamespace

import numpy as np
import pytest


def ellipsoid_mask(shape, centre_zyx, semi_axes, rotation=None):
    """Bool (Z, Y, X) mask of the voxels whose centres lie in an ellipsoid.

    ``semi_axes`` are along the columns of ``rotation`` (identity: along Z, Y, X).
    """
    points = np.indices(shape, dtype=np.float64).reshape(3, -1).T - np.asarray(centre_zyx, dtype=np.float64)
    body = points if rotation is None else points @ np.asarray(rotation)
    return (((body / np.asarray(semi_axes, dtype=np.float64)) ** 2).sum(axis=1) <= 1).reshape(shape)


def ball_mask(shape, centre_zyx, radius):
    """Bool (Z, Y, X) mask of the voxels whose centres lie within ``radius`` of ``centre_zyx``."""
    return ellipsoid_mask(shape, centre_zyx, (radius,) * 3)


@pytest.fixture
def phantoms():
    """The phantom builders: ``phantoms.ball_mask``, ``phantoms.ellipsoid_mask``."""
    return SimpleNamespace(ball_mask=ball_mask, ellipsoid_mask=ellipsoid_mask)
