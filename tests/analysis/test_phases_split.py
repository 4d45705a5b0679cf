"""segment_phases (multi-Otsu), split_particles (distance-transform watershed) and the real MATBOX volume."""
import numpy as np
import pytest
import tifffile

from libnet_mmdet.analysis import (CARBON_BINDER, NMC, PORE, particle_table, segment_phases, split_particles, summarize,
                                   watershed_segment)

FRACTIONS = ['surface_fraction_carbon_binder', 'surface_fraction_pore', 'surface_fraction_particle']


def test_segment_phases_recovers_three_levels():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, (16, 16, 16)).astype(np.uint8)
    image = np.array([20.0, 180.0, 100.0])[truth] + rng.normal(0, 5, truth.shape)  # pore < CB < NMC

    phases, thresholds = segment_phases(image)

    assert phases.dtype == np.uint8
    assert np.mean(phases == truth) > 0.999
    assert 20 < thresholds[0] < 100 < thresholds[1] < 180


@pytest.mark.parametrize('shape', [(1, 5000, 5000), (3, 2500, 2600), (200, 200, 200)])
def test_the_fit_sample_stays_at_4_m_voxels_for_thin_volumes_too(shape):
    """One step on every axis from the cube root gave a (1, 5000, 5000) slab a sample of 6.25 M voxels."""
    from libnet_mmdet.analysis import phase_fit_sample
    image = np.broadcast_to(np.arange(shape[-1], dtype=np.uint8), shape)  # 256 levels, no memory
    sample = phase_fit_sample(image)
    assert 1_000_000 <= sample.size <= 4_000_000 and sample.dtype == np.float64


def test_segment_phases_intensity_order_and_errors():
    image = np.repeat(np.array([0.0, 1.0, 2.0]), 8).reshape(2, 3, 4)
    phases, _ = segment_phases(image, intensity_order=('nmc', 'pore', 'carbon_binder'))
    assert set(np.unique(phases[image == 0])) == {NMC}
    assert set(np.unique(phases[image == 2])) == {CARBON_BINDER}
    with pytest.raises(ValueError, match='intensity_order'):
        segment_phases(image, intensity_order=('pore', 'nmc'))
    with pytest.raises(ValueError, match='fewer than three of the 256 intensity bins'):
        segment_phases(np.ones((4, 4, 4)))
    two_levels = np.repeat(np.array([0.0, 1.0]), 32).reshape(4, 4, 4)
    two_levels[0, 0, 0] = 1000  # a hot pixel: three distinct values, two of multi-Otsu's bins
    with pytest.raises(ValueError, match='image_zyx: fewer than three of the 256 intensity bins'):
        segment_phases(two_levels)
    with pytest.raises(ValueError, match='image_zyx: expected a 3-D'):
        segment_phases(np.ones((4, 4)))


def test_split_particles_separates_two_overlapping_spheres(phantoms):
    shape = (32, 32, 56)
    first = phantoms.ball_mask(shape, (15.5, 15.5, 16), 11)
    second = phantoms.ball_mask(shape, (15.5, 15.5, 36), 11)  # overlap: neck radius ~ 4.6 voxels
    lone = np.zeros(shape, bool)
    lone[1, 1, 54] = True  # too small for a marker: still labelled

    labels = split_particles(first | second | lone)

    assert labels.dtype == np.uint32 and labels.max() == 3
    assert np.array_equal(labels > 0, first | second | lone)
    left, right = labels[15, 15, 10], labels[15, 15, 42]
    assert left != right and 0 not in (left, right)
    assert abs(np.sum(labels == left) - np.sum(labels == right)) < 0.02 * np.sum(labels == left)


def test_split_particles_errors_and_empty():
    assert not split_particles(np.zeros((4, 4, 4), bool)).any()
    with pytest.raises(ValueError, match=r'nmc_mask_zyx: expected a \(Z, Y, X\) or \(H, W\)'):
        split_particles(np.ones((2, 4, 4, 4), bool))
    with pytest.raises(ValueError, match='h_voxels'):
        split_particles(np.ones((4, 4, 4), bool), h_voxels=0)


