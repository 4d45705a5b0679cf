"""Tiled instance segmentation of slices larger than the model's training size (works on label images).

The slice is cut into square tiles of ``tile_size`` pixels that overlap by at least ``overlap`` pixels (the last
tile of a row or column is shifted back to end at the image border). A predictor segments each tile into an
instance label image; the tile results are merged in two steps:

1. **Centre ownership.** Along each axis every point has an *owner* tile: the tile in which the point is farthest
   from a tile border that is not an image border. An instance found in a tile is kept only if its bounding-box
   centre is owned by that tile, within ``OWNER_TOLERANCE_PX`` (2 px) of the owner's margin: near the midline of
   an overlap both tiles keep it, since each tile's mask of a particle may differ by a pixel and move its centre
   to the other side (step 2 joins the two copies). The owner's margin is at least ``overlap / 2``, so an
   instance no larger than ``overlap - 4`` px whose centre a tile owns lies entirely inside that tile, and such a
   piece of an instance cut by a tile border is never owned by its tile. Hence every instance up to that size is
   kept whole, from the tile where it is most central (and a copy from its neighbour near their midline, joined):
   the result equals untiled segmentation by a predictor that only looks at each instance's neighbourhood.
2. **Seam merge.** Larger instances may be cut in every tile, and their pieces kept by different tiles. Two kept
   instances of overlapping tiles are merged when their masks agree in the region both tiles saw (IoU over that
   region >= ``merge_iou``); touching but different instances overlap little there and stay apart.

Kept instances are painted in increasing score order, so where masks overlap the higher score wins. Choose
``overlap`` >= the largest particle diameter (pixels) for exact results.

Segmentations of one image at several scales are merged differently (:func:`merge_segmentations`): the same
particle is found whole at more than one scale, so an instance mostly covered by a higher-scoring one is a
duplicate and is dropped, not joined; and a higher-scoring instance of another scale lying inside one that is kept
is a piece of that particle (the core of a cracked particle seen at a finer scale), joined to it.
"""
import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..io.errors import InputError, check_int, check_number
from ..io.labels import label_dtype, renumber_by_first_voxel
from .labels import overlap_pairs

DEFAULT_MERGE_IOU = 0.5
#: A tile also keeps an instance whose box centre lies this close to the part of the overlap it owns: two tiles'
#: masks of one particle can differ by a pixel, moving its centre across the owners' midline in both directions
#: (then neither kept it); an instance kept by both is joined by the seam merge.
OWNER_TOLERANCE_PX = 2
DEFAULT_MAX_COVERED = 0.5  #: :func:`merge_segmentations` drops an instance more than half taken
DEFAULT_MIN_INSIDE = 0.9  #: ... and joins to a kept instance the pieces of other scales that lie this much inside it


def check_tiling(tile_size, overlap):
    """Raise :class:`~libnet_mmdet.io.InputError` (a ValueError) unless 0 <= overlap < tile_size (integers)."""
    check_int(tile_size, 'tile_size', 1)
    if check_int(overlap, 'overlap', 0) >= tile_size:
        raise InputError(f'overlap must be an integer in [0, tile_size={tile_size}), got {overlap!r}')


def tile_starts(length, tile_size, overlap):
    """Start offsets of the tiles along an axis of ``length`` pixels; neighbours overlap by >= ``overlap``."""
    check_tiling(tile_size, overlap)
    if length <= tile_size:
        return [0]
    return list(range(0, length - tile_size, tile_size - overlap)) + [length - tile_size]


def tile_windows(shape_hw, tile_size, overlap):
    """The tiles of an (H, W) image as ``(slice_y, slice_x)`` windows, row by row."""
    height, width = shape_hw
    return [(slice(y, min(y + tile_size, height)), slice(x, min(x + tile_size, width)))
            for y in tile_starts(height, tile_size, overlap) for x in tile_starts(width, tile_size, overlap)]


