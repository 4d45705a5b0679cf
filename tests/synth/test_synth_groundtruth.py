"""particles.csv matches the label and phase volumes, checked by brute force."""
import numpy as np
import pandas as pd
import pytest

from libnet_mmdet.synth.groundtruth import GROUND_TRUTH_COLUMNS

PORE, NMC, CARBON_BINDER = 0, 1, 2
SHIFTS = [(-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1)]


def brute_force_faces(labels, phases, particle_id):
    """(carbon-binder, pore, other particle) counts of exposed faces of one particle, volume border excluded."""
    padded_labels = np.pad(labels.astype(np.int64), 1, constant_values=-1)
    padded_phases = np.pad(phases, 1)
    counts = np.zeros(3, dtype=np.int64)
    for z, y, x in np.argwhere(padded_labels == particle_id):
        for dz, dy, dx in SHIFTS:
            other = padded_labels[z + dz, y + dy, x + dx]
            if other in (particle_id, -1):
                continue
            kind = 2 if other > 0 else (0 if padded_phases[z + dz, y + dy, x + dx] == CARBON_BINDER else 1)
            counts[kind] += 1
    return counts


def test_csv_rows_match_the_label_volume(dataset_dir, typical_volume):
    table = pd.read_csv(dataset_dir / 'particles.csv')
    labels, phases = typical_volume.labels_zyx, typical_volume.phases_zyx
    assert tuple(table.columns) == GROUND_TRUTH_COLUMNS
    assert table.id.tolist() == list(range(1, int(labels.max()) + 1))
    voxel_um = typical_volume.params.voxel_size_nm / 1000
    for row in table.itertuples():
        points = np.argwhere(labels == row.id)
        filled = len(points)
        solid = np.count_nonzero((labels == row.id) & (phases == NMC))
        assert row.voxels == row.filled_voxels == filled
        assert row.solid_voxels == solid
        assert row.damage == pytest.approx((filled - solid) / filled, abs=1e-6)
        assert row.esd_vox == pytest.approx((6 * filled / np.pi) ** (1 / 3), rel=1e-5)
        assert row.esd_um == pytest.approx(row.esd_vox * voxel_um, rel=1e-5)
        assert row.volume_um3 == pytest.approx(filled * voxel_um ** 3, rel=1e-5)
        assert (row.centroid_z, row.centroid_y, row.centroid_x) == pytest.approx(tuple(points.mean(axis=0)), abs=1e-4)
        touches = bool(np.any(points.min(axis=0) == 0) or np.any(points.max(axis=0) == np.array(labels.shape) - 1))
        assert row.touches_border == touches
        assert row.hollow or row.cracked or row.damage == 0
    assert table.damage.max() > 0


def test_contact_fractions_match_a_brute_force_count(typical_volume):
    table = typical_volume.particles.set_index('id')
    labels, phases = typical_volume.labels_zyx, typical_volume.phases_zyx
    for particle_id in table.index[:12]:
        counts = brute_force_faces(labels, phases, particle_id)
        row = table.loc[particle_id]
        assert row.surface_faces == counts.sum()
        expected = counts / counts.sum()
        assert (row.cb_contact_fraction, row.pore_contact_fraction, row.particle_contact_fraction) == \
            pytest.approx(tuple(expected), abs=1e-9)
    total = table.cb_contact_fraction + table.pore_contact_fraction + table.particle_contact_fraction
    assert np.allclose(total, 1)
    assert table.cb_contact_fraction.mean() > 0.1  # the binder coats part of the surfaces


def test_analysis_particle_table_agrees_with_the_ground_truth(damaged_volume):
    """The project's particle statistics recover the generator's sizes, damage and contacts."""
    from libnet_mmdet.analysis import particle_table
    truth = damaged_volume.particles.set_index('id')
    measured = particle_table(damaged_volume.labels_zyx, damaged_volume.phases_zyx,
                              voxel_size_nm=damaged_volume.params.voxel_size_nm).set_index('id')
    assert np.array_equal(measured.index, truth.index)
    assert np.array_equal(measured.voxels, truth.voxels)
    assert np.allclose(measured.esd_um, truth.esd_um)
    assert np.allclose(measured.surface_fraction_carbon_binder, truth.cb_contact_fraction)
    assert np.allclose(measured.surface_fraction_particle, truth.particle_contact_fraction)
    interior = ~truth.touches_border
    assert np.allclose(measured.damage[interior], truth.damage[interior], atol=0.02)
