"""Assembling 2D slice instances into 3D particles by linking neighbouring slices (one-to-one overlap matching).

Use linking when only one view is segmented (the fast path: one model pass over the volume). Each 2D instance of
slice k+1 is matched to at most one instance of slice k and vice versa: the candidate pairs are those whose
overlap coefficient ``|A ∩ B| / min(|A|, |B|)`` is at least ``min_overlap`` (the overlap coefficient, not the
IoU, so that the small caps at the top and bottom of a particle stay linked to it), and among them the one-to-one
assignment maximising the summed IoU is taken (Hungarian algorithm on each group of competing pairs). Matched
instances continue a 3D particle; unmatched instances of slice k+1 start a new particle and unmatched particles
of slice k end. The one-to-one rule keeps touching neighbours apart and lets particles start and end anywhere in
the stack.

Limits (use view fusion, :mod:`libnet_mmdet.volume.fusion`, when they matter): two particles stacked along the
slicing axis and touching at their poles are merged (nothing in the slices separates them); a particle that
splits into two pieces in one slice (a concave particle) continues as one piece and the other piece starts a new
particle; a particle missed in one slice is cut in two.

New ids are given in the order of the particles' first voxel in a (Z, Y, X) scan, so the result does not depend
on how the stack is cut into slabs.
"""
import numpy as np

from ..io.errors import check_number
from ..io.labels import check_labels, label_dtype, renumber_by_first_voxel
from .labels import one_to_one, overlap_pairs

DEFAULT_MIN_OVERLAP = 0.5


def link_next_slice(previous_hw, current_hw, next_id, min_overlap=DEFAULT_MIN_OVERLAP):
    """Give the 2D instances of one slice the 3D ids of the previous slice's particles they continue.

    Args:
        previous_hw (np.ndarray | None): (H, W) 3D particle ids of the previous slice (0 = background), or None
            for the first slice.
        current_hw (np.ndarray): (H, W) 2D instance labels of this slice (any ids, 0 = background).
        next_id (int): the first unused 3D id.
        min_overlap (float): in (0, 1]; the least overlap coefficient for a link.

    Returns:
        tuple: ``(linked_hw, next_id)``: (H, W) uint32 3D ids of this slice and the new first unused id.
    """
    check_number(min_overlap, 'min_overlap', high=1, low_open=True)
    compact, ids = renumber_by_first_voxel(current_hw)  # 1..n in the order of the first pixel, 0 = background
    lut = np.zeros(ids.size + 1, np.uint32)
    if previous_hw is not None and ids.size:
        # both slices numbered by first pixel: ties of the assignment do not depend on the 3D ids' values (a block
        # of a run spread over ranks numbers them from its own start)
        previous_compact, previous_ids = renumber_by_first_voxel(previous_hw)
        prev_ranks, cur_ids, intersection, prev_area, cur_area = overlap_pairs(previous_compact, compact)
        candidate = intersection >= min_overlap * np.minimum(prev_area, cur_area)
        iou = intersection / (prev_area + cur_area - intersection)
        chosen = one_to_one(prev_ranks[candidate], cur_ids[candidate], iou[candidate])
        lut[cur_ids[candidate][chosen]] = previous_ids[prev_ranks[candidate][chosen] - 1]
    unmatched = np.flatnonzero(lut == 0)[1:]  # in the order of their first pixel, as the compact ids are
    lut[unmatched] = np.arange(next_id, next_id + unmatched.size)
    return lut[compact], next_id + unmatched.size


def iter_link_slices(slices_hw, min_overlap=DEFAULT_MIN_OVERLAP, next_id=1):
    """Link an iterable of 2D instance label slices lazily; yields the (H, W) uint32 3D ids of each slice.

    Only the previous slice is kept in memory, so a stack of any length can be linked slab by slab.
    """
    previous = None
    for current in slices_hw:
        previous, next_id = link_next_slice(previous, np.asarray(current), next_id, min_overlap)
        yield previous


