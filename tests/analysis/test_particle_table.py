"""particle_table on analytic phantoms: sizes, shape, damage, contact fractions, units and input errors."""
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation

from libnet_mmdet.analysis import CARBON_BINDER, NMC, PORE, particle_table

FRACTIONS = ['surface_fraction_carbon_binder', 'surface_fraction_pore', 'surface_fraction_particle']


@pytest.mark.parametrize('radius', [10, 13, 17])
def test_sphere_volume_esd_and_sphericity(phantoms, radius):
    rng = np.random.default_rng(radius)
    size = 2 * radius + 10
    centre = np.full(3, (size - 1) / 2) + rng.uniform(-0.5, 0.5, 3)
    labels = phantoms.ball_mask((size,) * 3, centre, radius).astype(np.uint16)

    row = particle_table(labels, voxel_size_nm=50).iloc[0]

    volume_um3 = 4 / 3 * np.pi * (radius * 0.05) ** 3
    assert row['volume_um3'] == pytest.approx(volume_um3, rel=0.02)
    assert row['esd_um'] == pytest.approx(2 * radius * 0.05, rel=0.02)
    assert 0.97 <= row['sphericity'] <= 1.01
    assert row['elongation'] == pytest.approx(1, abs=0.02)
    assert row['damage'] == pytest.approx(0, abs=0.005)
    assert [row[f'centroid_{a}_vox'] for a in 'zyx'] == pytest.approx(centre, abs=0.05)
    assert [row[f'centroid_{a}_um'] for a in 'zyx'] == pytest.approx(centre * 0.05, abs=0.0025)


@pytest.mark.parametrize('rotation', [None, Rotation.from_euler('zyx', [30, 20, 40], degrees=True).as_matrix()],
                         ids=['aligned', 'rotated'])
def test_ellipsoid_axis_ratios(phantoms, rotation):
    semi_axes = np.array([24, 12, 8])
    labels = phantoms.ellipsoid_mask((60, 60, 60), (29.3, 30.1, 29.7), semi_axes, rotation).astype(np.uint8)

    row = particle_table(labels, voxel_size_nm=100).iloc[0]

    major, middle, minor = row['axis_major_um'], row['axis_middle_um'], row['axis_minor_um']
    assert major / minor == pytest.approx(3.0, rel=0.03)
    assert middle / minor == pytest.approx(1.5, rel=0.03)
    assert major == pytest.approx(2 * 24 * 0.1, rel=0.03)
    assert row['elongation'] == pytest.approx(major / minor)
    direction = np.array([row[f'major_axis_{a}'] for a in 'zyx'])
    expected = np.eye(3)[:, 0] if rotation is None else rotation[:, 0]
    assert abs(direction @ expected) == pytest.approx(1, abs=0.01)


@pytest.mark.parametrize('thickness', [1, 2])
def test_thin_parts_keep_their_surface(thickness):
    """A plate thinner than the smoothing vanishes from the smoothed mesh: its area must not depend on a small bump
    that alone survives (the rescaling to the voxel volume once inflated it into the plate's area or far beyond)."""
    plate = np.zeros((12, 50, 50), np.uint8)
    plate[5:5 + thickness, 5:45, 5:45] = 1
    bumped = plate.copy()
    bumped[4:7, 20:23, 20:23] = 1
    true_area = 2 * 40 * 40 + 4 * 40 * thickness  # a box: its voxel faces are its surface

    rows = [particle_table(labels, voxel_size_nm=1000).iloc[0] for labels in (plate, bumped)]

    for row in rows:
        assert row['surface_area_um2'] == pytest.approx(true_area, rel=0.05)
    assert rows[1]['sphericity'] == pytest.approx(rows[0]['sphericity'], rel=0.05)


def test_thin_shell_area_is_both_its_faces(phantoms):
    """A hollow label with a wall ~1.5 voxels thick (as split_particles of a phase volume makes): outer and inner
    sphere, not the smoothed remnant rescaled."""
    outer, inner = 11.5, 10
    labels = (phantoms.ball_mask((30,) * 3, (14.5,) * 3, outer) & ~phantoms.ball_mask((30,) * 3, (14.5,) * 3, inner))

    row = particle_table(labels.astype(np.uint8), voxel_size_nm=1000).iloc[0]

    assert row['surface_area_um2'] == pytest.approx(4 * np.pi * (outer**2 + inner**2), rel=0.12)


def _hollow_sphere(phantoms, outer=14, inner=7):
    shape, centre = (40, 40, 40), (19.5, 19.5, 19.5)
    filled = phantoms.ball_mask(shape, centre, outer)
    core = phantoms.ball_mask(shape, centre, inner)
    return filled, core, (inner / outer) ** 3