def _owns_along_axis(centres, starts, tile_size, length, tile_start):
    """Whether the tile starting at ``tile_start`` owns each coordinate in ``centres`` along one axis, within
    ``OWNER_TOLERANCE_PX`` of the owner's margin."""
    starts = np.asarray(starts, np.float64)[None, :]
    ends = np.minimum(starts + tile_size, length)
    centres = np.asarray(centres, np.float64)[:, None]
    low = np.where(starts > 0, centres - starts, np.inf)
    high = np.where(ends < length, ends - centres, np.inf)
    margin = np.where((centres >= starts) & (centres <= ends), np.minimum(low, high), -np.inf)
    own = margin[:, list(starts[0]).index(tile_start)]
    return (own > -np.inf) & (own >= margin.max(axis=1) - OWNER_TOLERANCE_PX)


def owned_instances(labels_tile, window, shape_hw, tile_size, overlap):
    """The instances of one tile whose bounding-box centre that tile owns (step 1 of the module docstring).

    Args:
        labels_tile (np.ndarray): (h, w) integer labels of the tile, 0 = background.
        window (tuple): the tile's ``(slice_y, slice_x)`` in the slice.
        shape_hw (tuple): (H, W) of the slice.
        tile_size, overlap (int): the tiling's tile edge and overlap (pixels).

    Returns:
        tuple: ``(ids, boxes)``: int64 ids and, for each, its ``(slice_y, slice_x)`` box in tile coordinates.
    """
    boxes = ndimage.find_objects(labels_tile)
    ids = np.array([i + 1 for i, box in enumerate(boxes) if box is not None], np.int64)
    boxes = [boxes[i - 1] for i in ids]
    owned = np.ones(ids.size, bool)
    for axis in (0, 1):
        starts = tile_starts(shape_hw[axis], tile_size, overlap)
        centres = np.array([(box[axis].start + box[axis].stop) / 2 for box in boxes]) + window[axis].start
        owned &= _owns_along_axis(centres.reshape(-1), starts, tile_size, shape_hw[axis], window[axis].start)
    return ids[owned], [box for box, own in zip(boxes, owned) if own]


def _shared_window(a, b):
    """The intersection of two (slice_y, slice_x) windows, or None."""
    y0, y1 = max(a[0].start, b[0].start), min(a[0].stop, b[0].stop)
    x0, x1 = max(a[1].start, b[1].start), min(a[1].stop, b[1].stop)
    return (slice(y0, y1), slice(x0, x1)) if y0 < y1 and x0 < x1 else None


def _local(window, inside):
    """``window`` (global slices) expressed in the coordinates of the tile ``inside``."""
    return tuple(slice(w.start - i.start, w.stop - i.start) for w, i in zip(window, inside))


