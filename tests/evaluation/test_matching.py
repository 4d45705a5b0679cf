"""match_instances / match_dataset: StarDist semantics on hand-computed cases and against a dense reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import linear_sum_assignment

from libnet_mmdet.evaluation import DEFAULT_THRESHOLDS, match_dataset, match_instances, matching_summary


def _squares(shape, boxes, ids=None):
    labels = np.zeros(shape, np.uint16)
    for index, (r0, r1, c0, c1) in enumerate(boxes):
        labels[r0:r1, c0:c1] = index + 1 if ids is None else ids[index]
    return labels


def _dense_reference(gt, pred, threshold):
    """StarDist's matching.py for one threshold: dense IoU matrix + Hungarian on the whole matrix."""
    gt_ids, pred_ids = np.unique(gt[gt > 0]), np.unique(pred[pred > 0])
    iou = np.zeros((gt_ids.size, pred_ids.size))
    for i, g in enumerate(gt_ids):
        for j, p in enumerate(pred_ids):
            inter = np.sum((gt == g) & (pred == p))
            iou[i, j] = inter / np.sum((gt == g) | (pred == p))
    n_matched = min(iou.shape)
    tp, sum_iou = 0, 0.0
    if n_matched and np.any(iou >= threshold):
        rows, cols = linear_sum_assignment(-(iou >= threshold).astype(float) - iou / (2 * n_matched))
        ok = iou[rows, cols] >= threshold
        tp, sum_iou = int(ok.sum()), float(iou[rows, cols][ok].sum())
    return tp, sum_iou, gt_ids.size, pred_ids.size


def test_identical_labels_score_one_at_every_threshold():
    labels = _squares((20, 20), [(0, 5, 0, 5), (6, 12, 6, 12), (14, 20, 0, 20)])
    stats = match_instances(labels, labels)
    assert list(stats.index) == list(DEFAULT_THRESHOLDS)
    assert (stats['tp'] == 3).all() and (stats['fp'] == 0).all() and (stats['fn'] == 0).all()
    assert np.allclose(stats[['precision', 'recall', 'f1', 'accuracy', 'mean_matched_iou', 'pq']], 1)


def test_shifted_instance_hand_computed():
    gt = _squares((10, 10), [(0, 4, 0, 4), (5, 9, 5, 9)])
    pred = _squares((10, 10), [(0, 4, 1, 5), (5, 9, 5, 9), (0, 2, 8, 10)], ids=[7, 3, 9])  # IoU 12/20 = 0.6

    stats = match_instances(gt, pred, thresholds=[0.5, 0.6, 0.65])

    assert stats.loc[0.5, ['tp', 'fp', 'fn']].tolist() == [2, 1, 0]
    assert stats.loc[0.6, ['tp', 'fp', 'fn']].tolist() == [2, 1, 0]  # IoU >= t, inclusive
    assert stats.loc[0.65, ['tp', 'fp', 'fn']].tolist() == [1, 2, 1]
    assert stats.loc[0.5, 'f1'] == pytest.approx(2 * 2 / (2 * 2 + 1))
    assert stats.loc[0.5, 'accuracy'] == pytest.approx(2 / 3)
    assert stats.loc[0.5, 'pq'] == pytest.approx((0.6 + 1.0) / (2 + 0.5))
    assert stats.loc[0.65, 'mean_matched_iou'] == pytest.approx(1.0)


def test_merged_and_split_instances():
    two = _squares((8, 16), [(0, 8, 0, 6), (0, 8, 6, 16)])  # 48 and 80 pixels
    merged = _squares((8, 16), [(0, 8, 0, 16)])
    # merged prediction covers both: IoU 48/128 and 80/128 = 0.625 -> one TP at 0.5, one FN
    stats = match_instances(two, merged, thresholds=[0.5, 0.7])
    assert stats.loc[0.5, ['tp', 'fp', 'fn']].tolist() == [1, 0, 1]
    assert stats.loc[0.7, ['tp', 'fp', 'fn']].tolist() == [0, 1, 2]
    # the other way round (one ground truth split in two predictions): one TP, one FP
    stats = match_instances(merged, two, thresholds=[0.5])
    assert stats.loc[0.5, ['tp', 'fp', 'fn']].tolist() == [1, 1, 0]


def test_relabelling_does_not_change_the_result():
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 6, (12, 12, 12)).astype(np.uint16)
    pred = np.roll(gt, 1, axis=0)
    permutation = np.array([0, 40, 7, 3_000_000_000, 11, 5], np.uint64)  # ids need not be small or ordered

    reference = match_instances(gt, pred)
    relabelled = match_instances(permutation[gt], permutation[pred])

    assert np.allclose(reference.to_numpy(), relabelled.to_numpy())
    # huge uint64 ids against small ones (evaluation audit: ids above 2**53 were compared as float64: F1 0.333)
    huge = np.arange(6, dtype=np.uint64) + np.uint64(2**60)
    huge[0] = 0
    assert np.allclose(reference.to_numpy(), match_instances(huge[gt], pred).to_numpy())