def test_hollow_sphere_damage_from_phase_volume(phantoms):
    """Ground-truth convention: the label is the filled particle, the phase volume keeps the void."""
    filled, core, expected = _hollow_sphere(phantoms)
    phases = np.where(filled & ~core, NMC, PORE).astype(np.uint8)

    row = particle_table(filled.astype(np.uint16), phases, voxel_size_nm=50).iloc[0]

    assert row['damage'] == pytest.approx(expected, abs=0.02)
    assert row['voxels'] == filled.sum()  # the label is the filled particle
    assert row['sphericity'] >= 0.97  # the internal void is not surface


def test_hollow_sphere_damage_from_label_alone(phantoms):
    """Labels that keep the void give the damage without a phase volume."""
    filled, core, expected = _hollow_sphere(phantoms)

    row = particle_table((filled & ~core).astype(np.uint16), voxel_size_nm=50).iloc[0]

    assert row['damage'] == pytest.approx(expected, abs=0.02)


def _jittered_sphere(phantoms, radius=10, seed=5):
    """A solid sphere whose xy sections are shifted by up to one voxel each: the rough outline of a mask stacked
    from 2D slices, full of one-voxel dents."""
    rng = np.random.default_rng(seed)
    sphere = phantoms.ball_mask((32, 32, 32), (15.5, 15.5, 15.5), radius)
    return np.stack([np.roll(section, tuple(rng.integers(-1, 2, 2)), axis=(0, 1)) for section in sphere])


def test_dents_of_a_rough_outline_are_no_damage_with_phases(phantoms):
    """With phases the label is the filled particle: no closing, which counted every dent of the outline as a void
    (0.03-0.06 on this solid particle)."""
    particle = _jittered_sphere(phantoms)

    row = particle_table(particle.astype(np.uint8), np.where(particle, NMC, PORE).astype(np.uint8),
                         voxel_size_nm=50).iloc[0]

    assert row['damage'] == 0


def test_labels_alone_keep_their_closing(phantoms):
    """Without phases the closing still counts a crack that opens to the surface in a label that keeps it."""
    filled = _hollow_sphere(phantoms)[0]
    cracked = filled.copy()
    cracked[:, 19, :] = False  # a one-voxel crack right across the particle
    true_damage = 1 - cracked.sum() / filled.sum()

    row = particle_table(cracked.astype(np.uint8), voxel_size_nm=50).iloc[0]

    assert row['damage'] == pytest.approx(true_damage, abs=0.01)


def test_half_coated_sphere_contact(phantoms):
    shape, centre = (40, 40, 40), (19.5, 19.5, 19.5)
    particle = phantoms.ball_mask(shape, centre, 12)
    shell = phantoms.ball_mask(shape, centre, 15) & ~particle
    upper_half = np.indices(shape)[0] > centre[0]
    phases = np.full(shape, PORE, np.uint8)
    phases[particle] = NMC
    phases[shell & upper_half] = CARBON_BINDER

    row = particle_table(particle.astype(np.uint16), phases, voxel_size_nm=50).iloc[0]

    assert row['surface_fraction_carbon_binder'] == pytest.approx(0.5, abs=0.03)
    assert row['surface_fraction_pore'] == pytest.approx(0.5, abs=0.03)
    assert row['surface_fraction_particle'] == 0
    assert row[FRACTIONS].sum() == pytest.approx(1)
    assert row['phase_source'] == 'given'


def test_two_touching_spheres_contact_each_other(phantoms):
    shape = (36, 36, 64)
    first = phantoms.ball_mask(shape, (17.5, 17.5, 17.5), 12)
    second = phantoms.ball_mask(shape, (17.5, 17.5, 44.5), 15) & ~first
    labels = first.astype(np.uint16) + 2 * second.astype(np.uint16)
    phases = np.where(labels > 0, NMC, PORE).astype(np.uint8)

    df = particle_table(labels, phases, voxel_size_nm=50)

    assert list(df['id']) == [1, 2]
    assert (df['surface_fraction_particle'] > 0).all()
    assert (df['surface_fraction_carbon_binder'] == 0).all()
    assert np.allclose(df[FRACTIONS].sum(axis=1), 1)
    # the shared faces are the same count seen from both sides
    shared = df['surface_fraction_particle'] * df['surface_faces']
    assert shared[0] == pytest.approx(shared[1])


def test_unsegmented_nmc_counts_as_particle_contact(phantoms):
    shape = (30, 30, 30)
    particle = phantoms.ball_mask(shape, (14.5, 14.5, 14.5), 8)
    phases = np.full(shape, NMC, np.uint8)  # the particle sits in NMC that has no label

    row = particle_table(particle.astype(np.uint16), phases, voxel_size_nm=50).iloc[0]

    assert row['surface_fraction_particle'] == 1


