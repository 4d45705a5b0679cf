"""The fast label operations (numpy sorts, fastremap, cc3d) equal brute-force references written here, on small
random label arrays: empty, one id, non-contiguous ids, several dtypes, ids too large to combine in one key."""
from collections import Counter

import numpy as np
import pytest

from libnet_mmdet.io.labels import MAX_DIRECT_LABEL, compact_labels, overlap_table, renumber_by_first_voxel
from libnet_mmdet.volume.labels import contact_counts, overlap_pairs, remove_small
from libnet_mmdet.volume.linking import link_next_slice
from libnet_mmdet.volume.tiling import order_by_score

# (dtype, ids that may occur; 0 = background)
ID_SETS = [
    (np.uint16, [0, 3, 17, 1000, 65535]),
    (np.uint32, [0, 5, 70000, 2**31 + 1]),
    (np.int64, [0, 2, 9, 2**40]),  # 2**40 x 2**40 does not fit one int64 key: the rank path
    (np.uint64, [0, 1, 2**63 - 1]),  # the largest id the int64 outputs hold
    (np.uint8, [0]),               # empty
    (np.int64, [7]),               # one id, no background
]


def random_labels(seed, shape, dtype, ids):
    """Labels drawn from ``ids`` in runs along the last axis, so instances overlap and touch."""
    rng = np.random.default_rng(seed)
    runs = rng.choice(np.array(ids, dtype), size=shape[:-1] + (shape[-1] // 2 + 1,))
    return np.repeat(runs, 2, axis=-1)[..., :shape[-1]]


def cases(shape):
    return [random_labels(seed, shape, dtype, ids) for seed, (dtype, ids) in enumerate(ID_SETS)]


def brute_overlaps(labels_a, labels_b):
    """{(id a, id b): shared pixels} and the sizes of every instance, pixel by pixel."""
    pairs = Counter((int(a), int(b)) for a, b in zip(labels_a.ravel(), labels_b.ravel()) if a and b)
    return pairs, Counter(int(a) for a in labels_a.ravel() if a), Counter(int(b) for b in labels_b.ravel() if b)


@pytest.mark.parametrize('index_a', range(len(ID_SETS)))
@pytest.mark.parametrize('index_b', range(len(ID_SETS)))
def test_overlap_pairs_and_table_equal_a_pixel_count(index_a, index_b):
    labels_a, labels_b = cases((7, 9))[index_a], cases((7, 9))[index_b]
    pairs, sizes_a, sizes_b = brute_overlaps(labels_a, labels_b)
    ids_a, ids_b, intersection, area_a, area_b = overlap_pairs(labels_a, labels_b)
    expected = sorted(pairs)
    assert list(zip(ids_a.tolist(), ids_b.tolist())) == expected  # increasing (id a, id b)
    assert intersection.tolist() == [pairs[p] for p in expected]
    assert area_a.tolist() == [sizes_a[a] for a, _ in expected]
    assert area_b.tolist() == [sizes_b[b] for _, b in expected]
    assert all(x.dtype == np.int64 for x in (ids_a, ids_b, intersection, area_a, area_b))
    table_ids_a, table_ids_b, rows, cols, _, table_sizes_a, _ = overlap_table(labels_a, labels_b)
    assert table_ids_a.tolist() == sorted(sizes_a) and table_ids_b.tolist() == sorted(sizes_b)
    assert table_sizes_a.tolist() == [sizes_a[a] for a in sorted(sizes_a)]
    assert table_ids_a[rows].tolist() == [a for a, _ in expected]
    assert table_ids_b[cols].tolist() == [b for _, b in expected]


def brute_first_voxel_order(labels):
    order = []
    for value in labels.ravel().tolist():  # C order
        if value and value not in order:
            order.append(value)
    return order


@pytest.mark.parametrize('index', range(len(ID_SETS)))
@pytest.mark.parametrize('layout', ['c', 'fortran', 'strided'])
def test_renumber_by_first_voxel_follows_the_raster_scan(index, layout):
    labels = cases((5, 6, 8))[index]
    labels = {'c': labels, 'fortran': np.asfortranarray(labels), 'strided': labels[:, ::-1, ::2]}[layout]
    renumbered, ids = renumber_by_first_voxel(labels)
    order = brute_first_voxel_order(labels)
    assert ids.tolist() == order and ids.dtype == labels.dtype
    assert renumbered.shape == labels.shape
    assert np.array_equal(renumbered == 0, labels == 0)
    assert all(ids[new - 1] == old for new, old in zip(renumbered.ravel().tolist(), labels.ravel().tolist()) if new)


@pytest.mark.parametrize('index', range(len(ID_SETS)))
@pytest.mark.parametrize('offset', [0, MAX_DIRECT_LABEL])
def test_compact_labels_numbers_large_ids_in_increasing_order(index, offset):
    labels = cases((4, 5, 6))[index]
    labels = np.where(labels > 0, labels.astype(np.uint64) + offset, 0) if offset else labels
    compact, original_ids = compact_labels(labels)
    if int(labels.max()) <= MAX_DIRECT_LABEL:
        assert compact is labels and original_ids is None
        return
    ids = sorted({int(v) for v in labels.ravel() if v})
    expected = np.vectorize(lambda v: ids.index(v) + 1 if v else 0, otypes=[np.int64])(labels)
    np.testing.assert_array_equal(compact, expected)
    assert original_ids.tolist() == ids and compact.dtype == np.uint32


@pytest.mark.parametrize('index', range(len(ID_SETS)))
@pytest.mark.parametrize('min_voxels', [0, 25, 10**6])
def test_remove_small_equals_a_count_and_renumber(index, min_voxels):
    labels = cases((4, 6, 7))[index]
    sizes = Counter(int(v) for v in labels.ravel() if v)
    kept = sorted(i for i, n in sizes.items() if n >= min_voxels)
    expected = np.vectorize(lambda v: kept.index(v) + 1 if v in kept else 0, otypes=[np.int64])(labels)
    cleaned = remove_small(labels, min_voxels)
    np.testing.assert_array_equal(cleaned, expected)
    assert cleaned.dtype == np.uint16


def brute_contacts(labels):
    found = Counter()
    for axis in range(3):
        lower = np.moveaxis(labels, axis, 0)[:-1].ravel().tolist()
        upper = np.moveaxis(labels, axis, 0)[1:].ravel().tolist()
        found.update((min(a, b), max(a, b)) for a, b in zip(lower, upper) if a and b and a != b)
    return found


@pytest.mark.parametrize('index', range(len(ID_SETS)))
@pytest.mark.parametrize('slab', [1, 2, 5])
@pytest.mark.parametrize('first_is_halo', [False, True])
def test_contact_counts_equal_a_count_of_faces(index, slab, first_is_halo):
    labels = cases((5, 6, 7))[index]
    pairs, counts = contact_counts((labels[z:z + slab] for z in range(0, labels.shape[0], slab)), first_is_halo)
    # a halo slice: only its faces to the next slice count
    expected = brute_contacts(labels) - brute_contacts(labels[:1]) if first_is_halo else brute_contacts(labels)
    assert pairs.tolist() == [list(p) for p in sorted(expected)]
    assert counts.tolist() == [expected[p] for p in sorted(expected)]
    assert pairs.dtype == counts.dtype == np.int64 and pairs.shape == (len(expected), 2)


def test_contact_counts_of_no_slab_and_of_a_halo_alone():
    assert contact_counts([])[0].shape == (0, 2)
    labels = np.array([[[1, 2]], [[3, 3]]], np.uint16)
    pairs, counts = contact_counts([labels[:1], labels[1:]], first_is_halo=True)  # the halo slab is one slice
    assert pairs.tolist() == [[1, 3], [2, 3]] and counts.tolist() == [1, 1]


@pytest.mark.parametrize('index', range(len(ID_SETS)))
def test_link_next_slice_numbers_new_particles_by_first_pixel_whatever_the_ids(index):
    current = cases((9, 11))[index]
    order = brute_first_voxel_order(current)
    linked, next_id = link_next_slice(None, current, 40)
    assert next_id == 40 + len(order) and linked.dtype == np.uint32
    expected = np.vectorize(lambda v: 40 + order.index(v) if v else 0, otypes=[np.int64])(current)
    np.testing.assert_array_equal(linked, expected)
    # continuing particles keep their 3D ids; the 2D ids of the slice do not matter
    linked_again, _ = link_next_slice(linked, current, next_id)
    np.testing.assert_array_equal(linked_again, linked)
    relabelled = np.where(current > 0, current.max() - current + 1, 0)  # the ids in reverse order
    np.testing.assert_array_equal(link_next_slice(linked, relabelled, next_id)[0], linked)


@pytest.mark.parametrize('seed', range(3))
def test_order_by_score_sorts_by_score_then_first_pixel(seed):
    rng = np.random.default_rng(seed)
    labels = random_labels(seed, (8, 10), np.int32, [0, 1, 2, 3, 4, 5, 6])
    labels[labels == 4] = 0  # an id without pixels is dropped
    scores = rng.choice([0.2, 0.5, 0.9], 6)  # ties
    present = brute_first_voxel_order(labels)
    ranked = sorted(present, key=lambda i: (-scores[i - 1], present.index(i)))
    ordered, ordered_scores, boxes = order_by_score(labels, scores)
    expected = np.vectorize(lambda v: ranked.index(v) + 1 if v else 0, otypes=[np.int64])(labels)
    np.testing.assert_array_equal(ordered, expected)
    np.testing.assert_allclose(ordered_scores, scores[np.array(ranked) - 1])
    assert ordered.dtype == np.uint16 and boxes.shape == (len(ranked), 4)