def link_slabs(read_slab, write_slab, length, slab=16, min_overlap=DEFAULT_MIN_OVERLAP, block=None):
    """Streaming linking through caller-supplied storage: 2D labels are read and 3D ids written slab by slab
    along the slicing axis, one slice carried between slabs (the counterpart of
    :func:`~libnet_mmdet.volume.fusion.fuse_slabs`).

    Args:
        read_slab (callable): ``read_slab(start, stop)`` -> (stop - start, h, w) 2D instance labels of those
            slices (ids need not agree between slices; 0 = background).
        write_slab (callable): ``write_slab(start, ids)`` stores (n, h, w) uint32 3D ids of slices ``start:``.
        length (int): number of slices.
        slab (int): slices read and written at a time.
        min_overlap (float): in (0, 1]; as for :func:`link_slices`.
        block (tuple | None): ``(start, stop)``: link only these slices (a block of a run spread over processes,
            :mod:`~libnet_mmdet.volume.blocks`; ``start`` a multiple of ``slab``), with ids 1, 2, ... of their own;
            :func:`block_face_links` joins the blocks. None: every slice.

    Returns:
        np.ndarray: int64 voxel count of each written id (index = id).
    """
    block_start, block_stop = block or (0, length)
    starts = range(block_start, block_stop, slab)
    linked_slices = iter_link_slices((current for start in starts
                                      for current in read_slab(start, min(start + slab, block_stop))), min_overlap)
    sizes = np.zeros(1, np.int64)
    for start in starts:
        linked = np.stack([next(linked_slices) for _ in range(start, min(start + slab, block_stop))])
        write_slab(start, linked)
        counts = np.bincount(linked.ravel())
        sizes = np.pad(sizes, (0, max(counts.size - sizes.size, 0)))
        sizes[:counts.size] += counts
    return sizes


def block_face_links(above_ids_hw, labels_hw, ids_hw, min_overlap=DEFAULT_MIN_OVERLAP):
    """The links across the face between two blocks linked apart (:func:`link_slabs` with ``block``): exactly
    the links one pass over every slice would make there.

    Args:
        above_ids_hw (np.ndarray): (H, W) 3D ids of the last slice of the block before the face.
        labels_hw (np.ndarray): (H, W) 2D instance labels of the first slice after the face.
        ids_hw (np.ndarray): (H, W) 3D ids of that slice in its own block.

    Returns:
        np.ndarray: (K, 2) int64 pairs ``(id above, id below)`` of the particles that continue across the face.
    """
    above_ids_hw = np.asarray(above_ids_hw)
    unmatched_from = int(above_ids_hw.max(initial=0)) + 1
    linked_hw, _ = link_next_slice(above_ids_hw, np.asarray(labels_hw), unmatched_from, min_overlap)
    matched = (linked_hw > 0) & (linked_hw < unmatched_from)
    pairs = np.stack([linked_hw[matched].astype(np.int64), np.asarray(ids_hw)[matched].astype(np.int64)], axis=1)
    return np.unique(pairs, axis=0)


def link_slices(labels_per_slice_zyx, min_overlap=DEFAULT_MIN_OVERLAP):
    """3D particles from a stack of independent 2D instance label slices.

    Args:
        labels_per_slice_zyx (np.ndarray): (Z, Y, X) integer array; slice z holds the 2D instance labels of xy
            slice z (ids need not agree between slices; 0 = background).
        min_overlap (float): in (0, 1]; two instances of neighbouring slices can be linked when their overlap
            covers at least this fraction of the smaller one (see the module docstring).

    Returns:
        np.ndarray: (Z, Y, X) 3D instance labels 1..N in order of first appearance, uint16 when N <= 65535 else
        uint32.

    Raises:
        TypeError / ValueError: labels that are not a 3D integer array of values >= 0
            (:func:`~libnet_mmdet.io.check_labels`); ``min_overlap`` outside (0, 1] (InputError).
    """
    labels = check_labels(labels_per_slice_zyx, 'labels_per_slice_zyx', ndim=(3,), allow_empty=True)
    linked = np.empty(labels.shape, np.uint32)
    for z, linked_hw in enumerate(iter_link_slices(labels, min_overlap)):
        linked[z] = linked_hw
    return linked.astype(label_dtype(int(linked.max(initial=0))))
