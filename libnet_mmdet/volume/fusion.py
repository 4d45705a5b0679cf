"""Fusing 2D instance segmentations of the xy, xz and yz views into one 3D instance volume.

Each view is a (Z, Y, X) array of 2D instance ids: ``labels_xy[z]`` holds the instances of xy slice z,
``labels_xz[:, y]`` those of xz slice y and ``labels_yz[:, :, x]`` those of yz slice x (ids need only be
consistent within one slice). Every pair of neighbouring voxels along an axis lies in one slice of each of two
views (z: xz and yz; y: xy and yz; x: xy and xz), which say whether the two voxels carry the same 2D id, and in two
consecutive slices of the third view, the view *across* the axis (z: xy slices z and z + 1), which says whether
the two 2D instances there continue each other.

Algorithm (eroded consensus core judged by every view, growth, then a vote per contact surface on the sections):

1. **Continuity**: in each view, a 2D instance of slice k and one of slice k + 1 *continue* each other when their
   overlap covers at least ``min_overlap`` of the smaller one (the overlap coefficient of linking,
   :mod:`~libnet_mmdet.volume.linking`). A face between two neighbouring voxels is *joined* when both are core
   voxels (below), every view containing its direction gives them the same 2D id, and the view across it has
   continuing 2D instances there.
2. **Core**: voxels that every view labels as particle. **Seeds**: core voxels that are interior to their 2D
   instance in every view (their in-plane 4-neighbours carry the same id), which cuts the thin necks where the
   views merged two touching particles.
3. **Seed particles**: connected components of the seeds through joined faces.
4. **Growth**: voxels of the majority foreground (labelled by at least ``min_votes`` views, by default more than
   half) join the nearest seed particle within ``grow_voxels`` (Euclidean,
   :func:`skimage.segmentation.expand_labels`).
5. **Section vote**: in each slice of each view, the section of a grown particle takes the view's *dominant* 2D
   id there (the id covering most of its voxels). A contact face between two grown particles is joined when the
   views containing its direction give the two particles' sections the same dominant id; two touching particles
   are *candidates* when at least ``min_join_fraction`` of the faces between them are joined. Each particle joins
   at most one candidate: the larger candidate it has the most joined faces with (ties: the smaller id). So two
   particles are joined only through a larger one, never through a smaller fragment between them.

Why each rule (measured on particles twice the demo's size, BENCHMARKS.md): two views that both merge two touching
particles in a slice would let one face join their seeds, and the seeds of large particles share many faces; two
different particles side by side do not overlap from one slice to the next, so the view across vetoes such a face
(step 1). A face-by-face 2D id comparison at the contact says "same" whenever the views place the boundary a voxel
or two off the growth's boundary (at ``scale=0.5`` a model pixel is two voxels); the dominant id of a section does
not depend on exactly where a view puts the boundary (step 5). Where the views disagree, small fragments of seeds
touch both particles, and a vote graph chaining through them joined the particles (step 5's larger-neighbour rule).

A particle split in two in one slice of one view stays whole: only the faces inside that slice's plane are cut,
and the neighbouring slices, which the other views judge, connect it; each piece overlaps the whole section of
the next slice, so the continuity holds. A section one view *misses* is outside the core, and no face through it
is joined: the particle is cut in two there (as with linking), and its two parts join in the vote when the views
containing the cut's direction give both parts one dominant id. A particle that one view misses in every slice,
or one thinner than 3 voxels, has no seed and is lost: fuse fewer views then, or link one view. The vote follows
the majority of the views: two particles that two views merge in every slice are joined when most of their contact
faces lie along the direction those two views share (xz and yz: a contact tilted more than 45 degrees from
upright), although linking the third view would keep them apart.

Limits of the keys: 2D ids below 2**21 per slice and volumes below 2**21 voxels a side.

Assumes (near-)isotropic voxels: the model sees xz and yz slices as if they were xy slices.

Streaming: the volume is processed in z-slabs, in five passes: the continuity of every view (its pairs of
overlapping 2D instances in consecutive slices and their areas, summed over the slabs); seed particles labelled
per slab (views read with one slice of halo) with the previous slab's last slice carried over, new provisional ids
per slab and the joins through the carried slice collected as edges of a graph solved once
(:func:`~libnet_mmdet.volume.blocks.connected_groups`); growth, reading each slab with a halo of ``grow_voxels``
slices and counting the voxels of every (view slice, grown particle, 2D id); the contact faces and their votes; a
last pass that rewrites the merged ids. Memory holds a few slabs and tables with one entry per section of a 2D
instance or a grown particle, never the volume.

Over ranks (``fuse_slabs(..., ranks=...)``), each rank runs every pass on its own z-block: a block's first slab
starts without a carried slice and the seed joins across block faces are found after a barrier from the two
slices on either side of each face; the continuity of xy instances is judged from the slices of the block (and the
one above it), while the overlaps and areas of xz and yz instances and the section counts, which sum over all z,
are totalled over the ranks for what the block needs (:meth:`~libnet_mmdet.volume.blocks.Ranks.sum_tables`: its
own 2D instance pairs; every section of its particles and of those in the slice above it); the vote graph and the
sizes (one entry per particle or touching pair) are gathered. Every step then sees what one process would: the
result is the same, voxel for voxel.
"""

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.segmentation import expand_labels