def test_split_particles_refuses_a_phase_volume():
    """Audit #5: the 0/1/2 phase volume instead of ``phases == 1`` counted carbon-binder as NMC, silently."""
    phases = np.zeros((4, 8, 8), np.uint8)
    phases[1:3, 1:4, 1:4], phases[1:3, 5:7, 5:7] = NMC, CARBON_BINDER
    with pytest.raises(ValueError, match=r'nmc_mask_zyx: expected a bool mask, got uint8 values other than 0 and 1, '
                                         r'e.g. 2 \(a phase volume: pass phases == 1\)'):
        split_particles(phases)
    with pytest.raises(ValueError, match='e.g. nan'):
        split_particles(np.full((4, 8, 8), np.nan))
    assert split_particles((phases == NMC).astype(np.uint8)).max() == 1  # a 0/1 mask of any dtype is fine


def test_split_particles_checks_sampling():
    """Audit #15: (1, 1) for a 3-D mask failed inside scipy; zero and negative spacings were accepted."""
    mask = np.zeros((6, 10, 10), bool)
    mask[1:5, 2:8, 2:8] = True
    for sampling in ((1, 1), (0, 1, 1), (-1, 1, 1), (1, np.nan, 1), (True, 1, 1), 'x', 0):
        with pytest.raises(ValueError, match=r'sampling must be one number > 0 or 3 \(one per axis of the mask\)'):
            split_particles(mask, sampling=sampling)
    with pytest.raises(ValueError, match='sampling must be one number > 0 or 2'):
        split_particles(mask[2], sampling=(1, 1, 1))
    for sampling in (50, [50], (100, 50, 50), np.array([2.0, 1.0, 1.0])):
        assert np.array_equal(split_particles(mask, sampling=sampling) > 0, mask)
    assert np.array_equal(split_particles(mask[2], sampling=(2, 1)) > 0, mask[2])


def test_watershed_segment_checks_every_argument_before_any_work(monkeypatch):
    """Audit #8 / #14: n_classes=1 killed the process inside skimage (segmentation fault), other bad values failed
    deep inside numpy/skimage or after the threshold, an (H, W, 3) colour image was taken as a volume."""
    from libnet_mmdet.analysis import split

    def threshold_reached(*args, **kwargs):
        raise AssertionError('the threshold ran before the arguments were checked')

    monkeypatch.setattr(split, 'threshold_multiotsu', threshold_reached)  # also keeps a regression from crashing
    image = np.random.default_rng(0).random((4, 16, 16)).astype(np.float32)
    for kwargs, message in ((dict(n_classes=1), r'n_classes must be an integer >= 2, got 1'),
                            (dict(n_classes=0), r'n_classes must be an integer >= 2, got 0'),
                            (dict(n_classes=-1), r'n_classes must be an integer >= 2, got -1'),
                            (dict(n_classes=3.0), r'n_classes must be an integer >= 2, got 3.0'),
                            (dict(h_voxels=0), r'h_voxels must be a number > 0, got 0'),
                            (dict(min_size=-5), r'min_size must be an integer >= 0, got -5'),
                            (dict(min_size=2.5), r'min_size must be an integer >= 0, got 2.5')):
        with pytest.raises(ValueError, match=message):
            watershed_segment(image, **kwargs)
    for bad, error, message in ((np.zeros((0, 8, 8)), ValueError, r'image: empty image of shape \(0, 8, 8\)'),
                                (np.zeros((8,)), ValueError, r'image: expected a \(H, W\) slice'),
                                (np.stack([image[0]] * 3, -1), ValueError, r'\(H, W, 3\) colour image'),
                                (image > 0.5, TypeError, r'got bool \(a bool mask: use split_particles\)'),
                                (image.astype(complex), TypeError, 'integer or float dtype, got complex128')):
        with pytest.raises(error, match=message):
            watershed_segment(bad)


