"""Instance matching of label images (2-D slices or 3-D volumes), with the semantics of StarDist's ``matching.py``.

For every threshold t: ground-truth and predicted instances are paired one-to-one (Hungarian assignment that
maximises first the number of pairs with IoU >= t, then, as StarDist's tie-break, the summed IoU of all paired
instances: below t = 0.5 the IoU summed over the TP pairs alone can fall short of its maximum, which moves PQ and
the mean matched IoU there, never TP; from 0.5 up a pair above t is the only one either instance can have);
TP = pairs with IoU >= t, FP = unpaired predictions, FN = unpaired ground truth; precision = TP / (TP + FP),
recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN), accuracy = TP / (TP + FP + FN) and panoptic quality
PQ = (sum of IoU over TP) / (TP + FP / 2 + FN / 2). Counts over many images are pooled before the ratios.
"""
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..io.labels import check_labels, check_same_shape, overlap_table

#: IoU thresholds 0.50, 0.55, ..., 0.95.
DEFAULT_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2))
STAT_COLUMNS = ('n_true', 'n_pred', 'tp', 'fp', 'fn', 'precision', 'recall', 'f1', 'accuracy',
                'mean_matched_iou', 'pq')


def check_thresholds(thresholds):
    """IoU thresholds as a (T,) float64 array, each in (0, 1]; ``ValueError`` otherwise."""
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    if thresholds.ndim != 1 or thresholds.size == 0 or not np.all((thresholds > 0) & (thresholds <= 1)):
        raise ValueError(f'thresholds: expected IoU thresholds in (0, 1], got {thresholds!r}')
    return thresholds


def pairwise_iou(gt_labels, pred_labels):
    """IoU of every overlapping (ground truth, prediction) pair, from a sparse contingency table.

    Args:
        gt_labels, pred_labels (np.ndarray): (H, W) or (Z, Y, X) integer label arrays of the same shape (0 =
            background).

    Returns:
        tuple: ``(gt_index, pred_index, iou, n_true, n_pred)``: for each overlapping pair, the 0-based ranks of
        the two instances among the sorted non-zero ids, and their IoU (float64); the instance counts.

    Raises:
        TypeError / ValueError: non-integer labels, negative ids, a shape mismatch.
    """
    gt_labels = check_labels(gt_labels, 'gt_labels', ndim=(2, 3), allow_empty=True)
    pred_labels = check_labels(pred_labels, 'pred_labels', ndim=(2, 3), allow_empty=True)
    check_same_shape(pred_labels, gt_labels.shape, 'pred_labels', 'gt_labels')
    return _pairwise_iou(gt_labels, pred_labels)


def _pairwise_iou(gt_labels, pred_labels):
    gt_ids, pred_ids, rows, cols, intersections, gt_sizes, pred_sizes = overlap_table(gt_labels, pred_labels)
    iou = intersections / (gt_sizes[rows] + pred_sizes[cols] - intersections)
    return rows, cols, iou, gt_ids.size, pred_ids.size


def match_counts(gt_labels, pred_labels, thresholds, name='labels'):
    """The counts behind the matching table of one pair of label arrays (pool many with :func:`pooled_stats`).

    Args:
        gt_labels, pred_labels (np.ndarray): (H, W) or (Z, Y, X) integer labels of one shape, 0 = background.
        thresholds (np.ndarray): (T,) float64 IoU thresholds (:func:`check_thresholds`).
        name (str): what the pair is called in error messages.

    Returns:
        tuple: ``(tp, sum_iou, n_true, n_pred)``: (T,) int64 true positives and (T,) float64 summed IoU of the
        true-positive pairs per threshold; the numbers of ground-truth and predicted instances.
    """
    gt_labels = check_labels(gt_labels, f'{name} ground truth', ndim=(2, 3), allow_empty=True)
    pred_labels = check_labels(pred_labels, f'{name} prediction', ndim=(2, 3), allow_empty=True)
    check_same_shape(pred_labels, gt_labels.shape, f'{name} prediction', 'ground truth')
    rows, cols, iou, n_true, n_pred = _pairwise_iou(gt_labels, pred_labels)
    tp = np.zeros(thresholds.size, np.int64)
    sum_iou = np.zeros(thresholds.size, np.float64)
    if iou.size == 0:
        return tp, sum_iou, n_true, n_pred
    # The assignment decomposes over the connected components of the overlap graph; most are single pairs.
    graph = coo_matrix((np.ones_like(iou), (rows, n_true + cols)), shape=(n_true + n_pred,) * 2)
    _, component = connected_components(graph, directed=False)
    pair_component = component[rows]
    pairs_per_component = np.bincount(pair_component)
    single = pairs_per_component[pair_component] == 1
    passes = iou[single, None] >= thresholds
    tp += passes.sum(axis=0)
    sum_iou += (passes * iou[single, None]).sum(axis=0)
    multi = np.flatnonzero(~single)
    multi = multi[np.argsort(pair_component[multi], kind='stable')]
    for group in np.split(multi, np.flatnonzero(np.diff(pair_component[multi])) + 1) if multi.size else []:
        group_rows, row_index = np.unique(rows[group], return_inverse=True)
        group_cols, col_index = np.unique(cols[group], return_inverse=True)
        scores = np.zeros((group_rows.size, group_cols.size))
        scores[row_index, col_index] = iou[group]
        n_matched = min(scores.shape)
        for t, threshold in enumerate(thresholds):
            costs = -(scores >= threshold).astype(np.float64) - scores / (2 * n_matched)
            true_ind, pred_ind = linear_sum_assignment(costs)
            matched = scores[true_ind, pred_ind]
            matched = matched[matched >= threshold]
            tp[t] += matched.size
            sum_iou[t] += matched.sum()
    return tp, sum_iou, n_true, n_pred