def merge_tiles(shape_hw, windows, tile_results, tile_size, overlap, merge_iou=DEFAULT_MERGE_IOU):
    """Merge per-tile instance segmentations into one (steps 1 and 2 of the module docstring).

    Args:
        shape_hw (tuple): (H, W) of the whole image.
        windows (list): the tiles' ``(slice_y, slice_x)`` windows (from :func:`tile_windows`).
        tile_results (list): per tile, ``(labels_tile, scores)``: integer (h, w) labels 1..n of the tile and
            float (n,) scores (``scores[k - 1]`` belongs to label k).
        tile_size, overlap (int): the tiling the windows were made with.
        merge_iou (float): IoU over the shared region above which instances of two tiles are one.

    Returns:
        tuple: ``(labels_hw, scores)``: uint16/uint32 labels 1..N and float32 (N,) scores (max over merged
        pieces), ids in no particular order (see :func:`order_by_score`).
    """
    n_ids, luts, painting = 1, [], []  # provisional ids 1, 2, ... of the kept instances of every tile
    for window, (labels_tile, scores) in zip(windows, tile_results):
        kept, boxes = owned_instances(labels_tile, window, shape_hw, tile_size, overlap)
        lut = np.zeros(int(labels_tile.max(initial=0)) + 1, np.int64)
        lut[kept] = np.arange(n_ids, n_ids + kept.size)
        n_ids += kept.size
        luts.append(lut)
        for k, box in zip(kept.tolist(), boxes):
            target = tuple(slice(b.start + w.start, b.stop + w.start) for b, w in zip(box, window))
            painting.append((float(scores[k - 1]), int(lut[k]), target, labels_tile[box] == k))
    id_scores = np.zeros(n_ids, np.float64)
    labels = np.zeros(shape_hw, np.int64)
    for score, global_id, target, mask in sorted(painting, key=lambda item: item[:2]):
        id_scores[global_id] = score
        labels[target][mask] = global_id
    merged = [np.zeros((0, 2), np.int64)]  # pairs of provisional ids that are one instance
    for i, j in ((i, j) for i in range(len(windows)) for j in range(i + 1, len(windows))):
        shared = _shared_window(windows[i], windows[j])
        if shared is None:
            continue
        ids_i = luts[i][tile_results[i][0][_local(shared, windows[i])]]
        ids_j = luts[j][tile_results[j][0][_local(shared, windows[j])]]
        gi, gj, intersection, area_i, area_j = overlap_pairs(ids_i, ids_j)
        same = intersection >= merge_iou * (area_i + area_j - intersection)
        merged.append(np.stack([gi[same], gj[same]], axis=1))
    merged = np.concatenate(merged)
    graph = coo_matrix((np.ones(len(merged), np.int8), (merged[:, 0], merged[:, 1])), shape=(n_ids, n_ids))
    n_groups, group = connected_components(graph, directed=False)  # 0: the background; then by smallest member
    group_scores = np.zeros(n_groups)
    np.maximum.at(group_scores, group, id_scores)
    labels = group[labels]
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=group_scores.size)[1:]) + 1
    compact = np.zeros(group_scores.size, np.int64)
    compact[present] = np.arange(1, present.size + 1)
    return compact[labels].astype(label_dtype(present.size)), group_scores[present].astype(np.float32)


def _pixels_inside(box, mask, outer_box, outer_mask):
    """How many pixels of the mask ``mask`` at ``box`` (a tuple of slices) lie in ``outer_mask`` at ``outer_box``."""
    common = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(box, outer_box))
    if any(part.start >= part.stop for part in common):
        return 0
    inner = mask[tuple(slice(c.start - a.start, c.stop - a.start) for c, a in zip(common, box))]
    outer = outer_mask[tuple(slice(c.start - b.start, c.stop - b.start) for c, b in zip(common, outer_box))]
    return int(np.count_nonzero(inner & outer))