from ..io.errors import check_int, check_number
from ..io.labels import check_labels, check_same_shape, label_dtype, renumber_by_first_voxel
from ..io.volume import AXES
from .blocks import Ranks, connected_groups
from .labels import face_pairs, merge_small_lut
from .linking import DEFAULT_MIN_OVERLAP
from .views import VIEW_AXIS, VIEW_PLANE_AXES, VIEWS, VIEWS_SEEING_AXIS

DEFAULT_GROW_VOXELS = 3  # the 1-voxel erosion of the seeds plus 2 voxels where the views disagree on the rim
DEFAULT_MIN_JOIN_FRACTION = 0.5
#: The view whose slices are perpendicular to each axis of (Z, Y, X): xy slices for z, xz for y, yz for x.
_VIEW_ACROSS_AXIS = {AXES[axis]: view for view, axis in VIEW_AXIS.items()}
_ID_BITS = 21  # 2D ids and slice indices below 2**21: a slice index and two ids pack into one int64 key


def check_views(views):
    """Return the dict of the given views' arrays (at least two; same 3D shape; integer labels)."""
    given = {name: array for name, array in views.items() if array is not None}
    if len(given) < 2:
        raise ValueError(f'fuse_views needs at least two of the views {VIEWS}, got {sorted(given) or "none"}')
    shape = None
    for name, array in given.items():
        if getattr(array, 'ndim', None) != 3:
            raise ValueError(f'labels_{name}: expected a (Z, Y, X) array, got shape {getattr(array, "shape", None)}')
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f'labels_{name}: instance labels must have an integer dtype, got {array.dtype}')
        if shape is None:
            shape, first = array.shape, name
        check_same_shape(array, shape, f'labels_{name}', f'labels_{first}')
    if 0 in shape:
        raise ValueError(f'fuse_views: empty volume of shape {shape}')
    return given


def _slice_components(core_hw, joined_y, joined_x):
    """Connected components of one core slice where only the ``joined`` neighbour pairs connect.

    ``joined_y`` (H-1, W) / ``joined_x`` (H, W-1) say whether each vertical / horizontal neighbour pair is
    joined. The slice is labelled on a grid of doubled resolution whose odd positions are the joins, so
    :func:`scipy.ndimage.label` does the work; components are numbered in raster order of their first pixel.
    """
    height, width = core_hw.shape
    grid = np.zeros((2 * height - 1, 2 * width - 1), bool)
    grid[::2, ::2] = core_hw
    grid[1::2, ::2] = joined_y
    grid[::2, 1::2] = joined_x
    components, n_components = ndimage.label(grid)  # 4-connectivity
    return components[::2, ::2], n_components


def _neighbour_pairs(axis):
    """Index tuples of the lower and upper voxel of every neighbour pair along ``axis`` of a (n, Y, X) block."""
    lower = tuple(slice(0, -1) if a == axis else slice(None) for a in range(3))
    upper = tuple(slice(1, None) if a == axis else slice(None) for a in range(3))
    return lower, upper


def _slice_index(mask, axis, offset):
    """The index along ``axis`` (plus ``offset``) of every True voxel of a (n, Y, X) ``mask``, in C order."""
    index = np.arange(offset, offset + mask.shape[axis], dtype=np.int64)
    return np.broadcast_to(index.reshape([-1 if a == axis else 1 for a in range(3)]), mask.shape)[mask]


def _pair_keys(index, lower_ids, upper_ids):
    """Int64 keys ``k << 2 * _ID_BITS | a << _ID_BITS | b`` of 2D id ``a`` in slice k and ``b`` in slice k + 1."""
    return (index << 2 * _ID_BITS) | (lower_ids.astype(np.int64) << _ID_BITS) | upper_ids.astype(np.int64)


