"""Surface contact of every particle with carbon-binder, pore and other particles, from voxel faces."""
import numpy as np

from .phases import CARBON_BINDER, NMC

#: Column order of :func:`surface_contact_counts`.
CONTACT_CLASSES = ('carbon_binder', 'pore', 'particle')
_CB, _PORE, _PARTICLE = range(3)


def surface_contact_counts(labels_zyx, phases_zyx, n_labels, per_axis=False):
    """Count, for every particle, the voxel faces of its surface by what lies on the other side.

    A surface face is a pair of 6-neighbour voxels (p, q) with p in the particle and q not; faces on the volume
    border have no q and are not counted. The outside voxel q is classed as

    - ``particle``: another instance (label of q not 0), or NMC phase without an instance (unsegmented active
      material is solid contact, not detachment);
    - ``carbon_binder``: label 0 and phase carbon-binder;
    - ``pore``: label 0 and phase pore (detachment).

    Faces between voids inside a filled instance mask and the instance are not surface (the label covers them).
    The whole volume is shifted once per axis and the faces are aggregated with :func:`numpy.bincount`, so the
    cost does not grow with the number of particles.

    Args:
        labels_zyx (np.ndarray): (Z, Y, X) integer instance labels, 0 = background, ids <= ``n_labels``.
        phases_zyx (np.ndarray | None): (Z, Y, X) phase volume (0 pore, 1 NMC, 2 carbon-binder); ``None``: only
            the total number of surface faces is meaningful and every non-particle face is counted as pore.
        n_labels (int): largest instance id.
        per_axis (bool): count the faces normal to each axis apart (their areas differ where the voxels are not
            cubes: :func:`surface_contact_areas`).

    Returns:
        np.ndarray: int64 array of shape (n_labels + 1, 3), columns in :data:`CONTACT_CLASSES` order; row k is
        instance k (row 0 unused); with ``per_axis`` (n_labels + 1, ndim, 3), the faces normal to each axis.
    """
    counts = np.zeros((labels_zyx.ndim, (n_labels + 1) * 3), np.int64)
    for axis in range(labels_zyx.ndim):
        lower = tuple(slice(None, -1) if a == axis else slice(None) for a in range(labels_zyx.ndim))
        upper = tuple(slice(1, None) if a == axis else slice(None) for a in range(labels_zyx.ndim))
        differ = labels_zyx[lower] != labels_zyx[upper]
        for own_side, other_side in ((lower, upper), (upper, lower)):
            own = labels_zyx[own_side][differ]
            is_surface = own != 0
            own = own[is_surface].astype(np.int64)
            other = labels_zyx[other_side][differ][is_surface]
            if phases_zyx is None:
                other_phase = np.zeros(other.shape, np.uint8)
            else:
                other_phase = phases_zyx[other_side][differ][is_surface]
            contact = np.full(own.shape, _PORE, np.int64)
            contact[other_phase == CARBON_BINDER] = _CB
            contact[(other != 0) | (other_phase == NMC)] = _PARTICLE
            counts[axis] += np.bincount(own * 3 + contact, minlength=counts.shape[1])
    counts = counts.reshape(labels_zyx.ndim, n_labels + 1, 3).transpose(1, 0, 2)
    return counts if per_axis else counts.sum(axis=1)


def surface_contact_areas(counts_per_axis, voxel_size_zyx):
    """Surface area of every particle by contact class: the face counts of
    :func:`surface_contact_counts` (``per_axis=True``) weighted by the area of a face normal to each axis (a face
    normal to z is ``y x`` voxel edges wide). Where the voxels are cubes, the shares are those of the counts; where
    they are not (a stack with thicker slices), counts alone would give the faces of the thin axes too much weight.

    Args:
        counts_per_axis (np.ndarray): (N, ndim, 3) face counts.
        voxel_size_zyx (sequence[float]): voxel edge along each axis (any unit; areas in its square).

    Returns:
        np.ndarray: float64 (N, 3) areas, columns in :data:`CONTACT_CLASSES` order.
    """
    edges = np.asarray(voxel_size_zyx, dtype=np.float64)
    face_area = np.prod(edges) / edges  # normal to axis a: the product of the other edges
    return np.einsum('nac,a->nc', counts_per_axis, face_area)
