"""Slice linking and view fusion recover known 3D instances from per-slice 2D label stacks."""
import numpy as np
import pytest

from libnet_mmdet.evaluation import match_instances
from libnet_mmdet.volume import fuse_views, link_slices, remove_small
from libnet_mmdet.volume.linking import iter_link_slices, link_slabs
from libnet_mmdet.volume.testing import same_instances, slice_labels, sphere_labels

SHAPE = (40, 48, 48)
SPHERES = {
    'separate': [((20, 12, 12), 7), ((20, 34, 34), 8)],
    # side by side in xy, centres closer than the sum of the radii: they share a contact face
    'touching': [((20, 14, 12), 7), ((20, 14, 25), 7), ((20, 30, 20), 8.5)],
    # start and end mid-stack at different depths, and cut by the top and bottom of the stack
    'ending': [((8, 12, 12), 5), ((30, 30, 14), 6), ((18, 36, 36), 4), ((0, 12, 36), 6), ((39, 38, 8), 5)],
}
# two spheres on top of each other, touching at their poles: nothing in an xy slice separates them
STACKED = [((10, 20, 20), 8), ((26, 20, 20), 8)]


def views_of(truth, seed=0):
    rng = np.random.default_rng(seed)
    return {name: slice_labels(truth, axis, rng) for axis, name in enumerate(('xy', 'xz', 'yz'))}


@pytest.mark.parametrize('case', sorted(SPHERES))
def test_linking_recovers_spheres_exactly(case):
    truth = sphere_labels(SHAPE, SPHERES[case])
    linked = link_slices(views_of(truth)['xy'])
    assert same_instances(linked, truth)
    assert linked.max() == len(SPHERES[case])
    assert linked.dtype == np.uint16


@pytest.mark.parametrize('case', sorted(SPHERES))
def test_fusion_recovers_spheres_exactly(case):
    truth = sphere_labels(SHAPE, SPHERES[case])
    views = views_of(truth, seed=1)
    fused = fuse_views(views['xy'], views['xz'], views['yz'])
    assert same_instances(fused, truth)
    assert fused.max() == len(SPHERES[case])


def test_linking_merges_pole_contacts_fusion_separates_them():
    """The documented difference between the two: when to use fusion."""
    truth = sphere_labels((40, 40, 40), STACKED)
    views = views_of(truth)
    assert link_slices(views['xy']).max() == 1
    assert same_instances(fuse_views(views['xy'], views['xz'], views['yz']), truth)
    assert same_instances(fuse_views(labels_xz=views['xz'], labels_yz=views['yz']), truth)  # two views suffice


def test_ids_follow_first_voxel_order():
    truth = sphere_labels(SHAPE, SPHERES['ending'])
    first_z = sorted((int(np.argmax((truth == i).any(axis=(1, 2)))), i) for i in range(1, truth.max() + 1))
    linked = link_slices(views_of(truth)['xy'])
    assert [int(linked[truth == i][0]) for _, i in first_z] == list(range(1, truth.max() + 1))


def test_fused_ids_follow_first_voxel_order_where_growth_reaches_above_a_seed():
    """A particle whose thin spike (not a seed: too thin for the views to agree) rises above another particle's top
    is grown up into it: it starts first, so it is particle 1."""
    truth = np.zeros((18, 26, 22), np.uint16)
    truth[2:5, 16, 10] = 1  # a one-voxel spike from z 2 ...
    truth[5:15, 12:21, 6:15] = 1  # ... on a box from z 5
    truth[3:15, 1:7, 2:18] = 2  # a box from z 3, at smaller y
    views = views_of(truth)

    fused = fuse_views(views['xy'], views['xz'], views['yz'])

    assert fused[2, 16, 10] == 1 and fused[3, 3, 3] == 2


def test_fusion_tolerates_one_view_merging_touching_particles():
    truth = sphere_labels(SHAPE, SPHERES['touching'])
    views = views_of(truth)
    merged_xz = (views['xz'] > 0).astype(np.uint16)  # xz view: one blob per slice, touching particles merged
    assert same_instances(fuse_views(views['xy'], merged_xz, views['yz']), truth)