def _count_keys(keys):
    """The distinct non-negative int64 ``keys`` (sorted) and how often each occurs."""
    keys = np.sort(keys)
    starts = np.flatnonzero(np.diff(keys, prepend=-1))
    return keys[starts], np.diff(np.append(starts, keys.size))


def _sum_by_key(keys, *weights):
    """The distinct ``keys`` (sorted) and, for each of ``weights``, its sum per key (float64)."""
    unique, inverse = np.unique(keys, return_inverse=True)
    return (unique, *(np.bincount(inverse, weights=w, minlength=unique.size) for w in weights))


def _sum_parts(parts):
    """:func:`_sum_by_key` over a list of per-block ``(keys, counts)``."""
    return _sum_by_key(*(np.concatenate(column) for column in zip(*parts)))


def _overlap_counts(labels, axis, start, own):
    """Step 1 on a block of one view's labels starting at slice ``start`` (along z): the pixel counts of the
    overlaps of 2D instances of consecutive slices along ``axis`` (keyed by :func:`_pair_keys`) and of the areas
    of the 2D instances of the block's first ``own`` slices (keyed ``k << _ID_BITS | a``): two ``(keys,
    counts)``."""
    offset = start if axis == 0 else 0
    lower, upper = _neighbour_pairs(axis)
    both = (labels[lower] > 0) & (labels[upper] > 0)
    index = _slice_index(both, axis, offset)
    pairs = _count_keys(_pair_keys(index, labels[lower][both], labels[upper][both]))
    present = labels[:own] > 0
    index = _slice_index(present, axis, offset)
    return pairs, _count_keys((index << _ID_BITS) | labels[:own][present].astype(np.int64))


def _continuity(read_views, shape, slab, min_overlap, ranks):
    """Step 1, first pass: which 2D instances of consecutive slices of each view continue each other, for the
    pairs in this rank's block. xy pairs lie in two slices: the block counts them itself (with the slice above it,
    for the joins across its top face); the overlaps and areas of xz and yz instances sum over every block
    (:meth:`~libnet_mmdet.volume.blocks.Ranks.sum_tables`).

    Returns:
        dict: view name -> the sorted :func:`_pair_keys` of its continuing pairs (those the block needs).
    """
    if max(shape) >= 2 ** _ID_BITS:
        raise ValueError(f'fuse_views: volumes up to {2 ** _ID_BITS - 1} voxels a side, got shape {tuple(shape)}')
    depth = shape[0]
    empty = (np.zeros(0, np.int64), np.zeros(0))
    pairs = {name: [empty] for name in read_views(0, 1)}  # every rank sums the tables of every view
    areas = {name: [empty] for name in pairs}
    z_start, z_stop = ranks.block(depth, slab)
    for z0 in range(z_start, z_stop, slab):
        z1 = min(z0 + slab, depth)
        above = 1 if z0 == z_start and z0 > 0 else 0  # the xy slice above the block
        for name, labels in read_views(z0 - above, min(z1 + 1, depth)).items():  # and one below: pair (z1 - 1, z1)
            if labels.max(initial=0) >= 2 ** _ID_BITS:
                raise ValueError(f'labels_{name}: 2D instance ids must be below 2**{_ID_BITS} (number the '
                                 f'instances of each slice from 1), got {labels.max()}')
            axis = AXES[VIEW_AXIS[name]]
            if axis == 0:
                block_pairs, block_areas = _overlap_counts(labels, axis, z0 - above, z1 - z0 + above)
            else:
                block_pairs, block_areas = _overlap_counts(labels[above:above + z1 - z0], axis, z0, z1 - z0)
            pairs[name].append(block_pairs)
            areas[name].append(block_areas)
    tables = {}
    for name in pairs:
        (keys, overlap), (section_keys, section_areas) = _sum_parts(pairs[name]), _sum_parts(areas[name])
        if AXES[VIEW_AXIS[name]] != 0:
            keys, overlap = ranks.sum_tables(f'pairs_{name}', keys, overlap)
            section_keys, section_areas = ranks.sum_tables(f'areas_{name}', section_keys, section_areas)
        upper_section = (((keys >> 2 * _ID_BITS) + 1) << _ID_BITS) | (keys & (2 ** _ID_BITS - 1))
        lower_at, lower_found = _find(section_keys, keys >> _ID_BITS)
        upper_at, upper_found = _find(section_keys, upper_section)
        smaller = np.minimum(section_areas[lower_at], section_areas[upper_at]) if section_keys.size else overlap
        # xy pair (z_stop - 1, z_stop): the block below judges it (its area of slice z_stop is not counted here)
        tables[name] = keys[lower_found & upper_found & (overlap >= min_overlap * smaller)]
    return tables


