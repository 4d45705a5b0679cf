"""contact_counts and merge_small_lut: face contacts counted slab by slab, fragments (small instances and pieces
lying against a much larger particle) merged into the particle they touch most, isolated small objects removed, never
two particles joined."""
import numpy as np
import pytest

from libnet_mmdet.volume.labels import contact_counts, merge_small_lut


def _volume():
    """Two 4x4x4 particles (1, 2) side by side along x; fragment 3 (a 1x2x2 sliver) on top of particle 1,
    fragment 4 (2 voxels) touching both particles but particle 2 on more faces, fragment 5 floating alone."""
    labels = np.zeros((6, 8, 12), np.uint16)
    labels[1:5, 1:5, 1:5] = 1
    labels[1:5, 1:5, 5:9] = 2
    labels[5, 2:4, 2:4] = 3
    labels[0, 1, 4:6] = 4  # above x=4 (particle 1) and x=5 (particle 2)
    labels[0, 2, 5] = 4    # one more face with particle 2
    labels[0, 6:7, 10:11] = 5
    return labels


def _brute_force_contacts(labels, background=False):
    found = {}
    for axis in range(3):
        a = np.moveaxis(labels, axis, 0)[1:].astype(np.int64).ravel()
        b = np.moveaxis(labels, axis, 0)[:-1].astype(np.int64).ravel()
        for x, y in zip(a, b):
            if (x and y or background) and x != y:
                key = (min(x, y), max(x, y))
                found[key] = found.get(key, 0) + 1
    return found


@pytest.mark.parametrize('slab', [1, 2, 6])
def test_contact_counts_match_brute_force_for_any_slab(slab):
    labels = _volume()
    pairs, counts = contact_counts(labels[z:z + slab] for z in range(0, labels.shape[0], slab))
    assert {tuple(p): c for p, c in zip(pairs.tolist(), counts.tolist())} == _brute_force_contacts(labels)
    assert {tuple(p) for p in pairs.tolist()} == {(1, 2), (1, 3), (1, 4), (2, 4)}
    assert dict(zip(map(tuple, pairs.tolist()), counts.tolist()))[(1, 2)] == 16  # a 4x4 face


@pytest.mark.parametrize('slab', [1, 2, 6])
@pytest.mark.parametrize('first_is_halo', [False, True])
def test_contact_counts_with_the_background_count_every_surface_face(slab, first_is_halo):
    labels = _volume()
    pairs, counts = contact_counts((labels[z:z + slab] for z in range(0, labels.shape[0], slab)), first_is_halo,
                                   background=True)
    expected = _brute_force_contacts(labels, background=True)
    if first_is_halo:  # only the halo slice's faces to the next slice count
        for pair, count in _brute_force_contacts(labels[:1], background=True).items():
            expected[pair] -= count
        expected = {pair: count for pair, count in expected.items() if count}
    assert {tuple(p): c for p, c in zip(pairs.tolist(), counts.tolist())} == expected
    # the floating voxel at z = 0: 4 faces in its slice and 1 below (the halo slice's own faces do not count)
    assert dict(zip(map(tuple, pairs.tolist()), counts.tolist()))[(0, 5)] == (1 if first_is_halo else 5)


def test_fragments_merge_into_their_best_neighbour_and_loose_ones_go():
    labels = _volume()
    sizes = np.bincount(labels.ravel())
    lut, n_kept = merge_small_lut(sizes, [labels], min_voxels=10)
    assert n_kept == 2
    merged = lut[labels]
    assert (merged[labels == 3] == merged[labels == 1][0]).all()  # the sliver joins the particle under it
    assert (merged[labels == 4] == merged[labels == 2][0]).all()  # 2 faces with particle 2, 1 with particle 1
    assert not merged[labels == 5].any()                         # touches nothing: removed
    assert merged[labels == 1][0] != merged[labels == 2][0]      # the fragment does not join the two particles
    assert lut.dtype == np.uint16


def _pieces_volume():
    """Particle 1, a 10-voxel cube; 2, a 4x4x4 piece sunk into its side (64 of its 96 faces shared with 1);
    3, a 4x4x4 particle beside it (16 faces shared); 4, a particle of 1's size sharing a whole side with it."""
    labels = np.zeros((12, 16, 26), np.uint16)
    labels[1:11, 1:11, 1:11] = 1
    labels[4:8, 4:8, 8:12] = 2
    labels[4:8, 11:15, 4:8] = 3
    labels[1:11, 1:11, 12:22] = 4
    labels[1:11, 1:11, 11] = 4  # 4 touches 1 along a whole side (the piece's end stays in between)
    labels[4:8, 4:8, 11] = 2
    return labels


def test_pieces_lying_against_a_much_larger_particle_join_it_whatever_their_size():
    labels = _pieces_volume()
    sizes = np.bincount(labels.ravel())
    lut, n_kept = merge_small_lut(sizes, [labels], min_voxels=10)
    merged = lut[labels]
    assert n_kept == 3
    assert (merged[labels == 2] == merged[labels == 1][0]).all()   # the piece joins the particle it is sunk into
    assert len({merged[labels == i][0] for i in (1, 3, 4)}) == 3   # a small particle beside it, an equal one: kept
    lut, n_kept = merge_small_lut(sizes, [labels], min_voxels=1)   # 0 or 1: nothing merged, pieces neither
    assert n_kept == 4
    plates = np.zeros((4, 8, 8), np.uint8)
    plates[1, 1:7, 1:7], plates[2, 1:7, 1:7] = 1, 2  # each shares 36 of its 96 faces with the other, same size
    assert merge_small_lut(np.bincount(plates.ravel()), [plates], min_voxels=10)[1] == 2


def test_small_neighbours_form_a_particle_when_large_enough_together():
    labels = np.zeros((2, 4, 8), np.uint8)
    labels[:, :, :3], labels[:, :, 3:5], labels[:, :, 5:] = 1, 2, 3  # 24, 16 and 24 voxels, all touching
    lut, n_kept = merge_small_lut(np.bincount(labels.ravel()), [labels], min_voxels=30)
    assert n_kept == 1 and (lut[1:] == 1).all()
    lut, n_kept = merge_small_lut(np.bincount(labels.ravel()), [labels], min_voxels=100)
    assert n_kept == 0 and not lut.any()


def test_no_minimum_keeps_everything_without_reading_the_labels():
    sizes = np.array([10, 5, 0, 7])  # id 2 does not occur: dropped, the others renumbered in order

    def never_read():
        raise AssertionError('labels read although nothing is small')
        yield

    lut, n_kept = merge_small_lut(sizes, never_read(), min_voxels=0)
    assert n_kept == 2 and lut.tolist() == [0, 1, 0, 2]


def test_merged_particles_keep_the_order_of_their_first_voxel():
    """Volume audit: groups were numbered by their largest member, so a one-voxel fragment merged into a later
    particle put that particle's first voxel ahead of one with a smaller id (README: ids in first-voxel order)."""
    labels = np.zeros((1, 10, 10), np.uint16)
    labels[0, 4, 0] = 1  # a fragment, first in the scan; it touches only the particle below it
    labels[0, 4:, 5:] = 2
    labels[0, 5:, :4] = 3
    lut, n_kept = merge_small_lut(np.bincount(labels.ravel()), [labels], min_voxels=2)
    merged = lut[labels]
    assert n_kept == 2 and merged[0, 4, 0] == merged[0, 5, 0]
    flat = merged.ravel()
    ids, first = np.unique(flat[flat > 0], return_index=True)
    assert list(ids[np.argsort(first)]) == [1, 2]