def _stacked_boxes():
    truth = np.zeros((28, 30, 30), np.uint16)
    truth[4:14, 10:20, 10:20], truth[14:24, 10:20, 10:20] = 1, 2  # touching over 10 x 10 z faces
    return truth, views_of(truth)


def _merge_in_slices(labels, index):
    slice_2d = labels[index]
    slice_2d[slice_2d > 0] = slice_2d.max()


def test_two_views_merging_along_an_edge_do_not_join_the_particles():
    """yz merges the two boxes in every slice, xz only in its slice along the boxes' edge (y = 10): there both
    views judging the z faces call them one particle, in 10 of the 100 contact faces. A per-voxel rule joins the
    boxes through that line; the vote over the contact surface keeps them apart."""
    truth, views = _stacked_boxes()
    for x in range(30):
        _merge_in_slices(views['yz'], np.s_[:, :, x])
    _merge_in_slices(views['xz'], np.s_[:, 10, :])
    assert same_instances(fuse_views(views['xy'], views['xz'], views['yz']), truth)
    for y in range(30):  # now xz merges them everywhere too: the views judging the contact agree, one particle
        _merge_in_slices(views['xz'], np.s_[:, y, :])
    assert fuse_views(views['xy'], views['xz'], views['yz']).max() == 1


def test_seeds_exclude_voxels_on_a_2d_boundary_in_any_view():
    from libnet_mmdet.volume.fusion import seed_mask
    truth, views = _stacked_boxes()
    padded = {name: np.concatenate([labels[:1], labels, labels[-1:]]) for name, labels in views.items()}
    seeds = seed_mask(padded)
    interior = np.zeros_like(seeds)
    interior[5:13, 11:19, 11:19] = interior[15:23, 11:19, 11:19] = True  # 1 voxel in from every face and the contact
    np.testing.assert_array_equal(seeds, interior)


def test_fusion_keeps_a_particle_split_in_one_section_whole():
    truth = sphere_labels((40, 40, 40), [((20, 20, 20), 9)])
    views = views_of(truth)
    section = views['xy'][20]
    section[:, 20:][section[:, 20:] > 0] = section.max() + 1  # one xy section split into two instances
    assert same_instances(fuse_views(views['xy'], views['xz'], views['yz']), truth)


def test_fusion_restores_the_rim_when_one_view_undersegments():
    from scipy import ndimage
    truth = sphere_labels(SHAPE, SPHERES['touching'])
    views = views_of(truth)
    shrunk = views['yz'].copy()
    for x in range(SHAPE[2]):  # erode every 2D instance of the yz view by one pixel
        slice_2d = shrunk[:, :, x]
        slice_2d[~ndimage.binary_erosion(slice_2d > 0) | (ndimage.grey_dilation(slice_2d, size=3) != slice_2d)] = 0
    fused = fuse_views(views['xy'], views['xz'], shrunk)
    assert np.array_equal(fused > 0, truth > 0)  # majority foreground, rim grown back
    stats = match_instances(truth, fused, thresholds=[0.9])
    assert stats.loc[0.9, 'tp'] == len(SPHERES['touching']) and stats.loc[0.9, 'fp'] == 0


@pytest.mark.parametrize('slab', [1, 3, 40])
def test_fusion_does_not_depend_on_the_slab_size(slab):
    truth = sphere_labels(SHAPE, SPHERES['touching'] + SPHERES['ending'][:2])
    views = views_of(truth)
    reference = fuse_views(views['xy'], views['xz'], views['yz'], slab=8)
    assert np.array_equal(fuse_views(views['xy'], views['xz'], views['yz'], slab=slab), reference)


