"""benchmarks/bench_phases.py's reading of the SegmentPy labels (issue 16): which of labels 1 and 2 is
carbon-binder, told by intensity away from the particles; its scores without specks."""
import numpy as np
import pytest

from helpers import import_benchmark


@pytest.fixture(scope='module')
def bench():
    return import_benchmark('bench_phases')


@pytest.mark.parametrize('pore_label', [1, 2])
def test_carbon_binder_is_the_brighter_label_away_from_particles(bench, pore_label):
    # A bright particle (label 0) hugged by a pore ring its blur lifts to 1.2; farther out the pore is 0.1 and the
    # carbon-binder 0.5: over all pixels the pore is brighter on average, away from the particle it is darker.
    yy, xx = np.mgrid[:64, :64]
    radius = np.hypot(yy - 32, xx - 32)
    ring = 14 + bench.FAR_FROM_NMC_PX - 1  # the ring's outer radius: all of it within the blur the rule looks past
    cb_label = 3 - pore_label
    label = np.where(radius < 14, 0, np.where(radius < ring, pore_label, cb_label)).astype(np.uint8)
    label[:6, :6] = pore_label  # some far pore
    image = np.select([label == 0, radius < ring, label == pore_label], [2.0, 1.2, 0.1], 0.5).astype(np.float32)
    assert image[label == pore_label].mean() > image[label == cb_label].mean()  # the mean would read it wrong

    truth, carbon_binder, medians = bench.segmentpy_truth(image, label)

    assert carbon_binder == cb_label
    assert medians[cb_label] == pytest.approx(0.5) and medians[pore_label] == pytest.approx(0.1)
    np.testing.assert_array_equal(truth, np.select([label == 0, label == cb_label], [1, 2], 0))
    assert truth.dtype == np.uint8


def test_labels_without_pixels_away_from_particles_are_refused(bench):
    label = np.zeros((16, 16), np.uint8)
    label[:, 8:] = 1
    label[:, 8:10] = 2  # every label-2 pixel within 2 px of NMC
    with pytest.raises(ValueError, match='labels 1 and 2 need pixels more than 5 px from NMC'):
        bench.segmentpy_truth(np.ones(label.shape, np.float32), label)


def test_specks_are_scored_apart(bench):
    """A one-voxel label (what split_particles leaves in the MATBOX volume) has six surface faces: its detachment is
    0 or 1 by one voxel's phase. The ``*_sized`` scores leave it out (below --min-voxels auto's size)."""
    zz, yy, xx = np.mgrid[:20, :40, :64]
    labels = np.zeros(zz.shape, np.uint16)
    truth = np.zeros(zz.shape, np.uint8)  # pore
    for k, cx in enumerate((8, 22, 36, 50)):
        ball = (zz - 10) ** 2 + (yy - 20) ** 2 + (xx - cx) ** 2 <= 16
        shell = ((zz - 10) ** 2 + (yy - 20) ** 2 + (xx - cx) ** 2 <= 36) & ~ball
        truth[shell & (yy < 17 + 2 * k)] = 2  # carbon-binder coats: more of each particle's surface, ball by ball
        labels[ball], truth[ball] = k + 1, 1
    labels[10, 34, 60], truth[10, 34, 60] = 5, 1  # a speck in pore: detachment 1
    wrong_speck = truth.copy()
    wrong_speck[10, 33:36, 59:62] = 2
    wrong_speck[9:12, 34, 60] = 2
    wrong_speck[10, 34, 60] = 1  # the speck now coated all round: detachment 0

    result = bench.compare_phases(labels, truth, {'model': wrong_speck}, voxel_size_nm=100)

    assert result['n_particles'] == 5 and result['min_voxels'] == 10 and result['n_sized'] == 4
    assert result['model']['detachment_correlation'] < 0.9
    assert result['model']['detachment_correlation_sized'] == pytest.approx(1.0)
    assert result['model']['error_detachment_sized'] == pytest.approx(0.0)
    assert result['model']['error_detachment'] == pytest.approx(-1 / 5)
    assert result['truth']['mean_damage_sized'] == 0.0 and result['model']['error_damage_sized'] == 0.0


def test_a_phase_in_neither_volume_has_no_iou_and_prints_as_such(bench):
    """Evaluation audit: a phase absent from both the prediction and the truth scored IoU 0 (a perfect prediction
    of a volume without carbon-binder read 'CB IoU 0'), and a correlation of None crashed the print."""
    truth = np.array([[0, 1], [1, 0]], np.uint8)
    ious = bench.phase_iou(truth.copy(), truth)
    assert ious == {'pore': 1.0, 'nmc': 1.0, 'carbon_binder': None}
    assert bench.fmt(ious) == '1.000/1.000/n/a' and bench.fmt(None) == 'n/a' and bench.fmt(0.25) == '0.250'