@settings(max_examples=40, deadline=None)
@given(gt=arrays(np.uint8, (7, 9), elements=st.integers(0, 5)),
       pred=arrays(np.uint8, (7, 9), elements=st.integers(0, 5)),
       threshold=st.sampled_from([0.1, 0.3, 0.5, 0.7]))
def test_agrees_with_dense_stardist_reference(gt, pred, threshold):
    stats = match_instances(gt, pred, thresholds=[threshold]).iloc[0]
    tp, sum_iou, n_true, n_pred = _dense_reference(gt, pred, threshold)
    assert (stats['tp'], stats['n_true'], stats['n_pred']) == (tp, n_true, n_pred)
    assert stats['mean_matched_iou'] * stats['tp'] == pytest.approx(sum_iou)


def test_empty_inputs_and_3d():
    empty = np.zeros((4, 5, 6), np.uint16)
    one = empty.copy()
    one[1:3, 1:3, 1:3] = 4
    assert match_instances(empty, empty).loc[0.5, ['tp', 'fp', 'fn', 'f1']].tolist() == [0, 0, 0, 0]
    assert match_instances(one, empty).loc[0.5, ['tp', 'fp', 'fn', 'recall']].tolist() == [0, 0, 1, 0]
    assert match_instances(empty, one).loc[0.5, ['tp', 'fp', 'fn', 'precision']].tolist() == [0, 1, 0, 0]
    assert match_instances(one, one).loc[0.95, 'tp'] == 1


def test_match_dataset_pools_counts():
    gt = _squares((10, 10), [(0, 4, 0, 4), (5, 9, 5, 9)])
    shifted = _squares((10, 10), [(0, 4, 1, 5), (5, 9, 5, 9), (0, 2, 8, 10)])

    pooled = match_dataset([gt, gt], [shifted, gt], thresholds=[0.5, 0.75])

    assert pooled.loc[0.5, ['n_true', 'n_pred', 'tp', 'fp', 'fn']].tolist() == [4, 5, 4, 1, 0]
    assert pooled.loc[0.75, ['tp', 'fp', 'fn']].tolist() == [3, 2, 1]
    assert pooled.loc[0.5, 'pq'] == pytest.approx((0.6 + 1 + 1 + 1) / (4 + 0.5))
    summary = matching_summary(pooled)
    assert summary['f1_50'] == pytest.approx(8 / 9) and summary['f1_75'] == pytest.approx(6 / 9)
    assert summary['accuracy_mean'] == pytest.approx((4 / 5 + 3 / 6) / 2)


def test_bad_inputs():
    labels = np.zeros((4, 4), np.uint16)
    with pytest.raises(ValueError, match=r'labels prediction: shape \(4, 5\) does not match ground truth'):
        match_instances(labels, np.zeros((4, 5), np.uint16))
    with pytest.raises(TypeError, match='labels ground truth: instance labels must have an integer dtype'):
        match_instances(labels.astype(float), labels)
    with pytest.raises(ValueError, match='expected a 2-D or 3-D'):
        match_instances(np.zeros(4, np.uint16), np.zeros(4, np.uint16))
    with pytest.raises(ValueError, match='thresholds'):
        match_instances(labels, labels, thresholds=[0.0])
    with pytest.raises(ValueError, match='pair 1 prediction: shape'):
        match_dataset([labels, labels], [labels, np.zeros((3, 3), np.uint16)])
    with pytest.raises(ValueError, match='got 2 ground-truth and 1 predicted'):
        match_dataset([labels, labels], [labels])


def test_pooled_counts_give_the_table_of_match_dataset():
    """The mmengine metric pools per-image counts through the same public function as match_dataset."""
    from libnet_mmdet.evaluation.matching import STAT_COLUMNS, check_thresholds, match_counts, pooled_stats
    thresholds = check_thresholds((0.5, 0.75))
    pairs = [(np.array([[1, 1, 0], [0, 2, 2]]), np.array([[3, 3, 0], [0, 0, 4]])), (np.zeros((2, 3), int),) * 2]
    counts = [match_counts(gt, pred, thresholds) for gt, pred in pairs]
    table = pooled_stats(thresholds, counts)
    assert tuple(table.columns) == STAT_COLUMNS
    assert table.equals(match_dataset(*zip(*pairs), thresholds=(0.5, 0.75)))
    assert table.loc[0.5, ['n_true', 'n_pred', 'tp']].tolist() == [2, 2, 2]
    empty = pooled_stats(thresholds, [])
    assert empty[['n_true', 'tp', 'f1']].to_numpy().sum() == 0 and len(empty) == 2