def test_streamed_linking_recovers_the_particles_one_slice_ahead():
    """``iter_link_slices`` yields each slice's 3D ids having read at most one slice beyond it (``link_slices``
    runs it, so equality with it alone would prove nothing)."""
    truth = sphere_labels(SHAPE, SPHERES['ending'])
    per_slice = views_of(truth)['xy']
    handed_out = []

    def slices():
        for z, labels in enumerate(per_slice):
            handed_out.append(z)
            yield labels

    streamed = []
    for z, ids in enumerate(iter_link_slices(slices())):
        assert len(handed_out) <= z + 2  # this slice and at most the next one read
        streamed.append(ids)
    assert same_instances(np.stack(streamed), truth)


@pytest.mark.parametrize('slab', [1, 7, 40])
def test_linking_by_slabs_equals_whole_stack_linking(slab):
    """Linking through caller-supplied storage, along y: the same ids and their voxel counts."""
    truth = sphere_labels(SHAPE, SPHERES['ending'])
    per_slice = views_of(truth)['xz']  # xz slice y = labels[:, y]
    linked = np.zeros(SHAPE, np.uint32)

    def write_slab(start, ids):
        linked[:, start:start + len(ids)] = ids.transpose(1, 0, 2)
    sizes = link_slabs(lambda start, stop: per_slice[:, start:stop].transpose(1, 0, 2), write_slab, SHAPE[1], slab)
    expected = link_slices(per_slice.transpose(1, 0, 2)).transpose(1, 0, 2)
    assert np.array_equal(linked, expected) and same_instances(linked, truth)
    assert np.array_equal(sizes, np.bincount(expected.ravel()))


def test_one_to_one_keeps_a_split_slice_from_merging_neighbours():
    """Slice 1 has one blob overlapping both particles of slices 0 and 2: it continues only one of them."""
    stack = np.zeros((3, 10, 20), np.uint16)
    stack[0, 2:8, 2:8], stack[0, 2:8, 12:18] = 1, 2
    stack[1, 2:8, 2:18] = 1
    stack[2, 2:8, 2:8], stack[2, 2:8, 12:18] = 1, 2
    linked = link_slices(stack)
    assert linked[1].max() == linked[1][linked[1] > 0].min()  # one id in slice 1
    assert len(np.unique(linked[linked > 0])) == 3  # continued one particle; the other ends and restarts


def test_remove_small_drops_fragments_and_renumbers():
    labels = np.zeros((4, 8, 8), np.uint32)
    labels[0:2, 0:3, 0:3] = 7  # 18 voxels
    labels[3, 0, 7] = 9  # 1 voxel
    labels[2:4, 4:8, 4:8] = 3  # 32 voxels
    cleaned = remove_small(labels, min_voxels=2)
    assert cleaned.dtype == np.uint16
    assert sorted(np.unique(cleaned).tolist()) == [0, 1, 2]
    assert cleaned[3, 0, 7] == 0 and cleaned[0, 0, 0] == 2 and cleaned[2, 4, 4] == 1  # id order kept


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match='labels_per_slice_zyx: expected a 3-D'):
        link_slices(np.zeros((4, 4), np.uint16))
    with pytest.raises(TypeError, match='integer dtype'):
        link_slices(np.zeros((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match='min_overlap'):
        link_slices(np.zeros((2, 4, 4), np.uint16), min_overlap=0)
    with pytest.raises(ValueError, match='at least two'):
        fuse_views(labels_xy=np.zeros((2, 4, 4), np.uint16))
    with pytest.raises(ValueError, match=r'labels_xz: shape \(2, 4, 5\) does not match labels_xy'):
        fuse_views(np.zeros((2, 4, 4), np.uint16), np.zeros((2, 4, 5), np.uint16))
    views = views_of(sphere_labels((6, 12, 12), [((3, 6, 6), 3)]))
    with pytest.raises(ValueError, match='min_votes must be between 1 and the number of views'):
        fuse_views(views['xy'], views['xz'], views['yz'], min_votes=4)
    with pytest.raises(ValueError, match='grow_voxels'):
        fuse_views(views['xy'], views['xz'], grow_voxels=-1)
