"""Small operations on instance label arrays shared by tiling, linking and fusion.

Instance labels: 0 = background, 1..N = instances, any unsigned integer dtype.
"""
import math

import cc3d
import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..io.errors import check_number
from ..io.labels import check_labels, compact_labels, label_dtype, overlap_table

# the fragment merge (:func:`merge_small_lut`): an instance sharing at least this share of its surface with a
# neighbour more than 1 / PIECE_MAX_SIZE_RATIO times its size is a piece of it (chosen on validation volumes,
# BENCHMARKS.md "Pieces inside particles")
PIECE_MIN_SHARED_SURFACE = 0.35
PIECE_MAX_SIZE_RATIO = 0.5


def overlap_pairs(labels_a, labels_b):
    """Every pair of overlapping instances of two label arrays of the same shape, with the overlap sizes.

    Returns:
        tuple: ``(ids_a, ids_b, intersection, area_a, area_b)``, int64 arrays with one entry per overlapping pair
        (pixels/voxels), in increasing ``(ids_a, ids_b)`` order.
    """
    ids_a, ids_b, rows, cols, intersection, sizes_a, sizes_b = overlap_table(labels_a, labels_b)
    return (ids_a[rows].astype(np.int64), ids_b[cols].astype(np.int64), intersection, sizes_a[rows],
            sizes_b[cols])


def one_to_one(rows, cols, weights):
    """Maximum-weight one-to-one assignment among candidate pairs (Hungarian, per connected group).

    Args:
        rows, cols (np.ndarray): the two ids of each candidate pair (any integers).
        weights (np.ndarray): positive weight of each pair.

    Returns:
        np.ndarray: bool, which candidate pairs are assigned; no id of ``rows`` or of ``cols`` is used twice.
    """
    rows, cols, weights = np.asarray(rows), np.asarray(cols), np.asarray(weights, dtype=np.float64)
    chosen = np.zeros(rows.size, bool)
    if rows.size == 0:
        return chosen
    row_ids, row_rank = np.unique(rows, return_inverse=True)
    col_ids, col_rank = np.unique(cols, return_inverse=True)
    n_rows = row_ids.size
    graph = coo_matrix((np.ones(rows.size), (row_rank, n_rows + col_rank)), shape=(n_rows + col_ids.size,) * 2)
    _, group_of_node = connected_components(graph, directed=False)
    group = group_of_node[row_rank]
    order = np.argsort(group, kind='stable')
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    for members in np.split(order, bounds):
        if members.size == 1:  # a lone pair: nothing competes with it
            chosen[members] = True
            continue
        r_ids, r = np.unique(row_rank[members], return_inverse=True)
        c_ids, c = np.unique(col_rank[members], return_inverse=True)
        matrix = np.zeros((r_ids.size, c_ids.size))
        matrix[r, c] = weights[members]
        best_r, best_c = linear_sum_assignment(matrix, maximize=True)
        picked = {(i, j) for i, j in zip(best_r.tolist(), best_c.tolist()) if matrix[i, j] > 0}
        chosen[members] = [(i, j) in picked for i, j in zip(r.tolist(), c.tolist())]
    return chosen


def remove_small(labels, min_voxels):
    """Remove instances smaller than ``min_voxels`` and number the rest 1..K, keeping their order.

    Args:
        labels (np.ndarray): (H, W) or (Z, Y, X) integer instance labels.
        min_voxels (int): instances with fewer pixels/voxels are set to 0 (0 or 1 keeps all).

    Returns:
        np.ndarray: same shape, uint16 when K <= 65535 else uint32.

    Raises:
        TypeError / ValueError: labels that are not a 2D or 3D integer array of values >= 0
            (:func:`~libnet_mmdet.io.check_labels`); ``min_voxels`` not a number >= 0 (InputError).
    """
    labels = check_labels(labels, 'labels', ndim=(2, 3), allow_empty=True)
    check_number(min_voxels, 'min_voxels')  # NaN would remove all
    compact, _ = compact_labels(labels)
    ids, sizes = np.unique(compact, return_counts=True)
    keep = (ids > 0) & (sizes >= min_voxels)
    n_kept = int(keep.sum())
    new_ids = np.zeros(int(ids[-1]) + 1, label_dtype(n_kept))
    new_ids[ids[keep]] = np.arange(1, n_kept + 1)
    return new_ids[compact]


def face_pairs(shape, first_is_carried=False):
    """Index pairs of face-neighbouring voxels of a (n, Y, X) block, for each axis: yields ``(axis, lower,
    upper)`` with ``block[lower]`` and ``block[upper]`` the two sides of every face along ``axis``.

    ``first_is_carried``: the block's first slice is the previous slab's last one, whose in-plane faces were
    already visited; only its faces along z to the block's second slice are yielded.
    """
    first = 1 if first_is_carried else 0
    for axis in range(3):
        lower, upper = [slice(None)] * 3, [slice(None)] * 3
        lower[axis], upper[axis] = slice(0, shape[axis] - 1), slice(1, shape[axis])
        if axis > 0:
            lower[0] = upper[0] = slice(first, shape[0])
        yield axis, tuple(lower), tuple(upper)