def _find(keys, query):
    """Where each of ``query`` is in the sorted ``keys`` (clipped position) and whether it is there."""
    position = np.searchsorted(keys, query).clip(max=max(keys.size - 1, 0))
    return position, (keys[position] == query) if keys.size else np.zeros(np.shape(query), bool)


def _joins(window, core, axis, continuity, z_start):
    """Which neighbour pairs along ``axis`` of a window starting at slice ``z_start`` are joined (step 1): both
    core, the same id in every view containing the axis, continuing 2D instances in the view across it."""
    lower, upper = _neighbour_pairs(axis)
    joined = core[lower] & core[upper]
    for name in VIEWS_SEEING_AXIS[axis]:
        if name in window:
            joined &= window[name][lower] == window[name][upper]
    across = _VIEW_ACROSS_AXIS[axis]
    if across in window:
        index = _slice_index(joined, axis, z_start if axis == 0 else 0)
        _, joined[joined] = _find(continuity[across], _pair_keys(index, window[across][lower][joined],
                                                                 window[across][upper][joined]))
    return joined


def seed_mask(padded_window):
    """Seeds (step 2 of the module docstring) of a window read with one halo slice above and below.

    Args:
        padded_window (dict[str, np.ndarray]): view name -> (n + 2, Y, X) labels; the halo slices replicate the
            first/last slice at the top/bottom of the volume.

    Returns:
        np.ndarray: (n, Y, X) bool, voxels every view labels as particle with the same id on their four in-plane
        neighbours (outside the volume counts as the same).
    """
    seeds = None
    for name, labels in padded_window.items():
        padded = np.pad(labels, ((0, 0), (1, 1), (1, 1)), mode='edge')
        centre = padded[1:-1, 1:-1, 1:-1]
        interior = centre > 0
        for axis in VIEW_PLANE_AXES[name]:
            for step in (-1, 1):
                index = [slice(1, -1)] * 3
                index[axis] = slice(1 + step, padded.shape[axis] - 1 + step)
                interior &= padded[tuple(index)] == centre
        seeds = interior if seeds is None else seeds & interior
    return seeds


def core_components(window, mask, carried_ids, next_id, continuity, z_start):
    """Label the seed particles of one z-window (step 3 of the module docstring).

    Each slice is labelled in 2D first (joins along y and x), then the 2D components of neighbouring slices
    that are joined along z are grouped (a graph over 2D components, far smaller than the voxels).

    Args:
        window (dict[str, np.ndarray]): view name -> (n, Y, X) labels of the window's slices.
        mask (np.ndarray): (n, Y, X) bool, the voxels to label (the seeds).
        carried_ids (np.ndarray | None): (Y, X) provisional ids of the window's first slice, carried from the
            previous window, or None when the window starts a block.
        next_id (int): the first unused provisional id.
        continuity (dict): the views' :func:`_continuity` tables.
        z_start (int): the volume's z of the window's first slice.

    Returns:
        tuple: ``(ids, edges, next_id)``: (n, Y, X) uint32 provisional ids of the window (new ids ``next_id, ...``
        in order of the groups' first voxel; the carried slice keeps no new id of its own), (E, 2) int64 pairs of
        a carried id and the new id of a group it continues into, and the new first unused id.
    """
    core = mask
    joined_y, joined_x = (_joins(window, core, axis, continuity, z_start) for axis in (1, 2))
    components = np.zeros(core.shape, np.int32)
    n_nodes = 0
    for k in range(core.shape[0]):
        labels_2d, n_2d = _slice_components(core[k], joined_y[k], joined_x[k])
        components[k] = np.where(labels_2d > 0, labels_2d + n_nodes, 0)
        n_nodes += n_2d
    joined_z = _joins(window, core, 0, continuity, z_start)
    heads, tails = components[:-1][joined_z], components[1:][joined_z]
    graph = coo_matrix((np.ones(heads.size, np.int8), (heads, tails)), shape=(n_nodes + 1,) * 2)
    _, group = connected_components(graph, directed=False)  # group of each 2D component (node 0 = background)
    # 2D components are numbered in scan order, so a group's smallest node is its first voxel.
    first = 1 if carried_ids is not None else 0  # groups of the carried slice alone already have their id
    nodes = np.unique(components[first:])
    group_ids = np.unique(group[nodes[nodes > 0]])
    group_to_id = np.zeros(int(group.max()) + 1, np.int64)
    group_to_id[group_ids] = np.arange(next_id, next_id + group_ids.size)
    edges = np.zeros((0, 2), np.int64)
    if carried_ids is not None:
        carried = np.unique(np.stack([carried_ids[core[0]].astype(np.int64),
                                      group_to_id[group[components[0][core[0]]]]], axis=1), axis=0)
        edges = carried[carried[:, 1] > 0]
    node_to_id = np.concatenate([[0], group_to_id[group[1:]]]).astype(np.uint32)
    return node_to_id[components], edges, next_id + group_ids.size