@settings(max_examples=30, deadline=None)
@given(labels=arrays(np.uint8, (6, 7, 8), elements=st.integers(0, 4)),
       phases=arrays(np.uint8, (6, 7, 8), elements=st.integers(0, 2)))
def test_fractions_always_sum_to_one(labels, phases):
    if not labels.any():
        labels[0, 0, 0] = 1
    df = particle_table(labels, phases, voxel_size_nm=50)
    has_surface = df['surface_faces'] > 0
    assert np.allclose(df.loc[has_surface, FRACTIONS].sum(axis=1), 1)
    fractions = df.loc[has_surface, FRACTIONS]
    assert ((fractions >= 0) & (fractions <= 1)).all().all()
    assert np.all((df['damage'] >= 0) & (df['damage'] <= 1))


def test_units_bbox_border_depth_and_ids(phantoms):
    shape = (30, 40, 50)
    labels = np.zeros(shape, np.uint32)
    labels[phantoms.ball_mask(shape, (10, 20, 25), 6)] = 7
    labels[0:4, 0:5, 0:6] = 3_000_000_000  # ids need not be consecutive or small; this one touches the border
    voxel_size_nm = (200, 100, 50)

    df = particle_table(labels, voxel_size_nm=voxel_size_nm, depth_axis='z', depth_from='high').set_index('id')
    high = df.loc[7]
    low = particle_table(labels, voxel_size_nm=voxel_size_nm, depth_axis='y').set_index('id').loc[7]

    assert list(df.index) == [7, 3_000_000_000]
    assert high['volume_um3'] == pytest.approx(high['voxels'] * 0.2 * 0.1 * 0.05)
    assert (high['bbox_z0'], high['bbox_z1'], high['bbox_x0'], high['bbox_x1']) == (4, 17, 19, 32)
    assert high['centroid_y_um'] == pytest.approx(20 * 0.1)
    assert high['depth_um'] == pytest.approx((30 - 0.5 - 10) * 0.2)
    assert low['depth_um'] == pytest.approx((20 + 0.5) * 0.1)
    assert not high['touches_border'] and df.loc[3_000_000_000, 'touches_border']
    box = df.loc[3_000_000_000]
    assert box['voxels'] == 4 * 5 * 6 and box['damage'] == 0
    assert df.attrs['voxel_size_nm'] == [200, 100, 50] and df.attrs['depth_from'] == 'high'


def test_sparse_ids_cost_memory_per_particle_not_per_id():
    """Ids numbered by tile offsets (16,000,000 here, below the compaction limit of huge ids) once cost ~9 int64
    per possible id (2.5 GB for two particles) and a loop over every id."""
    labels = np.zeros((20, 20, 20), np.uint32)
    labels[5:10, 5:10, 5:10] = 16_000_000
    labels[12:16, 12:16, 12:16] = 3
    tracemalloc.start()
    try:
        df = particle_table(labels, voxel_size_nm=50)
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert df['id'].tolist() == [3, 16_000_000] and df['id'].dtype == np.int64
    assert df['voxels'].tolist() == [64, 125]
    assert peak_bytes < 50e6


def test_without_phases_contact_fractions_are_nan(phantoms):
    labels = phantoms.ball_mask((24, 24, 24), (11.5, 11.5, 11.5), 7).astype(np.uint16)

    df = particle_table(labels, voxel_size_nm=50)

    assert df[FRACTIONS].isna().all().all()
    assert (df['phase_source'] == 'none').all()
    assert df['surface_faces'].iloc[0] > 0


def test_grayscale_image_gives_approximate_phases(phantoms):
    shape, centre = (40, 40, 40), (19.5, 19.5, 19.5)
    particle = phantoms.ball_mask(shape, centre, 12)
    shell = phantoms.ball_mask(shape, centre, 16) & ~particle
    phases = np.full(shape, PORE, np.uint8)
    phases[particle] = NMC
    phases[shell & (np.indices(shape)[0] > centre[0])] = CARBON_BINDER
    grey_levels = np.array([30.0, 200.0, 110.0])  # pore dark, carbon-binder middle, NMC bright
    image = grey_levels[phases] + np.random.default_rng(0).normal(0, 8, shape)
    labels = particle.astype(np.uint16)

    exact = particle_table(labels, phases, voxel_size_nm=50).iloc[0]
    approx = particle_table(labels, image_zyx=image, voxel_size_nm=50)

    assert (approx['phase_source'] == 'multi_otsu_approximate').all()
    assert len(approx.attrs['phase_thresholds']) == 2
    for column in FRACTIONS:
        assert approx.iloc[0][column] == pytest.approx(exact[column], abs=0.05)