def pooled_stats(thresholds, counts):
    """The matching table of many pairs: their :func:`match_counts` summed before the ratios are taken.

    Args:
        thresholds (float | sequence[float]): the T IoU thresholds the counts were made at.
        counts (iterable[tuple]): :func:`match_counts` results (none: every count 0).

    Returns:
        pandas.DataFrame: as :func:`match_instances`.
    """
    thresholds = check_thresholds(thresholds)
    tp = np.zeros(thresholds.size, np.int64)
    sum_iou = np.zeros(thresholds.size, np.float64)
    n_true = n_pred = 0
    for pair_tp, pair_sum_iou, pair_n_true, pair_n_pred in counts:
        tp, sum_iou = tp + pair_tp, sum_iou + pair_sum_iou
        n_true, n_pred = n_true + int(pair_n_true), n_pred + int(pair_n_pred)
    fp, fn = n_pred - tp, n_true - tp
    with np.errstate(invalid='ignore', divide='ignore'):
        table = {
            'n_true': np.full(tp.size, n_true), 'n_pred': np.full(tp.size, n_pred), 'tp': tp, 'fp': fp, 'fn': fn,
            'precision': np.where(tp + fp > 0, tp / (tp + fp), 0.0),
            'recall': np.where(tp + fn > 0, tp / (tp + fn), 0.0),
            'f1': np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
            'accuracy': np.where(tp + fp + fn > 0, tp / (tp + fp + fn), 0.0),
            'mean_matched_iou': np.where(tp > 0, sum_iou / tp, 0.0),
            'pq': np.where(tp + fp + fn > 0, sum_iou / (tp + fp / 2 + fn / 2), 0.0),
        }
    return pd.DataFrame(table, index=pd.Index(thresholds, name='threshold'), columns=list(STAT_COLUMNS))


def match_instances(gt_labels, pred_labels, thresholds=DEFAULT_THRESHOLDS):
    """Match the instances of one ground-truth and one predicted label array (2-D or 3-D) at IoU thresholds.

    Args:
        gt_labels (np.ndarray): (H, W) or (Z, Y, X) integer labels, 0 = background; ids need not be consecutive.
        pred_labels (np.ndarray): predicted labels of the same shape.
        thresholds (float | sequence[float]): IoU thresholds in (0, 1]; default 0.50:0.05:0.95.

    Returns:
        pandas.DataFrame: one row per threshold (index ``threshold``), columns :data:`STAT_COLUMNS`
        (``mean_matched_iou`` = mean IoU of the TP pairs). Ratios with a zero denominator are 0.

    Raises:
        TypeError / ValueError: non-integer labels, wrong ndim, negative ids, shape mismatch, bad thresholds.
    """
    thresholds = check_thresholds(thresholds)
    return pooled_stats(thresholds, [match_counts(gt_labels, pred_labels, thresholds)])


def match_dataset(gt_label_list, pred_label_list, thresholds=DEFAULT_THRESHOLDS):
    """Match many (ground truth, prediction) pairs and pool TP / FP / FN and the TP IoU sums before the ratios.

    Args:
        gt_label_list, pred_label_list (sequence[np.ndarray]): equally long sequences of label arrays (each pair
            of the same shape; 2-D slices or 3-D volumes).
        thresholds (float | sequence[float]): IoU thresholds in (0, 1].

    Returns:
        pandas.DataFrame: as :func:`match_instances`, for the pooled counts.
    """
    thresholds = check_thresholds(thresholds)
    gt_label_list, pred_label_list = list(gt_label_list), list(pred_label_list)
    if len(gt_label_list) != len(pred_label_list):
        raise ValueError(f'got {len(gt_label_list)} ground-truth and {len(pred_label_list)} predicted label arrays')
    return pooled_stats(thresholds, (match_counts(gt_labels, pred_labels, thresholds, f'pair {index}')
                                     for index, (gt_labels, pred_labels) in enumerate(zip(gt_label_list,
                                                                                          pred_label_list))))


def matching_summary(stats):
    """Headline numbers of a :func:`match_instances` / :func:`match_dataset` table.

    Returns:
        dict: ``f1_50``, ``f1_75``, ``precision_50``, ``recall_50``, ``pq_50`` (at IoU 0.5 and 0.75) and
        ``accuracy_mean`` (mean accuracy over all thresholds of the table); a value whose threshold is not in
        the table is left out.
    """
    summary = {}
    for key, column, threshold in (('f1_50', 'f1', 0.5), ('f1_75', 'f1', 0.75), ('precision_50', 'precision', 0.5),
                                   ('recall_50', 'recall', 0.5), ('pq_50', 'pq', 0.5)):
        hit = np.isclose(stats.index.to_numpy(), threshold)
        if hit.any():
            summary[key] = float(stats[column].to_numpy()[hit][0])
    summary['accuracy_mean'] = float(stats['accuracy'].mean())
    return summary