def contact_counts(slabs_zyx, first_is_halo=False, background=False):
    """Face contacts between different instances of a (Z, Y, X) label volume read slab by slab
    (``cc3d.contacts`` inside each slab).

    Args:
        slabs_zyx (iterable): consecutive (n, Y, X) integer label slabs in z order (one slice is carried over, so
            memory holds one slab).
        first_is_halo (bool): the first slab's first slice lies above the volume part counted (the last slice of
            the block above, whose contacts that block counts): only its faces to the next slice are counted.
        background (bool): also count each instance's faces with the background, as pairs ``(0, id)`` (with the
            others, an instance's surface inside the volume).

    Returns:
        tuple: ``(pairs, counts)``: (K, 2) int64 id pairs ``a < b`` of instances that share at least one voxel
        face (6-neighbourhood; background excluded unless ``background``) and (K,) int64 numbers of shared faces.
    """
    pairs, counts, carried = [], [], None
    for slab in slabs_zyx:
        slab = np.asarray(slab)
        if first_is_halo:  # the halo slice is only carried to the next one
            carried, slab, first_is_halo = slab[0], slab[1:], False
        if not len(slab):
            continue
        if carried is not None:
            pairs.append(_faces_between(carried, slab[0]))
            counts.append(np.ones(len(pairs[-1]), np.int64))
        # the faces inside the slab; the transposed view is in the memory order cc3d wants (no copy), and face
        # counts do not depend on the order of the axes
        inside = cc3d.contacts(slab.T, connectivity=6, surface_area=False)
        pairs.append(np.array(list(inside), np.int64).reshape(-1, 2))
        counts.append(np.fromiter(inside.values(), np.float64, len(inside)).astype(np.int64))
        if background:
            block = slab if carried is None else np.concatenate([carried[None], slab])
            pairs_bg, counts_bg = _background_faces(block, first_is_carried=carried is not None)
            pairs.append(pairs_bg)
            counts.append(counts_bg)
        carried = slab[-1]
    return _sum_contacts(np.concatenate(pairs or [np.zeros((0, 2), np.int64)]),
                         np.concatenate(counts or [np.zeros(0, np.int64)]))


def _background_faces(block, first_is_carried):
    """``(pairs, counts)`` of the faces between instances and background in a (n, Y, X) block (pairs ``(0, id)``;
    a carried first slice as in :func:`face_pairs`)."""
    ids = []
    for _, lower, upper in face_pairs(block.shape, first_is_carried):
        a, b = block[lower].astype(np.int64), block[upper].astype(np.int64)
        one_empty = (a == 0) != (b == 0)
        ids.append((a + b)[one_empty])
    found, counts = np.unique(np.concatenate(ids), return_counts=True)
    return np.stack([np.zeros_like(found), found], axis=1), counts.astype(np.int64)


def _faces_between(lower_hw, upper_hw):
    """(F, 2) int64 id pairs ``a < b``, one per face between two neighbouring slices that separates different
    instances (background excluded)."""
    a, b = np.ravel(lower_hw).astype(np.int64), np.ravel(upper_hw).astype(np.int64)
    touch = (a != b) & (a > 0) & (b > 0)
    a, b = a[touch], b[touch]
    return np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)


