"""Matching functions that computed IoUs of unrelated pixels or accepted NaN thresholds."""
import numpy as np
import pytest

from libnet_mmdet.evaluation import match_instances, pairwise_iou


def test_pairwise_iou_checks_its_labels():
    gt = np.zeros((64, 64), np.uint16)
    gt[5:20, 5:20] = 1
    with pytest.raises(ValueError, match=r'pred_labels: shape \(32, 128\) does not match gt_labels shape \(64, 64\)'):
        pairwise_iou(gt, np.zeros((32, 128), np.uint16))
    with pytest.raises(TypeError, match='pred_labels: instance labels must have an integer dtype'):
        pairwise_iou(gt, gt.astype(float))
    assert pairwise_iou(gt, gt)[2].tolist() == [1.0]


def test_nan_thresholds_are_refused():
    gt = np.zeros((8, 8), np.uint16)
    gt[2:5, 2:5] = 1
    with pytest.raises(ValueError, match=r'thresholds: expected IoU thresholds in \(0, 1\]'):
        match_instances(gt, gt, thresholds=[0.5, np.nan])
