"""Instance label arrays (0 = background, 1..N = instances): checks, renumbering, compaction, dtype, the overlap
table of two label arrays; and the codes of phase volumes.

Imports nothing else of the project, so every stage (tiling, linking, fusion, statistics, evaluation) can use it.
Every check raises one exception whose message starts with ``name`` (an argument name such as ``labels_zyx`` or a
file path), so that a bad input is reported where it came from.
"""
import fastremap
import numpy as np

#: Phase codes of a phase volume (the MATBOX convention): 0 pore, 1 NMC active material, 2 carbon-binder domain.
PORE, NMC, CARBON_BINDER = 0, 1, 2
PHASE_NAMES = {PORE: 'pore', NMC: 'nmc', CARBON_BINDER: 'carbon_binder'}

# Instance ids above this are compacted to 1..N before bincount/find_objects (which allocate max id + 1 entries).
MAX_DIRECT_LABEL = 2**24


def check_labels(labels, name='labels_zyx', ndim=(3,), allow_empty=False):
    """Check an instance label array (0 = background, 1..N = instances) and return it as a numpy array (in native
    byte order).

    Args:
        labels (array-like): integer array, ``ndim`` dimensions ((Z, Y, X) volume or (H, W) slice).
        name (str): argument name or file path used in the error message.
        ndim (tuple[int]): accepted numbers of dimensions.
        allow_empty (bool): accept an array without any instance.

    Raises:
        TypeError: the dtype is not an integer type (bool included).
        ValueError: wrong number of dimensions, a zero-sized axis, negative values, or no instance at all
            (unless ``allow_empty``).
    """
    labels = np.asarray(labels)
    if labels.ndim not in ndim:
        shapes = ' or '.join(f'{n}-D' for n in ndim)
        raise ValueError(f'{name}: expected a {shapes} instance label array, got shape {labels.shape}')
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f'{name}: instance labels must have an integer dtype (0 = background, 1..N), '
                        f'got {labels.dtype}; label a binary mask first (scipy.ndimage.label)')
    if labels.size == 0:
        raise ValueError(f'{name}: empty array of shape {labels.shape}')
    if not labels.dtype.isnative:  # big-endian (read raw from some files): fastremap, used on labels, refuses it
        labels = labels.astype(labels.dtype.newbyteorder('='))
    if np.issubdtype(labels.dtype, np.signedinteger) and labels.min() < 0:
        raise ValueError(f'{name}: instance labels must be >= 0, found {labels.min()}')
    if not allow_empty and not labels.any():
        raise ValueError(f'{name}: no instance in the label array (all voxels are 0)')
    return labels


def check_same_shape(array, reference_shape, name, reference_name):
    """Raise ``ValueError`` naming both inputs when ``array`` does not have ``reference_shape``."""
    if tuple(np.shape(array)) != tuple(reference_shape):
        raise ValueError(f'{name}: shape {tuple(np.shape(array))} does not match {reference_name} '
                         f'shape {tuple(reference_shape)}')


def renumber_by_first_voxel(labels):
    """Number the instances of ``labels`` 1..n in the order of their first pixel/voxel in a C-order (raster) scan;
    0 stays 0 (``fastremap.renumber``).

    Returns:
        tuple: ``(renumbered, ids)``: an array of ``labels``' shape in the smallest unsigned dtype that holds n, and
        the (n,) input ids in the input dtype, ``ids[k - 1]`` being the input id of new id ``k``.
    """
    labels = np.ascontiguousarray(labels)  # fastremap scans in memory order
    renumbered, new_of = fastremap.renumber(labels, preserve_zero=True)
    new_of.pop(0, None)
    ids = np.empty(len(new_of), labels.dtype)
    ids[np.fromiter(new_of.values(), np.int64, len(new_of)) - 1] = np.fromiter(new_of, labels.dtype, len(new_of))
    return renumbered, ids


def compact_labels(labels, always=False):
    """Map the instance ids of ``labels`` to 1..N, in increasing order, when the largest id is too large to index
    arrays with (or ``always``).

    Args:
        labels (np.ndarray): integer labels of any shape ((H, W) or (Z, Y, X)), 0 = background.
        always (bool): compact small ids too: for a caller that keeps several arrays of max id + 1 entries or loops
            over every id up to the largest (sparse ids such as tile offsets below ``MAX_DIRECT_LABEL`` would cost
            gigabytes and a loop over millions of absent ids).

    Returns:
        tuple: ``(labels_compact, original_ids)``: uint32 labels of the same shape (uint64 beyond 2**32 ids) and
        ``original_ids``, where ``original_ids[k - 1]`` is the input id of compact id ``k``; when the ids are
        already small (and not ``always``) the input is returned unchanged with ``original_ids=None``.
    """
    if not always and int(labels.max()) <= MAX_DIRECT_LABEL:
        return labels, None
    renumbered, ids = renumber_by_first_voxel(labels)
    order = np.argsort(ids)
    dtype = np.uint32 if ids.size <= np.iinfo(np.uint32).max else np.uint64
    lut = np.zeros(ids.size + 1, dtype)
    lut[order + 1] = np.arange(1, ids.size + 1)
    return lut[renumbered], ids[order]


def overlap_table(labels_a, labels_b):
    """The sparse contingency table of two label arrays of one shape: every pair of overlapping instances.

    Args:
        labels_a, labels_b (np.ndarray): integer label arrays of the same shape (0 = background, any ids >= 0).

    Returns:
        tuple: ``(ids_a, ids_b, rows, cols, intersection, sizes_a, sizes_b)``: the sorted non-zero ids of each
        array and their sizes (pixels/voxels); for each overlapping pair, in increasing ``(rows, cols)`` order, the
        0-based ranks of its two instances in ``ids_a`` and ``ids_b`` and the size of their intersection (int64).
    """
    a, b = np.ravel(labels_a), np.ravel(labels_b)
    ids_a, sizes_a = _instance_sizes(a)
    ids_b, sizes_b = _instance_sizes(b)
    both = (a != 0) & (b != 0)
    a, b = a[both], b[both]
    span = int(ids_b[-1]) + 1 if ids_b.size else 1
    if (int(ids_a[-1]) if ids_a.size else 0) < np.iinfo(np.int64).max // span:  # one int64 key per pair of ids
        keys, intersection = np.unique(a.astype(np.int64) * span + b.astype(np.int64), return_counts=True)
        pair_a, pair_b = np.divmod(keys, span)
        # in the ids' own dtype: uint64 ids against int64 keys would be compared as float64 (equal above 2**53)
        rows = np.searchsorted(ids_a, pair_a.astype(ids_a.dtype))
        cols = np.searchsorted(ids_b, pair_b.astype(ids_b.dtype))
    else:  # ids too large to combine in one int64: combine their ranks
        keys, intersection = np.unique(np.searchsorted(ids_a, a) * ids_b.size + np.searchsorted(ids_b, b),
                                       return_counts=True)
        rows, cols = np.divmod(keys, max(ids_b.size, 1))
    return ids_a, ids_b, rows, cols, intersection, sizes_a, sizes_b


def _instance_sizes(labels_flat):
    """Sorted non-zero ids of a flat label array and their sizes (int64)."""
    ids, sizes = np.unique(labels_flat, return_counts=True)
    nonzero = ids != 0
    return ids[nonzero], sizes[nonzero].astype(np.int64)


def label_dtype(n_labels):
    """The smallest label dtype for ``n_labels`` instances: uint16 up to 65535, else uint32."""
    return np.dtype(np.uint16) if n_labels <= np.iinfo(np.uint16).max else np.dtype(np.uint32)
