"""Exact per-particle ground truth of a synthetic volume, measured on its label and phase volumes."""
import numpy as np
import pandas as pd
from scipy import ndimage

from ..analysis import NMC
from ..analysis.contacts import surface_contact_counts

#: Columns of the ground-truth table, in order (see :func:`ground_truth_table` for their meaning).
GROUND_TRUTH_COLUMNS = (
    'id', 'voxels', 'esd_vox', 'esd_um', 'volume_um3', 'centroid_z', 'centroid_y', 'centroid_x', 'filled_voxels',
    'solid_voxels', 'damage', 'cb_contact_fraction', 'pore_contact_fraction', 'particle_contact_fraction',
    'surface_faces', 'hollow', 'cracked', 'porous', 'touches_border', 'nominal_diameter_vox')


def ground_truth_table(labels_zyx, phases_zyx, voxel_size_nm, nominal_diameter_vox=None, hollow_voxels=None,
                       crack_voxels=None, porous_voxels=None):
    """One row per particle of a labelled volume: size, position, damage and contacts.

    Columns (:data:`GROUND_TRUTH_COLUMNS`): ``id`` (label value); ``voxels`` = ``filled_voxels`` (voxels
    carrying the id: the filled particle, voids included); ``esd_vox``, ``esd_um`` equivalent spherical
    diameter of the filled volume; ``volume_um3``; ``centroid_z/y/x`` of the filled particle (voxels);
    ``solid_voxels`` (NMC voxels of the particle); ``damage`` = (filled - solid) / filled;
    ``cb_contact_fraction``, ``pore_contact_fraction``, ``particle_contact_fraction``: shares of the particle's
    surface voxel faces (6-neighbour pairs inside the volume, see
    :func:`libnet_mmdet.analysis.contacts.surface_contact_counts`) facing carbon-binder, pore, another particle (sum 1,
    NaN for a particle without such a face); ``surface_faces``: their number; ``hollow``, ``cracked``,
    ``porous``: the particle has core / crack / internal-void voxels (False when not given); ``touches_border``:
    the particle is cut by the volume border; ``nominal_diameter_vox``: the drawn diameter (NaN when not given).

    Args:
        labels_zyx (np.ndarray): (Z, Y, X) instance labels 1..N, 0 = background (every id 1..N present).
        phases_zyx (np.ndarray): (Z, Y, X) phases, 0 pore, 1 NMC, 2 carbon-binder.
        voxel_size_nm (float): voxel edge length in nm.
        nominal_diameter_vox, hollow_voxels, crack_voxels, porous_voxels (np.ndarray, optional): per-particle
            values from the generator, index = id - 1.

    Returns:
        pandas.DataFrame: N rows, ordered by id.
    """
    n = int(labels_zyx.max())
    ids = np.arange(1, n + 1)
    flat_labels = labels_zyx.ravel()
    filled = np.bincount(flat_labels, minlength=n + 1)[1:]
    solid = np.bincount(flat_labels[phases_zyx.ravel() == NMC], minlength=n + 1)[1:]
    centroids = np.array(ndimage.center_of_mass(np.ones(labels_zyx.shape, dtype=np.uint8), labels_zyx, ids),
                         dtype=np.float64).reshape(n, 3)
    faces = surface_contact_counts(labels_zyx, phases_zyx, n)[1:]
    n_faces = faces.sum(axis=1)
    with np.errstate(invalid='ignore', divide='ignore'):
        shares = faces / n_faces[:, None]
    touches = np.array([any(s.start == 0 or s.stop == size for s, size in zip(box, labels_zyx.shape))
                        for box in ndimage.find_objects(labels_zyx, max_label=n)], dtype=bool)
    esd_vox = np.cbrt(6 * filled / np.pi)
    voxel_um = voxel_size_nm / 1000

    def per_particle(values, default):
        return np.full(n, default) if values is None else np.asarray(values)

    table = pd.DataFrame({
        'id': ids, 'voxels': filled, 'esd_vox': esd_vox, 'esd_um': esd_vox * voxel_um,
        'volume_um3': filled * voxel_um ** 3, 'centroid_z': centroids[:, 0], 'centroid_y': centroids[:, 1],
        'centroid_x': centroids[:, 2], 'filled_voxels': filled, 'solid_voxels': solid,
        'damage': (filled - solid) / filled, 'cb_contact_fraction': shares[:, 0],
        'pore_contact_fraction': shares[:, 1], 'particle_contact_fraction': shares[:, 2], 'surface_faces': n_faces,
        'hollow': per_particle(hollow_voxels, 0) > 0, 'cracked': per_particle(crack_voxels, 0) > 0,
        'porous': per_particle(porous_voxels, 0) > 0, 'touches_border': touches,
        'nominal_diameter_vox': per_particle(nominal_diameter_vox, np.nan)})
    return table[list(GROUND_TRUTH_COLUMNS)]
