"""Helpers for testing and benchmarking 3D assembly without a network (in the spirit of ``mmdet.testing``):
label volumes of digitised spheres with exact ground truth, their per-slice 2D labels as a view would see them,
an exact instance-equality check, and a deterministic predictor."""
import numpy as np
from scipy import ndimage

from .labels import overlap_pairs


def sphere_labels(shape_zyx, spheres, dtype=np.uint16):
    """(Z, Y, X) labels of digitised spheres; sphere i (from 1) is ``spheres[i - 1] = ((z, y, x), radius)``.

    A voxel belongs to the sphere whose surface it is deepest inside (smallest distance / radius), so spheres
    placed closer than the sum of their radii touch along a face instead of overlapping.
    """
    grid = np.indices(shape_zyx, dtype=np.float32)
    labels = np.zeros(shape_zyx, dtype)
    depth = np.full(shape_zyx, np.inf, np.float32)
    for i, (centre, radius) in enumerate(spheres, start=1):
        relative = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre))) / radius
        inside = (relative <= 1) & (relative < depth)
        labels[inside], depth[inside] = i, relative[inside]
    return labels


def slice_labels(labels_zyx, axis, rng=None):
    """Per-slice 2D instance ids of a 3D label volume as one view sees it (slices along ``axis`` 0, 1 or 2).

    Each slice's instances are renumbered 1..n independently (shuffled with ``rng``), so nothing downstream can
    rely on 3D ids. Returns a uint16 (Z, Y, X) array.
    """
    out = np.zeros(labels_zyx.shape, np.uint16)
    for index in range(labels_zyx.shape[axis]):
        where = tuple(index if a == axis else slice(None) for a in range(3))
        ids, inverse = np.unique(labels_zyx[where], return_inverse=True)
        new = np.zeros(ids.size, np.int64)
        n = int((ids > 0).sum())
        new[ids > 0] = rng.permutation(n) + 1 if rng is not None else np.arange(1, n + 1)
        out[where] = new[inverse.reshape(labels_zyx[where].shape)]
    return out


def same_instances(labels_a, labels_b):
    """True when two label arrays hold exactly the same instances (same voxel sets), whatever their ids."""
    labels_a, labels_b = np.asarray(labels_a), np.asarray(labels_b)
    if labels_a.shape != labels_b.shape or not np.array_equal(labels_a > 0, labels_b > 0):
        return False
    ids_a, ids_b, intersection, area_a, area_b = overlap_pairs(labels_a, labels_b)
    return bool(np.all(intersection == area_a) and np.all(intersection == area_b))


class IntensityPredictor:
    """A deterministic predictor: each connected region of one non-zero intensity value is an instance, scored
    by its intensity / 255. It looks only at each instance's own pixels, so tiled and untiled results must agree.

    Attributes:
        n_images (int): images (slices or tiles) seen so far.
        fail_after (int | None): raise ``KeyboardInterrupt`` when asked for more images than this (simulates an
            interrupted run).
    """

    fingerprint = 'IntensityPredictor-1'

    def __init__(self, fail_after=None):
        self.n_images, self.fail_after = 0, fail_after

    def __call__(self, images):
        if self.fail_after is not None and self.n_images + len(images) > self.fail_after:
            raise KeyboardInterrupt(f'simulated interruption after {self.n_images} images')
        self.n_images += len(images)
        return [self._predict(np.asarray(image)) for image in images]

    @staticmethod
    def _predict(image):
        labels, scores = np.zeros(image.shape[:2], np.int32), []
        for value in np.unique(image[image > 0]):
            regions, n = ndimage.label(image == value)
            labels[regions > 0] = regions[regions > 0] + len(scores)
            scores += [float(value) / 255] * n
        return labels, np.array(scores, np.float32)


def work_folder_with_views(path, views_zyx, slab):
    """A work folder of a volume run whose every slab is finished, holding the given 2D labels: what
    :func:`~libnet_mmdet.apis.segment_volume` leaves before its 3D assembly, without a model.

    Args:
        path (str): the folder (made afresh).
        views_zyx (dict): view name -> (Z, Y, X) uint16 2D instance ids per slice of that view (e.g.
            :func:`slice_labels`).
        slab (int): slices per slab.

    Returns:
        WorkFolder: ready for :func:`~libnet_mmdet.volume.assembly.assemble_volume`.
    """
    from .views import VIEW_AXIS, view_slabs
    from .workdir import WorkFolder
    shape = next(iter(views_zyx.values())).shape
    work = WorkFolder(path)
    work.open(dict(views=sorted(views_zyx)), False, shape, tuple(views_zyx), slab)
    for view, start, stop in view_slabs(shape, tuple(views_zyx), slab):
        axis = 'zyx'.index(VIEW_AXIS[view])
        index = tuple(slice(start, stop) if a == axis else slice(None) for a in range(3))
        work.write_part(view, start, list(np.moveaxis(views_zyx[view][index], axis, 0)), 'given')
    return work