def majority_foreground(window, min_votes):
    """(Z, Y, X) bool: voxels labelled as particle by at least ``min_votes`` of the views in ``window`` (view name
    -> (Z, Y, X) integer labels of one shape)."""
    return np.add.reduce([labels > 0 for labels in window.values()], dtype=np.uint8) >= min_votes


def default_min_votes(n_views):
    """More than half of the views: 2 of 3, 2 of 2."""
    return n_views // 2 + 1


def _padded_window(read_views, z0, z1, depth):
    """The views of slices ``z0:z1`` with one halo slice on each side (replicated at the volume's top/bottom)."""
    window = read_views(max(z0 - 1, 0), min(z1 + 1, depth))
    top, bottom = int(z0 == 0), int(z1 == depth)
    return {name: np.concatenate([labels[:1]] * top + [labels] + [labels[-1:]] * bottom)
            for name, labels in window.items()}


def _section_counts(particles, views, z_start, index_bits):
    """Step 5 on a block of grown particles starting at slice ``z_start``: view name -> the voxel counts of every
    (particle, view slice k, 2D id), keyed ``(particle << index_bits | k) << _ID_BITS | id`` (``(keys,
    counts)``): particle-major, so that every section of a particle is one range of keys."""
    counts = {}
    for name, labels in views.items():
        axis = AXES[VIEW_AXIS[name]]
        both = (particles > 0) & (labels > 0)
        index = _slice_index(both, axis, z_start if axis == 0 else 0)
        sections = (particles[both].astype(np.int64) << index_bits) | index
        counts[name] = _count_keys((sections << _ID_BITS) | labels[both].astype(np.int64))
    return counts


def dominant_ids(parts):
    """Step 5: from the blocks' :func:`_section_counts` of one view, the sorted section keys ``particle <<
    index_bits | k`` and the 2D id covering most of each section (ties: the smallest id)."""
    keys, voxels = _sum_parts(parts)
    sections, ids = keys >> _ID_BITS, keys & (2 ** _ID_BITS - 1)
    order = np.lexsort((ids, -voxels, sections))
    _, first = np.unique(sections[order], return_index=True)
    return sections[order][first], ids[order][first]


def _dominant_of(table, sections):
    """The dominant 2D id of each of ``sections`` (keys as in :func:`dominant_ids`; 0 where the view labels none
    of its voxels)."""
    keys, ids = table
    position, found = _find(keys, sections)
    return np.where(found, ids[position] if ids.size else 0, 0)


def _contact_votes(grown, dominant, index_bits, z_start, first_is_carried):
    """Faces between different grown particles of a block starting at slice ``z_start``, per touching pair:
    (int64 pair keys ``low << 32 | high``, number of faces, number of joined faces); ``dominant``: view name ->
    :func:`dominant_ids`."""
    keys, joined = [], []
    for axis, lower, upper in face_pairs(grown.shape, first_is_carried):
        a, b = grown[lower], grown[upper]
        touch = (a != b) & (a > 0) & (b > 0)
        position = [c.astype(np.int64) + (s.start or 0) for c, s in zip(np.nonzero(touch), lower)]
        position[0] += z_start
        a, b = a[touch].astype(np.int64), b[touch].astype(np.int64)
        agree = np.ones(a.size, bool)
        for name in VIEWS_SEEING_AXIS[axis]:  # both voxels of a face lie in one slice of these views
            if name in dominant:
                index = position[AXES[VIEW_AXIS[name]]]
                id_a = _dominant_of(dominant[name], (a << index_bits) | index)
                agree &= (id_a > 0) & (id_a == _dominant_of(dominant[name], (b << index_bits) | index))
        keys.append((np.minimum(a, b) << 32) | np.maximum(a, b))
        joined.append(agree)
    return _sum_by_key(np.concatenate(keys), np.ones(sum(k.size for k in keys)), np.concatenate(joined))


