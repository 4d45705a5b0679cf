"""benchmarks/bench_phases.py's reading of the SegmentPy labels (issue 16): which of labels 1 and 2 is
carbon-binder, told by intensity away from the particles."""
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