def test_matbox_particles_split_and_sane_statistics(real_data_dir):
    path = real_data_dir / 'matbox' / 'nmc-1-cal_generatedCBD_bridge.tif'
    if not path.is_file():
        pytest.skip(f'{path} not found')
    phases = tifffile.imread(path)[80:176, 100:196, 100:196]  # 96^3 crop keeps the test fast
    assert set(np.unique(phases)) == {PORE, NMC, CARBON_BINDER}

    labels = split_particles(phases == NMC)
    df = particle_table(labels, phases, voxel_size_nm=100)
    summary = summarize(df)

    assert 30 <= len(df) <= 300, 'the NMC phase splits into tens of particles, not one blob or noise'
    assert np.array_equal(labels > 0, phases == NMC)
    assert not df.drop(columns='phase_source').isna().any().any()
    assert np.allclose(df[FRACTIONS].sum(axis=1), 1)
    assert ((df[FRACTIONS] >= 0) & (df[FRACTIONS] <= 1)).all().all()
    # the generated carbon-binder bridges touch most particles; some surface faces pore
    assert summary['mean_contact_carbon_binder'] > 0.1 and 0.05 < summary['mean_detachment'] < 0.9
    assert df['sphericity'].between(0.3, 1.02).all() and summary['mean_sphericity'] > 0.6
    assert df['damage'].between(0, 1).all() and summary['mean_damage'] < 0.2
    assert df['volume_um3'].sum() == pytest.approx(np.sum(phases == NMC) * 0.1**3)


def test_watershed_segment_fills_and_splits_touching_hollow_discs():
    from skimage.draw import disk
    rng = np.random.default_rng(0)
    truth = np.zeros((80, 120), np.uint8)
    truth[disk((40, 35), 20, shape=truth.shape)] = 1
    truth[disk((40, 72), 18, shape=truth.shape)] = 2  # touches the first one
    image = np.where(truth > 0, 200.0, 20.0)
    image[disk((40, 35), 8, shape=truth.shape)] = 20.0  # hollow core: dark inside particle 1
    image[(truth == 0) & (np.arange(120) > 100)] = 90.0  # a carbon-binder-like grey region
    image += rng.normal(0, 8, image.shape)

    labels = watershed_segment(image, sigma=1.0, h_voxels=2.0)

    assert labels.dtype == np.uint32 and labels.max() == 2
    for particle in (1, 2):
        predicted = np.bincount(labels[truth == particle]).argmax()
        iou = np.sum((labels == predicted) & (truth == particle)) / np.sum((labels == predicted) | (truth == particle))
        assert iou > 0.9, (particle, iou)  # the hollow core is filled, the two discs are split
    zz, yy, xx = np.mgrid[:40, :40, :80]
    balls = {1: (zz - 20) ** 2 + (yy - 20) ** 2 + (xx - 22) ** 2 < 15 ** 2,
             2: (zz - 20) ** 2 + (yy - 20) ** 2 + (xx - 50) ** 2 < 14 ** 2}  # touching
    volume = np.where(balls[1] | balls[2], 200.0, 20.0) + rng.normal(0, 8, zz.shape)
    volume[(zz - 20) ** 2 + (yy - 20) ** 2 + (xx - 22) ** 2 < 6 ** 2] = 20.0  # hollow core
    volume[~(balls[1] | balls[2]) & (xx > 68)] += 70.0  # carbon-binder-like grey: three intensity classes
    volume_labels = watershed_segment(volume, sigma=1.0)
    assert volume_labels.max() == 2
    for ball in balls.values():
        assert np.bincount(volume_labels[ball]).argmax() > 0
        assert np.mean(volume_labels[ball] == np.bincount(volume_labels[ball]).argmax()) > 0.9
    with pytest.raises(ValueError, match='NaN'):
        watershed_segment(np.full((8, 8), np.nan))