def vote_lut(sizes, votes, min_join_fraction):
    """Ids 0..N -> the smallest id of their group (step 5): each particle joins the larger candidate (at least
    ``min_join_fraction`` of their contact faces joined) it has the most joined faces with.

    Args:
        sizes (np.ndarray): voxels of each grown particle (index = id; ties of size: the larger id is larger).
        votes (list): the per-block results of :func:`_contact_votes`.
        min_join_fraction (float): share of joined faces that makes two touching particles candidates.
    """
    n_ids = sizes.size
    pairs, faces, joined = _sum_by_key(*(np.concatenate(part) for part in zip(*votes)))
    candidate = joined >= min_join_fraction * faces
    low, high, joined = pairs[candidate] >> 32, pairs[candidate] & 0xFFFFFFFF, joined[candidate]
    low_is_smaller = sizes[low] <= sizes[high]
    small, large = np.where(low_is_smaller, low, high), np.where(low_is_smaller, high, low)
    order = np.lexsort((large, -joined, small))  # per smaller particle: most joined faces first, then smallest id
    _, first = np.unique(small[order], return_index=True)
    best = order[first]
    graph = coo_matrix((np.ones(best.size, np.int8), (small[best], large[best])), shape=(n_ids, n_ids))
    _, group = connected_components(graph, directed=False)
    smallest = np.full(group.max() + 1, n_ids, np.int64)
    np.minimum.at(smallest, group, np.arange(n_ids))
    return smallest[group]


def _block_face_edges(read_views, read_core, continuity, z_start, offset_above, offset):
    """The joins along z across the top face of a block starting at slice ``z_start`` > 0 (step 3): (E, 2) int64
    pairs of global seed ids, slice ``z_start - 1`` (provisional ids of the block above + ``offset_above``) and
    slice ``z_start`` (this block's + ``offset``)."""
    window = read_views(z_start - 1, z_start + 1)
    ids = read_core(z_start - 1, z_start + 1).astype(np.int64)
    joined = _joins(window, ids > 0, 0, continuity, z_start - 1)[0]
    return np.unique(np.stack([ids[0][joined] + offset_above, ids[1][joined] + offset], axis=1), axis=0)


def _seed_particles(read_views, shape, write_core, read_core, slab, continuity, ranks):
    """Steps 2-3 over every rank's block: seeds labelled slab by slab with block-local provisional ids, joined
    within a block through the carried slice and across block faces, as one graph solved on every rank; each rank
    then rewrites its block of ``core`` with the seed particle ids 1..K (in order of the particles' first seed
    voxel). Returns K."""
    depth = shape[0]
    z_start, z_stop = ranks.block(depth, slab)
    next_id, edges, carried_ids, carried_seeds = 1, [], None, None
    for z0 in range(z_start, z_stop, slab):
        z1 = min(z0 + slab, depth)
        padded = _padded_window(read_views, z0, z1, depth)
        seeds = seed_mask(padded)
        if carried_ids is None:
            ids, _, next_id = core_components({name: labels[1:-1] for name, labels in padded.items()}, seeds, None,
                                              next_id, continuity, z0)
        else:  # the halo slice above is the carried slice z0 - 1
            ids, slab_edges, next_id = core_components({name: labels[:-1] for name, labels in padded.items()},
                                                       np.concatenate([carried_seeds[None], seeds]), carried_ids,
                                                       next_id, continuity, z0 - 1)
            ids = ids[1:]
            edges.append(slab_edges)
        write_core(z0, ids)
        carried_ids, carried_seeds = ids[-1], seeds[-1]
    offsets = ranks.id_offsets(next_id - 1)  # also the barrier: every block's core is written
    edges = [np.concatenate(edges) + offsets[ranks.rank]] if edges else []
    if 0 < z_start < z_stop:
        edges.append(_block_face_edges(read_views, read_core, continuity, z_start,
                                       offsets[ranks.rank_above(depth, slab)], offsets[ranks.rank]))
    all_edges = [e for rank_edges in ranks.gather(edges) for e in rank_edges]
    group = connected_groups(int(offsets[-1]) + 1, np.concatenate(all_edges or [np.zeros((0, 2), np.int64)]))
    for z0 in range(z_start, z_stop, slab):
        local = read_core(z0, min(z0 + slab, depth)).astype(np.int64)
        write_core(z0, group[np.where(local > 0, local + offsets[ranks.rank], 0)].astype(np.uint32))
    ranks.barrier()  # the next pass reads the halo slices of other blocks
    return int(group.max(initial=0))