def merge_segmentations(results, max_covered=DEFAULT_MAX_COVERED, min_inside=DEFAULT_MIN_INSIDE):
    """Merge instance segmentations of one image (e.g. at several scales) into one.

    The instances of all ``results`` form one list by decreasing score (ties: the earlier result first). Each is
    painted on the pixels that no higher-scoring instance took, unless more than ``max_covered`` of its pixels
    are taken already: then it duplicates (or is a fragment of) a higher-scoring instance and is dropped. When an
    instance is kept, every instance already kept from *another* result whose mask lies at least ``min_inside``
    inside its mask is joined to it: a piece of the same particle (a cracked particle's core found at a finer
    scale, which would otherwise leave the particle as an arc around it). Instances of one result never overlap,
    so a single segmentation comes back as it was.

    Args:
        results (list): ``(labels_hw, scores)`` per segmentation: (H, W) integer labels 1..n, all of one shape,
            and float (n,) scores (``scores[k - 1]`` belongs to label k).
        max_covered (float): drop an instance when more than this fraction of its pixels is taken.
        min_inside (float): join to a kept instance the pieces of other results at least this fraction inside it.

    Returns:
        tuple: ``(labels_hw, scores)``: uint16/uint32 labels 1..N by decreasing score and float32 (N,) scores
        (see :func:`order_by_score` for boxes).
    """
    instances = []
    for index, (labels, scores) in enumerate(results):
        labels = np.asarray(labels)
        for k, box in enumerate(ndimage.find_objects(labels), start=1):
            if box is not None:
                instances.append((float(scores[k - 1]), index, box, labels[box] == k))
    instances.sort(key=lambda instance: -instance[0])  # stable: ties keep the order of results
    merged, kept = np.zeros(np.shape(results[0][0]), np.int64), []
    for instance in instances:
        _, index, box, mask = instance
        free = mask & (merged[box] == 0)
        if mask.sum() - free.sum() > max_covered * mask.sum():
            continue
        kept.append(instance)
        merged[box][free] = len(kept)
        for other in np.unique(merged[box][mask & ~free]):
            _, other_index, other_box, other_mask = kept[other - 1]
            if other_index != index and (_pixels_inside(other_box, other_mask, box, mask)
                                         >= min_inside * np.count_nonzero(other_mask)):
                merged[merged == other] = len(kept)
    ids = np.unique(merged[merged > 0])  # the joined pieces' ids are gone: renumber, keeping the score order
    lut = np.zeros(len(kept) + 1, np.int64)
    lut[ids] = np.arange(1, ids.size + 1)
    return (lut[merged].astype(label_dtype(ids.size)),
            np.array([kept[k - 1][0] for k in ids], np.float32).reshape(-1))


def order_by_score(labels_hw, scores):
    """Renumber instances 1..N by decreasing score (ties: raster order of the first pixel); drop ids without
    pixels.

    Args:
        labels_hw (np.ndarray): (H, W) integer labels, 0 = background.
        scores (np.ndarray): (K,) scores, ``scores[k - 1]`` that of label k.

    Returns:
        tuple: ``(labels_hw, scores, boxes)``: labels uint16/uint32, scores float32 (N,), boxes float32 (N, 4)
        ``x0, y0, x1, y1`` (pixel edges: x1, y1 are one past the last pixel) of each instance's mask.
    """
    by_first_pixel, present = renumber_by_first_voxel(labels_hw)
    order = np.argsort(-np.asarray(scores, np.float64)[present - 1], kind='stable')  # ties: first pixel first
    lut = np.zeros(present.size + 1, label_dtype(present.size))
    lut[order + 1] = np.arange(1, present.size + 1)
    labels = lut[by_first_pixel]
    boxes = np.array([(b[1].start, b[0].start, b[1].stop, b[0].stop) for b in ndimage.find_objects(labels)],
                     np.float32).reshape(-1, 4)
    return labels, np.asarray(scores, np.float32)[present[order] - 1], boxes


def segment_tiled(image, predict, tile_size, overlap, merge_iou=DEFAULT_MERGE_IOU):
    """Segment an image tile by tile and merge (see the module docstring).

    Args:
        image (np.ndarray): (H, W) or (H, W, C) array; tiles are cut along the first two axes.
        predict (callable): ``predict(list of tiles) -> list of (labels_tile, scores)``.
        tile_size, overlap (int): tile edge and least overlap (pixels).
        merge_iou (float): see :func:`merge_tiles`.

    Returns:
        tuple: ``(labels_hw, scores)`` as :func:`merge_tiles` returns them.

    Raises:
        InputError: ``merge_iou`` outside (0, 1], or a tiling :func:`check_tiling` refuses; before any tile is
            predicted.
    """
    check_number(merge_iou, 'merge_iou', high=1, low_open=True)  # checked before any tile is predicted
    windows = tile_windows(image.shape[:2], tile_size, overlap)
    results = predict([image[window] for window in windows])
    return merge_tiles(image.shape[:2], windows, results, tile_size, overlap, merge_iou)
