"""Analysis functions that failed deep inside numpy, silently changed meaning, or wrote before checking."""
import numpy as np
import pytest

from libnet_mmdet.analysis import particle_table, segment_phases, tune_watershed, watershed_segment, write_report
from libnet_mmdet.volume.testing import sphere_labels


@pytest.fixture
def labels():
    return sphere_labels((10, 20, 20), [((5, 6, 6), 4), ((5, 13, 13), 4)])


def test_particle_table_refuses_bad_smoothing_and_closing(labels):
    for kwargs, message in ((dict(smoothing_sigma=-0.2), 'smoothing_sigma must be a number >= 0'),
                            (dict(smoothing_sigma=float('nan')), 'smoothing_sigma must be a number >= 0'),
                            (dict(closing_radius=-2), 'closing_radius must be an integer >= 0'),
                            (dict(closing_radius=1.5), 'closing_radius must be an integer >= 0')):
        with pytest.raises(ValueError, match=message):
            particle_table(labels, voxel_size_nm=50, **kwargs)


def test_multi_otsu_refuses_nan_voxels(labels):
    image = np.where(labels > 0, 200.0, 20.0)
    image[3, 4, 5] = np.nan
    with pytest.raises(ValueError, match=r'image_zyx: 1 NaN/Inf pixel\(s\), first at index \(3, 4, 5\)'):
        segment_phases(image)


def test_write_report_checks_its_arrays_before_touching_the_folder(labels, tmp_path):
    table = particle_table(labels, voxel_size_nm=50)
    out = tmp_path / 'report'
    write_report(table, out, labels_zyx=labels)
    before = sorted(p.name for p in out.iterdir())
    for kwargs, message in ((dict(image_zyx=np.zeros((4, 20, 20))), 'image_zyx: shape'),
                            (dict(phases_zyx=np.full(labels.shape, 3, np.uint8)), 'phase values must be 0'),
                            (dict(labels_zyx=None, image_zyx=np.zeros(labels.shape)), 'pass it too')):
        with pytest.raises(ValueError, match=message):
            write_report(table, out, **{'labels_zyx': labels, **kwargs}, overwrite=True)
        assert sorted(p.name for p in out.iterdir()) == before  # the earlier report is intact


def test_tune_watershed_checks_the_ground_truth_before_the_first_watershed(labels):
    image = np.where(labels > 0, 200.0, 20.0)
    with pytest.raises(TypeError, match='gt_labels_zyx: instance labels must have an integer dtype'):
        tune_watershed(image, labels.astype(float), 50)
    with pytest.raises(ValueError, match='image_zyx: shape'):
        tune_watershed(image[1:], labels, 50)


def test_watershed_refuses_a_negative_or_nan_sigma():
    image = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    for sigma in (-1.0, np.nan):  # a negative sigma meant no smoothing, NaN too, silently
        with pytest.raises(ValueError, match=r'sigma must be a number >= 0 \(pixels\)'):
            watershed_segment(image, sigma=sigma)
