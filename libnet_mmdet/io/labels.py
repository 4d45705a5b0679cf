"""Instance label arrays (0 = background, 1..N = instances): checks, compaction, dtype and a union-find over ids.

Imports nothing else of the project, so every stage (tiling, linking, fusion, statistics, evaluation) can use it.
Every check raises one exception whose message starts with ``name`` (an argument name such as ``labels_zyx`` or a
file path), so that a bad input is reported where it came from.
"""
import numpy as np

# Instance ids above this are compacted to 1..N before bincount/find_objects (which allocate max id + 1 entries).
MAX_DIRECT_LABEL = 2**24


def check_labels(labels, name='labels_zyx', ndim=(3,), allow_empty=False):
    """Check an instance label array (0 = background, 1..N = instances) and return it as a numpy array.

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


def compact_labels(labels):
    """Map the instance ids of ``labels`` to 1..N when the largest id is too large to index arrays with.

    Returns:
        tuple: ``(labels_compact, original_ids)``, where ``original_ids[k - 1]`` is the input id of compact id
        ``k``; when the ids are already small the input is returned unchanged with ``original_ids=None``.
    """
    if int(labels.max()) <= MAX_DIRECT_LABEL:
        return labels, None
    ids, inverse = np.unique(labels, return_inverse=True)
    if ids[0] != 0:  # no background voxel: shift so that the first id becomes 1
        inverse = inverse + 1
        ids = np.concatenate([[0], ids])
    dtype = np.uint32 if ids.size <= np.iinfo(np.uint32).max else np.uint64
    return inverse.reshape(labels.shape).astype(dtype), ids[1:]


def label_dtype(n_labels):
    """The smallest label dtype for ``n_labels`` instances: uint16 up to 65535, else uint32."""
    return np.dtype(np.uint16) if n_labels <= np.iinfo(np.uint16).max else np.dtype(np.uint32)


class UnionFind:
    """Union-find over provisional ids 1, 2, ...; the representative of a set is its smallest id."""

    def __init__(self):
        self.parent = np.zeros(1024, np.int64)
        self.size = 1  # ids 1..size-1 exist; 0 is background

    def add(self, n):
        """Make ``n`` new singleton ids; return the first."""
        first = self.size
        if first + n > self.parent.size:
            self.parent = np.resize(self.parent, max(2 * self.parent.size, first + n))
        self.parent[first:first + n] = np.arange(first, first + n)
        self.size += n
        return first

    def find(self, i):
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, ids):
        """Unite the sets of ``ids``; return the representative."""
        roots = {self.find(i) for i in ids}
        root = min(roots)
        for other in roots:
            self.parent[other] = root
        return root

    def roots(self):
        """Representative of every id (int64 array indexed by id; 0 maps to 0)."""
        roots = self.parent[:self.size].copy()
        while True:
            parents = roots[roots]
            if np.array_equal(parents, roots):
                return roots
            roots = parents
