"""The 3D ground truth obeys its convention: labels = filled particles, phases keep the voids."""
import numpy as np
import pytest
from scipy import ndimage

from libnet_mmdet.synth import generate_volume, preset_params
from libnet_mmdet.synth.microstructure import draw_diameters

PORE, NMC, CARBON_BINDER = 0, 1, 2


@pytest.fixture(params=['typical_volume', 'damaged_volume'])
def volume(request):
    return request.getfixturevalue(request.param)


def test_labels_and_phases_are_consistent(volume):
    labels, phases = volume.labels_zyx, volume.phases_zyx
    assert labels.dtype == np.uint16 and phases.dtype == np.uint8 and labels.shape == phases.shape
    n = int(labels.max())
    assert n >= 10
    assert np.array_equal(np.unique(labels), np.arange(n + 1))  # ids 1..N, all present
    assert set(np.unique(phases[labels > 0])) <= {PORE, NMC}  # particles hold NMC and their own voids only
    assert np.all(labels[phases == NMC] > 0)  # every NMC voxel belongs to a particle
    assert np.all(labels[phases == CARBON_BINDER] == 0)
    assert np.count_nonzero(phases == CARBON_BINDER) > 0


def test_every_label_is_the_filled_solid(volume):
    """Inside the volume, a particle's label is exactly its NMC solid with the enclosed voids filled."""
    labels, phases = volume.labels_zyx, volume.phases_zyx
    table = volume.particles.set_index('id')
    for particle_id, box in enumerate(ndimage.find_objects(labels), start=1):
        own = labels[box] == particle_id
        solid = own & (phases[box] == NMC)
        assert ndimage.label(own)[1] == 1, f'particle {particle_id} is not one 6-connected piece'
        assert solid.any()
        if not table.loc[particle_id, 'touches_border']:
            assert np.array_equal(ndimage.binary_fill_holes(np.pad(solid, 1))[1:-1, 1:-1, 1:-1], own), particle_id


def test_damaged_particles_have_enclosed_voids(damaged_volume):
    table = damaged_volume.particles
    interior = table[~table.touches_border]
    assert (interior.damage > 0).sum() >= 3  # the fill-holes test above was not vacuous
    assert interior.hollow.any() and interior.cracked.any()
    assert (table.hollow | table.cracked).equals(table.damage > 0)


def test_packing_reaches_the_target_fraction_with_touching_neighbours(typical_volume):
    fraction = np.count_nonzero(typical_volume.labels_zyx) / typical_volume.labels_zyx.size
    assert fraction == pytest.approx(typical_volume.params.solid_fraction, abs=0.03)
    assert typical_volume.summary['particle_fraction'] == pytest.approx(fraction, abs=1e-6)
    contacts = typical_volume.particles.particle_contact_fraction
    assert (contacts > 0).mean() > 0.7  # most particles touch a neighbour


def test_dense_packing_is_reached():
    volume = generate_volume((32, 64, 64), preset_params('hard', mean_diameter_vox=12.0), seed=0)
    assert np.count_nonzero(volume.labels_zyx) / volume.labels_zyx.size >= 0.58


def test_diameters_are_log_normal_with_the_requested_moments():
    params = preset_params('typical', mean_diameter_vox=20.0, diameter_cv=0.3, min_diameter_vox=1.0)
    diameters = draw_diameters(np.random.default_rng(0), 20000, params)
    assert diameters.mean() == pytest.approx(20.0, rel=0.02)
    assert diameters.std() / diameters.mean() == pytest.approx(0.3, rel=0.05)
    assert np.log(diameters).std() == pytest.approx(np.sqrt(np.log1p(0.3 ** 2)), rel=0.03)
    assert draw_diameters(np.random.default_rng(0), 1000, preset_params('typical', min_diameter_vox=15.0)).min() >= 15


def test_imaging_knobs_leave_the_microstructure_unchanged(typical_volume):
    params = preset_params('typical', mean_diameter_vox=14.0, dose=1e3, phase_contrast=0.0)
    other = generate_volume(typical_volume.labels_zyx.shape, params, seed=3)
    assert np.array_equal(other.labels_zyx, typical_volume.labels_zyx)
    assert np.array_equal(other.phases_zyx, typical_volume.phases_zyx)
    assert not np.array_equal(other.image_zyx, typical_volume.image_zyx)