def fuse_slabs(read_views, shape, write_core, read_core, write_fused, read_fused, slab=8,
               grow_voxels=DEFAULT_GROW_VOXELS, min_votes=None, min_join_fraction=DEFAULT_MIN_JOIN_FRACTION,
               min_overlap=DEFAULT_MIN_OVERLAP, ranks=None):
    """Streaming fusion: the steps of the module docstring over z-slabs, through caller-supplied storage, on one
    process or spread over ranks (each fuses its z-block, :mod:`~libnet_mmdet.volume.blocks`).

    Args:
        read_views (callable): ``read_views(z0, z1)`` -> dict view name -> (z1 - z0, Y, X) labels.
        shape (tuple): (Z, Y, X).
        write_core, read_core (callable): store / load provisional seed ids: ``write_core(z0, ids)``,
            ``read_core(z0, z1)`` -> (z1 - z0, Y, X) uint32.
        write_fused, read_fused (callable): store / load the fused ids (written twice: grown, then merged by the
            section vote; the second write holds the final, unfiltered ids).
        slab (int): slices per slab.
        grow_voxels (int): growth distance (voxels).
        min_votes (int | None): votes for the majority foreground (default: more than half of the views).
        min_join_fraction (float): share of joined contact faces that makes two touching particles candidates.
        min_overlap (float): in (0, 1]; the overlap coefficient at which 2D instances of consecutive slices of a
            view continue each other.
        ranks (Ranks | None): the processes sharing the work (every one calls this with storage they all see; each
            writes its own z-block, :func:`~libnet_mmdet.volume.blocks.z_block`); None: this process alone.

    Returns:
        np.ndarray: int64 voxel count of each written id (index = id), the same on every rank.
    """
    check_int(grow_voxels, 'grow_voxels', 0)
    check_number(min_join_fraction, 'min_join_fraction', high=1, low_open=True)
    check_number(min_overlap, 'min_overlap', high=1, low_open=True)
    ranks = ranks or Ranks()
    depth = shape[0]
    my_slabs = range(*ranks.block(depth, slab), slab)
    continuity = _continuity(read_views, shape, slab, min_overlap, ranks)
    min_votes = default_min_votes(len(continuity)) if min_votes is None else min_votes
    if not 1 <= min_votes <= len(continuity):
        raise ValueError(f'min_votes must be between 1 and the number of views ({len(continuity)}), got '
                         f'{min_votes!r}')
    n_particles = _seed_particles(read_views, shape, write_core, read_core, slab, continuity, ranks)
    index_bits = int(max(shape)).bit_length()
    if index_bits + int(n_particles + 1).bit_length() + _ID_BITS > 63:
        raise ValueError(f'fuse_views: too many seed particles ({n_particles}) for a volume of shape {tuple(shape)}')
    sizes, sections = np.zeros(n_particles + 1, np.int64), {}
    for z0 in my_slabs:
        z1 = min(z0 + slab, depth)
        h0, h1 = max(z0 - grow_voxels, 0), min(z1 + grow_voxels, depth)
        views = read_views(h0, h1)
        core = read_core(h0, h1)
        grown = expand_labels(core, distance=grow_voxels) if grow_voxels > 0 else core
        grown[~majority_foreground(views, min_votes)] = 0  # core voxels are in it: all views vote
        grown = grown[z0 - h0:z1 - h0].astype(np.uint32)
        write_fused(z0, grown)
        sizes += np.bincount(grown.ravel(), minlength=sizes.size)
        block = _section_counts(grown, {name: labels[z0 - h0:z1 - h0] for name, labels in views.items()}, z0,
                                index_bits)
        for name, counts in block.items():
            sections.setdefault(name, []).append(counts)
    # the block's particles need the totals of all their sections (also those a view labels only in other
    # blocks), and the votes on its top face those of the particles in the slice above it
    needed = np.flatnonzero(sizes[1:]) + 1
    sizes = np.sum(ranks.gather(sizes), axis=0)  # also the barrier: every block's grown ids are written
    z_start, z_stop = ranks.block(depth, slab)
    if 0 < z_start < z_stop:
        needed = np.union1d(needed, read_fused(z_start - 1, z_start))
    dominant = {}
    for name in continuity:
        keys, counts = _sum_parts(sections.get(name, []) + [(np.zeros(0, np.int64), np.zeros(0))])
        keys, counts = ranks.sum_tables(f'sections_{name}', keys, counts, needed=needed.astype(np.int64),
                                        shift=_ID_BITS + index_bits)
        dominant[name] = dominant_ids([(keys, counts)])
    votes = []
    for z0 in my_slabs:
        h0 = max(z0 - 1, 0)  # one slice above the slab too: its z faces to the slab
        votes.append(_contact_votes(read_fused(h0, min(z0 + slab, depth)), dominant, index_bits, h0, z0 > 0))
    # the gather also waits until every block's grown ids are read before they are replaced
    votes = [vote for rank_votes in ranks.gather(votes) for vote in rank_votes]
    lut = vote_lut(sizes, votes, min_join_fraction).astype(np.uint32)
    sizes = np.zeros(n_particles + 1, np.int64)
    for z0 in my_slabs:
        merged = lut[read_fused(z0, min(z0 + slab, depth))]
        sizes += np.bincount(merged.ravel(), minlength=sizes.size)
        write_fused(z0, merged)
    return np.sum(ranks.gather(sizes), axis=0)