def _sum_contacts(pairs, counts):
    """Contact pairs made distinct (in increasing order), their counts summed."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    span = int(pairs[:, 1].max(initial=0)) + 1
    if int(pairs[:, 0].max(initial=0)) < np.iinfo(np.int64).max // span:  # one int64 key per pair: a fast sort
        keys, inverse = np.unique(pairs[:, 0] * span + pairs[:, 1], return_inverse=True)
        unique = np.stack(np.divmod(keys, span), axis=1)
    else:
        unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    return unique, np.bincount(inverse.ravel(), weights=counts, minlength=len(unique)).astype(np.int64)


def _last_of_runs(sorted_keys):
    """Bool mask of the last element of each run of equal values in a sorted array."""
    last = np.ones(sorted_keys.size, bool)
    last[:-1] = sorted_keys[1:] != sorted_keys[:-1]
    return last


def min_voxels_for_diameter(mean_diameter_vox):
    """A ``min_voxels`` for particles of ``mean_diameter_vox`` voxels across: the volume of a sphere a third of
    that diameter across, ``round(pi / 6 * (d / 3) ** 3)`` voxels (fragments of 3D assembly are smaller, real
    particles larger). ``InputError`` for a diameter that is not a number > 0."""
    check_number(mean_diameter_vox, 'mean_diameter_vox', low_open=True)
    return round(math.pi / 6 * (mean_diameter_vox / 3) ** 3)


def min_voxels_for_particles(voxels):
    """:func:`min_voxels_for_diameter` of the median equivalent diameter ``(6 V / pi) ** (1/3)`` of particles of
    ``voxels`` voxels each (1D array-like, finite, > 0): what ``--min-voxels auto`` leaves out of an analysis as
    specks. Where more than half the labels are specks (heavy over-segmentation) the median is a speck's and few
    are left out.

    Raises:
        ValueError: ``voxels`` is empty, not 1D, or holds a size that is not finite and above 0.
    """
    voxels = np.asarray(voxels, dtype=np.float64)
    if voxels.ndim != 1 or voxels.size == 0:
        raise ValueError(f'voxels: expected a 1D array of particle sizes, got shape {voxels.shape}')
    bad = ~(np.isfinite(voxels) & (voxels > 0))
    if bad.any():
        raise ValueError(f'voxels: particle sizes must be finite and > 0, got {voxels[bad][:3].tolist()}')
    return min_voxels_for_diameter(float(np.median(np.cbrt(6 / np.pi * voxels))))


def merge_small_lut(sizes, slabs_zyx, min_voxels, contacts=None):
    """Lookup table that merges fragments into the particle they share the most faces with, then removes what is
    still smaller than ``min_voxels`` (fragments touching no particle), and numbers the rest 1..K.

    A fragment is an instance smaller than ``min_voxels``, or a piece: an instance that shares at least
    :data:`PIECE_MIN_SHARED_SURFACE` of its surface with a neighbour more than ``1 /`` :data:`PIECE_MAX_SIZE_RATIO`
    times its size (a piece where the views of a fusion disagree lies inside the particle it belongs to, whatever its
    size; a small particle beside a large one shares little of its surface with it).

    Fragments of 3D assembly (a duplicate 2D detection left unlinked, a sliver where the views of a fusion
    disagree) touch the particle they belong to; isolated small objects are noise. Every fragment joins exactly one
    neighbour, so two particles are never joined through a fragment between them.

    Args:
        sizes (np.ndarray): voxel count of ids 0..N (index = id; 0 = background).
        slabs_zyx (iterable): the labels, slab by slab as for :func:`contact_counts` (not read when ``contacts``
            are given or ``min_voxels`` merges nothing).
        min_voxels (int): the smallest particle kept, in voxels (0 or 1: nothing merged or removed).
        contacts (tuple | None): ``(pairs, counts)`` as :func:`contact_counts` returns with ``background=True``,
            summed over blocks (pairs may repeat: their counts add up), instead of reading ``slabs_zyx``.

    Returns:
        tuple: ``(lut, K)``: ids 0..N -> 0..K in the smallest label dtype; kept groups are numbered in increasing
        order of their smallest member's id (so ids 1..N in order of their first voxel give particles 1..K in that
        order too).
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    n, ids = sizes.size, np.arange(sizes.size)
    if min_voxels <= 1:  # nothing merged
        contacts = (np.zeros((0, 2), np.int64), np.zeros(0, np.int64))
    elif contacts is None:
        contacts = contact_counts(slabs_zyx, background=True)
    pairs, counts = _sum_contacts(*contacts)
    surface = np.bincount(pairs.ravel(), weights=np.repeat(counts, 2), minlength=n)
    inside = pairs[:, 0] > 0  # background faces only count for the surface
    # both directions; per id keep its neighbour with the most shared faces (ties: the larger neighbour)
    source = np.concatenate([pairs[inside, 0], pairs[inside, 1]])
    target = np.concatenate([pairs[inside, 1], pairs[inside, 0]])
    weight = np.concatenate([counts[inside], counts[inside]])
    order = np.lexsort((sizes[target], weight, source))
    best = order[_last_of_runs(source[order])]
    source, target, weight = source[best], target[best], weight[best]
    piece = ((weight >= PIECE_MIN_SHARED_SURFACE * surface[source])
             & (sizes[source] < PIECE_MAX_SIZE_RATIO * sizes[target]))
    chosen = (sizes[source] < min_voxels) | piece
    graph = coo_matrix((np.ones(chosen.sum(), np.int8), (source[chosen], target[chosen])), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    # each group is represented by its largest member (ties: the larger id)
    order = np.lexsort((ids, sizes, group))
    last = order[_last_of_runs(group[order])]  # the largest member of each group
    representative = np.zeros(group.max() + 1, np.int64)
    representative[group[last]] = last
    roots = representative[group]
    group_sizes = np.bincount(roots, weights=sizes, minlength=n)
    keep = (group_sizes >= max(min_voxels, 1)) & (roots == ids)
    keep[0] = False
    n_kept = int(keep.sum())
    first = np.full(group.max() + 1, n, np.int64)
    np.minimum.at(first, group, ids)  # each group's smallest member id
    kept = np.flatnonzero(keep)
    new_ids = np.zeros(n, np.int64)
    new_ids[kept[np.argsort(first[group[kept]], kind='stable')]] = np.arange(1, n_kept + 1)
    return new_ids[roots].astype(label_dtype(n_kept)), n_kept


#: Gaussian kernels reach this many sigmas (scipy's default truncation): a block smoothed with a halo this deep
#: equals the whole volume smoothed (:func:`smooth_labels`).
SMOOTH_TRUNCATE = 4.0


#: ``smooth='auto'``: the Gaussian sigma of :func:`smooth_labels` for fused particles, in voxels (chosen on validation
#: volumes, BENCHMARKS.md "Smoothed particle masks"; linked particles are not smoothed by default: no 2D gain there,
#: "Smoothing linked views").
SMOOTH_SIGMA_VOXELS = 0.75


def resolve_smooth(smooth, views, voxel_size_nm=None):
    """The (Z, Y, X) Gaussian sigma in voxels that :func:`smooth_labels` gets for a volume run, or None (no
    smoothing).

    Args:
        smooth (float | 'auto' | None): sigma in voxels of the finest axis (0 or None: none); ``'auto'``:
            :data:`SMOOTH_SIGMA_VOXELS` for fused views (two or three), none for one linked view.
        views (sequence[str]): the views segmented.
        voxel_size_nm (float | sequence | None): (Z, Y, X) voxel edges: a coarser axis gets a proportionally
            smaller sigma (the same length in nm); None: cubic voxels.
    """
    if smooth == 'auto':
        smooth = SMOOTH_SIGMA_VOXELS if len(views) > 1 else None
    if not smooth:
        return None
    edges = np.broadcast_to(np.asarray(1.0 if voxel_size_nm is None else voxel_size_nm, np.float64), (3,))
    return tuple(float(smooth) * edges.min() / edges)


def smooth_halo(sigma_zyx):
    """Slices above and below a z-block that :func:`smooth_labels` needs for the block's own slices to come out as
    in the whole volume."""
    return math.ceil(SMOOTH_TRUNCATE * float(np.atleast_1d(sigma_zyx)[0]))


def smooth_labels(labels_zyx, sigma_zyx):
    """Each particle's mask smoothed: a voxel goes to the particle whose mask, blurred with a Gaussian of
    ``sigma_zyx`` voxels, is largest there and above 0.5 (ties: the smaller id), else to the background. Rounds the
    ragged outlines and the ends in z that 2D slices assembled into 3D leave (BENCHMARKS.md, "Smoothed particle
    masks"). A particle whose smoothed mask would be empty keeps its voxels, so none is lost.

    Args:
        labels_zyx (np.ndarray): (Z, Y, X) instance labels, any unsigned or signed integer dtype.
        sigma_zyx (float | sequence[float]): Gaussian sigma in voxels, one for all axes or (Z, Y, X); 0: unchanged.

    Returns:
        np.ndarray: smoothed labels, same shape and dtype (a new array).
    """
    try:
        sigma = np.broadcast_to(np.asarray(sigma_zyx, np.float64), (3,))
    except (TypeError, ValueError):  # not numbers, or neither one nor three
        sigma = np.full(3, np.nan)
    if not np.all(np.isfinite(sigma)) or np.any(sigma < 0):
        raise ValueError(f'sigma_zyx: expected one sigma or three (Z, Y, X), finite and >= 0 (voxels), '
                         f'got {sigma_zyx!r}')
    out = np.array(labels_zyx, copy=True)
    if not sigma.any() or not out.any():
        return out
    margin = [math.ceil(SMOOTH_TRUNCATE * s) for s in sigma]
    compact, ids = compact_labels(labels_zyx, always=True)  # 1..k in the order of the ids: find_objects' list
    out[...] = 0
    best = np.zeros(labels_zyx.shape, np.float32)
    for index, box in enumerate(ndi.find_objects(compact), start=1):
        box = tuple(slice(max(b.start - m, 0), min(b.stop + m, n)) for b, m, n in zip(box, margin, compact.shape))
        mask = compact[box] == index
        blurred = ndi.gaussian_filter(mask.astype(np.float32), sigma, truncate=SMOOTH_TRUNCATE)
        take = (blurred > 0.5) & (blurred > best[box])
        if not take.any():  # a speck smaller than the kernel: kept as it is
            take, blurred = mask, np.where(mask, np.float32(1), blurred)
        out[box][take] = ids[index - 1]
        best[box][take] = blurred[take]
    return out

