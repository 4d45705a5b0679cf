"""Input checks shared by the analysis and evaluation functions and the command-line tools.

Every check raises one exception whose message starts with ``name`` (an argument name such as ``labels_zyx`` or a
file path), so that a bad input is reported where it came from.
"""
import numbers

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


def voxel_size_zyx(voxel_size_nm, name='voxel_size_nm'):
    """Return the voxel size as a float64 array ``(sz, sy, sx)`` in nm.

    Args:
        voxel_size_nm (float | sequence[float]): one edge length for cubic voxels (a number or a one-element
            sequence), or three (Z, Y, X) lengths, in nm.
    """
    if isinstance(voxel_size_nm, numbers.Real):
        sizes = np.full(3, float(voxel_size_nm))
    else:
        sizes = np.asarray(voxel_size_nm, dtype=np.float64).ravel()
        if sizes.size == 1:
            sizes = np.repeat(sizes, 3)
        elif sizes.size != 3:
            raise ValueError(f'{name}: expected one value or three (Z, Y, X) values in nm, got {voxel_size_nm!r}')
    if not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
        raise ValueError(f'{name}: voxel sizes must be finite and > 0 nm, got {voxel_size_nm!r}')
    return sizes


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