def fuse_views(labels_xy=None, labels_xz=None, labels_yz=None, grow_voxels=DEFAULT_GROW_VOXELS, min_votes=None,
               min_voxels=0, slab=8, min_join_fraction=DEFAULT_MIN_JOIN_FRACTION, min_overlap=DEFAULT_MIN_OVERLAP):
    """3D instances from the 2D instance segmentations of two or three views (see the module docstring).

    Args:
        labels_xy, labels_xz, labels_yz (np.ndarray | None): (Z, Y, X) integer arrays of 2D instance ids per
            slice of that view (array-likes such as ``np.memmap`` work and are read slab by slab); give at least
            two.
        grow_voxels (int): how far (voxels) the majority foreground is assigned to the nearest core particle.
        min_votes (int | None): views needed for a voxel to be foreground (default: more than half).
        min_join_fraction (float): share of the contact faces between two grown particles that must be joined
            for them to be candidates to be one particle.
        min_overlap (float): in (0, 1]; the overlap coefficient at which 2D instances of consecutive slices of a
            view continue each other (as in linking).
        min_voxels (int): particles smaller than this, and pieces of larger particles, are merged into the particle
            they touch most, or removed when they touch none (:func:`~libnet_mmdet.volume.labels.merge_small_lut`;
            0 or 1: nothing merged).
        slab (int): z-slices processed at a time.

    Returns:
        np.ndarray: (Z, Y, X) 3D instance labels 1..N (in order of first voxel), uint16 or uint32.

    Raises:
        ValueError: fewer than two views, views of different shapes, or a setting out of its range (InputError,
            named; before any view is read).
        TypeError: a view whose labels are not of an integer dtype.
    """
    views = check_views(dict(xy=labels_xy, xz=labels_xz, yz=labels_yz))
    for name, array in views.items():
        if isinstance(array, np.ndarray):
            check_labels(array, f'labels_{name}', ndim=(3,), allow_empty=True)
    check_int(slab, 'slab', 1)
    check_int(min_voxels, 'min_voxels', 0)  # a number here: segment_volume resolves 'auto'
    if min_votes is not None and check_int(min_votes, 'min_votes', 1) > len(views):
        raise ValueError(f'min_votes must be between 1 and the number of views ({len(views)}), got {min_votes!r}')
    shape = next(iter(views.values())).shape
    core_store = np.zeros(shape, np.uint32)
    fused = np.zeros(shape, np.uint32)

    def read_views(z0, z1):
        return {name: np.asarray(array[z0:z1]) for name, array in views.items()}

    def write_core(z0, ids):
        core_store[z0:z0 + len(ids)] = ids

    def write_fused(z0, ids):
        fused[z0:z0 + len(ids)] = ids

    sizes = fuse_slabs(read_views, shape, write_core, lambda z0, z1: core_store[z0:z1], write_fused,
                       lambda z0, z1: fused[z0:z1], slab=slab, grow_voxels=grow_voxels, min_votes=min_votes,
                       min_join_fraction=min_join_fraction, min_overlap=min_overlap)
    lut, n_particles = merge_small_lut(sizes, [fused], min_voxels)
    labels, _ = renumber_by_first_voxel(lut[fused])  # growth can reach above a particle's first seed
    return labels.astype(label_dtype(n_particles), copy=False)
