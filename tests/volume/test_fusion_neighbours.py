"""View fusion keeps touching particles apart when the views disagree on where the boundary between them lies.

A model that sees slices at ``scale=0.5`` places a boundary to within one of its pixels, two voxels: the views then
put the boundary between two touching particles a voxel or two apart, slice by slice. Fusion used to join such
neighbours (issue 15: 63 particles returned where 90 exist, 3D F1 0.60 where linking reached 0.91).
"""
import numpy as np
import pytest

from libnet_mmdet.evaluation import match_instances
from libnet_mmdet.volume import fuse_views, link_slices, min_voxels_for_diameter
from libnet_mmdet.volume.testing import same_instances, slice_labels, sphere_labels

SHAPE = (36, 36, 60)
RADIUS = 8
# a row of four touching spheres, their contacts tilted a little out of the xy plane
ROW = [((16, 18, 10), RADIUS), ((19, 18, 24), RADIUS), ((15, 17, 38), RADIUS), ((20, 19, 51), RADIUS)]


def _signed_distances(shape, spheres):
    """(n_spheres, Z, Y, X) distance of every voxel to each sphere's surface (negative inside)."""
    grid = np.indices(shape, dtype=np.float32)
    return np.stack([np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre))) - radius
                     for centre, radius in spheres])


def _view_labels(truth, distances, shift, axis, rng):
    """One view's 2D labels: every particle voxel goes to the sphere nearest to it after moving each sphere's
    surface out by ``shift`` (n_spheres, n_slices along ``axis``) voxels in each slice of the view."""
    bias = shift.reshape((shift.shape[0],) + tuple(-1 if a == axis else 1 for a in range(3)))
    labels = (np.argmin(distances - bias, axis=0) + 1) * (truth > 0)
    return slice_labels(labels.astype(np.uint16), axis, rng)


def _jittered_views(seed, amplitude=2):
    """The row of spheres and its three views, each boundary moved by a whole number of voxels drawn in
    [-amplitude, amplitude] per view, slice and sphere."""
    rng = np.random.default_rng(seed)
    truth = sphere_labels(SHAPE, ROW)
    distances = _signed_distances(SHAPE, ROW)
    views = {name: _view_labels(truth, distances, rng.integers(-amplitude, amplitude + 1, (len(ROW), SHAPE[axis])),
                                axis, rng)
             for axis, name in enumerate(('xy', 'xz', 'yz'))}
    return truth, views


def _f1(truth, labels, threshold):
    stats = match_instances(truth, labels, thresholds=[threshold])
    return float(stats.loc[threshold, 'f1'])


@pytest.mark.parametrize('seed', [1, 2, 5])
def test_boundaries_jittered_by_two_voxels_keep_touching_particles_apart(seed):
    """Each seed needs another rule (measured by switching each off): 2 the continuity of the view across a face,
    5 joining only a larger neighbour, 1 both. The fusion before them returned one or two particles here."""
    truth, views = _jittered_views(seed)
    fused = fuse_views(views['xy'], views['xz'], views['yz'], min_voxels=min_voxels_for_diameter(2 * RADIUS))
    assert fused.max() == len(ROW)
    assert _f1(truth, fused, 0.75) == 1.0
    assert _f1(truth, fused, 0.5) >= _f1(truth, link_slices(views['xy']), 0.5)


def test_views_placing_the_boundary_two_voxels_apart_do_not_join_the_particles():
    """xy moves the boundary between two touching spheres two voxels into the second, xz two voxels into the first,
    yz has it right: at the faces between the grown particles both views containing the direction give both
    voxels one id, and a face-by-face vote joined them. The dominant 2D id of each particle's sections does not."""
    spheres = ROW[:2]
    truth = sphere_labels(SHAPE, spheres)
    distances = _signed_distances(SHAPE, spheres)
    rng = np.random.default_rng(0)
    xy = _view_labels(truth, distances, np.array([[2], [0]]).repeat(SHAPE[0], 1), 0, rng)
    xz = _view_labels(truth, distances, np.array([[0], [2]]).repeat(SHAPE[1], 1), 1, rng)
    yz = slice_labels(truth, 2, rng)
    assert same_instances(fuse_views(xy, xz, yz), truth)


@pytest.mark.parametrize('slab', [1, 5])
def test_jittered_fusion_does_not_depend_on_the_slab_size(slab):
    """The continuity and the section counts are summed over slabs: the same result for any slab size."""
    _, views = _jittered_views(seed=1)
    reference = fuse_views(views['xy'], views['xz'], views['yz'], slab=SHAPE[0])
    assert np.array_equal(fuse_views(views['xy'], views['xz'], views['yz'], slab=slab), reference)


def test_bad_fusion_arguments_are_named():
    _, views = _jittered_views(seed=0)
    with pytest.raises(ValueError, match='min_overlap'):
        fuse_views(views['xy'], views['xz'], min_overlap=0)
    huge = views['xy'].astype(np.uint32)
    huge[huge > 0] += 2 ** 21
    with pytest.raises(ValueError, match=r'labels_xy: 2D instance ids must be below 2\*\*21'):
        fuse_views(huge, views['xz'])