def test_bad_inputs_raise_one_clear_error():
    labels = np.zeros((8, 8, 8), np.uint16)
    labels[2:5, 2:5, 2:5] = 1
    with pytest.raises(ValueError, match=r'labels_zyx: expected a 3-D .* shape \(8, 8\)'):
        particle_table(labels[0], voxel_size_nm=50)
    with pytest.raises(TypeError, match='labels_zyx: instance labels must have an integer dtype'):
        particle_table(labels.astype(np.float32), voxel_size_nm=50)
    with pytest.raises(TypeError, match='integer dtype'):
        particle_table(labels > 0, voxel_size_nm=50)
    with pytest.raises(ValueError, match='labels_zyx: no instance'):
        particle_table(np.zeros((8, 8, 8), np.uint16), voxel_size_nm=50)
    with pytest.raises(ValueError, match='labels_zyx: instance labels must be >= 0'):
        particle_table(-labels.astype(np.int32), voxel_size_nm=50)
    with pytest.raises(ValueError, match=r'phases_zyx: shape \(8, 8, 7\) does not match labels_zyx'):
        particle_table(labels, np.zeros((8, 8, 7), np.uint8), voxel_size_nm=50)
    with pytest.raises(ValueError, match='phases_zyx: phase values must be 0'):
        particle_table(labels, np.full((8, 8, 8), 3, np.uint8), voxel_size_nm=50)
    with pytest.raises(ValueError, match='image_zyx: shape'):
        particle_table(labels, image_zyx=np.zeros((8, 8, 9)), voxel_size_nm=50)
    with pytest.raises(ValueError, match='voxel_size_nm'):
        particle_table(labels, voxel_size_nm=-1)
    for depth_axis in ('t', True, 2.0):  # a bool or a float is no axis index (True was read as 'y')
        with pytest.raises(ValueError, match='depth_axis'):
            particle_table(labels, depth_axis=depth_axis, voxel_size_nm=50)
    with pytest.raises(ValueError, match='depth_from'):
        particle_table(labels, depth_from='top', voxel_size_nm=50)


def test_voxel_size_is_required():
    """Audit #2: the old default of 1 nm gave an ESD of 0.019 um for a particle of 0.94 um at 50 nm, silently."""
    labels = np.zeros((8, 8, 8), np.uint16)
    labels[2:5, 2:5, 2:5] = 1
    with pytest.raises(ValueError, match=r'voxel_size_nm: required .*libnet_mmdet.io.read_voxel_size\(path\)'):
        particle_table(labels)
    with pytest.raises(ValueError, match='voxel_size_nm: required'):
        particle_table(labels, voxel_size_nm=None)



def test_contact_shares_are_of_surface_area_where_voxels_are_not_cubes():
    """Analysis audit: the shares were of face counts, so with 200 x 100 x 100 nm voxels a face normal to z (twice
    the area of the others) weighed as one. A box of 4 x 10 x 10 voxels coated above and below, bare at its sides:
    coated 2 x 1000 x 1000 nm^2 of 2 x 1000^2 + 4 x 800 x 1000 nm^2 (the count share was 200 / 360 = 0.56)."""
    labels = np.zeros((8, 14, 14), np.uint16)
    labels[2:6, 2:12, 2:12] = 1
    phases = np.full(labels.shape, PORE, np.uint8)
    phases[labels == 1] = NMC
    phases[1, 2:12, 2:12] = phases[6, 2:12, 2:12] = CARBON_BINDER

    row = particle_table(labels, phases, voxel_size_nm=(200, 100, 100)).iloc[0]

    assert row['surface_fraction_carbon_binder'] == pytest.approx(2 / 5.2)
    assert row['surface_fraction_pore'] == pytest.approx(3.2 / 5.2)
    assert row['surface_faces'] == 2 * 100 + 4 * 40  # the column still counts faces
    cubic = particle_table(labels, phases, voxel_size_nm=100).iloc[0]  # cubes: the share of the faces
    assert cubic['surface_fraction_carbon_binder'] == pytest.approx(200 / 360)


@pytest.mark.parametrize('n', [7, 11])
def test_the_major_axis_has_no_negative_zero(n):
    """A zero component was written '-0.0' to particles.csv (the sign fix multiplied it by -1)."""
    from libnet_mmdet.analysis.shape import principal_axes
    coords = np.zeros((n, 3))
    coords[:, 2], coords[:, 0] = np.arange(n), np.arange(n) % 2  # a rod along x, one voxel of zigzag in z

    major = principal_axes(coords, np.ones(3))[1]

    assert major[2] == pytest.approx(1, abs=0.05) and not np.signbit(major).any()
