"""esd_from_labels, esd_distribution_error and compare_label_volumes."""
import numpy as np
import pytest

from libnet_mmdet.evaluation import compare_label_volumes
from libnet_mmdet.evaluation.distribution import esd_distribution_error, esd_from_labels


def test_esd_from_labels_units():
    labels = np.zeros((10, 10, 10), np.uint16)
    labels[:2, :2, :2] = 5  # 8 voxels
    labels[5:9, 5:9, 5:9] = 2  # 64 voxels
    esd = esd_from_labels(labels, voxel_size_nm=100)
    assert esd == pytest.approx(np.cbrt(6 * np.array([64, 8]) * 0.1**3 / np.pi))  # in id order: 2, then 5
    assert esd_from_labels(np.zeros((2, 2, 2), np.uint8), 100).size == 0


def test_distribution_error_known_values():
    gt = np.arange(1.0, 11.0)
    result = esd_distribution_error(gt, gt[:-2] + 0.5)

    assert (result['n_true'], result['n_pred'], result['count_error']) == (10, 8, -2)
    assert result['count_relative_error'] == pytest.approx(-0.2)
    assert result['d50_true_um'] == pytest.approx(5.5) and result['d50_pred_um'] == pytest.approx(5.0)
    assert result['d50_relative_error'] == pytest.approx(-0.5 / 5.5)
    assert result['d10_true_um'] == pytest.approx(1.9) and result['d90_true_um'] == pytest.approx(9.1)
    assert esd_distribution_error(gt, gt + 0.25)['wasserstein_um'] == pytest.approx(0.25)
    assert esd_distribution_error(gt, gt)['wasserstein_um'] == 0


def test_distribution_error_with_an_empty_sample():
    result = esd_distribution_error([1.0, 2.0], [])
    assert result['n_pred'] == 0 and result['d50_pred_um'] is None and result['wasserstein_um'] is None
    assert esd_distribution_error([], [1.0])['count_relative_error'] is None
    with pytest.raises(ValueError, match='pred_esd_um: ESD values must be finite'):
        esd_distribution_error([1.0], [np.nan])


def test_compare_label_volumes():
    gt = np.zeros((12, 12, 12), np.uint16)
    gt[1:5, 1:5, 1:5] = 1
    gt[6:11, 6:11, 6:11] = 2
    pred = gt.copy()
    pred[pred == 2] = 0  # one particle missed

    stats, summary = compare_label_volumes(gt, pred, voxel_size_nm=50)

    assert stats.loc[0.5, ['tp', 'fn', 'fp']].tolist() == [1, 1, 0]
    assert summary['f1_50'] == pytest.approx(2 / 3) and summary['count_error'] == -1
    assert summary['d50_pred_um'] == pytest.approx(np.cbrt(6 * 64 * 0.05**3 / np.pi))
    with pytest.raises(ValueError, match='prediction: shape'):
        compare_label_volumes(gt, pred[:-1], voxel_size_nm=50)
