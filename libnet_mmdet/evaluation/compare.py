"""Side-by-side scoring of segmentation methods on a volume with known ground truth (used by ``tools/demo.py``
and ``benchmarks/bench_accuracy.py``; the classic watershed baseline is tuned with
:func:`~libnet_mmdet.analysis.tune_watershed`)."""
import numpy as np
import pandas as pd

from ..io.labels import check_labels, check_same_shape
from .distribution import compare_label_volumes
from .matching import match_dataset, matching_summary

def score_volume(gt_labels_zyx, pred_labels_zyx, voxel_size_nm):
    """Headline scores of one predicted (Z, Y, X) label volume against ground truth.

    3-D: instance matching (F1 at IoU 0.5 / 0.75, mean accuracy over IoU 0.50:0.05:0.95, PQ at 0.5), particle
    count error, ESD D50 relative error and Wasserstein distance (µm). 2-D: the same matching pooled over all
    xy slices (each slice's instances are the cross-sections of the 3-D labels), as LIBNet scored slices.

    Returns:
        dict: keys ``f1_50``, ``f1_75``, ``accuracy_mean``, ``pq_50``, ``count_error``, ``n_true``, ``n_pred``,
        ``d50_relative_error``, ``wasserstein_um`` (3-D) and ``f1_50_2d``, ``f1_75_2d``, ``accuracy_mean_2d``,
        ``pq_50_2d`` (xy slices).
    """
    _, summary_3d = compare_label_volumes(gt_labels_zyx, pred_labels_zyx, voxel_size_nm)
    keys_3d = ('f1_50', 'f1_75', 'accuracy_mean', 'pq_50', 'count_error', 'n_true', 'n_pred', 'd50_relative_error',
               'wasserstein_um')
    scores = {key: summary_3d.get(key) for key in keys_3d}
    summary_2d = matching_summary(match_dataset(list(gt_labels_zyx), list(pred_labels_zyx)))
    scores.update({f'{key}_2d': summary_2d[key] for key in ('f1_50', 'f1_75', 'accuracy_mean', 'pq_50')})
    return scores


def compare_methods(gt_labels_zyx, predictions, voxel_size_nm):
    """:func:`score_volume` for each method.

    Args:
        gt_labels_zyx (np.ndarray): (Z, Y, X) ground-truth instance labels.
        predictions (dict): method name -> (Z, Y, X) predicted labels of the same shape.
        voxel_size_nm (float | sequence[float]): voxel edge, or (Z, Y, X) edges, in nm.

    Returns:
        pandas.DataFrame: one row per method (index = name), columns as :func:`score_volume`.
    """
    if not isinstance(predictions, dict) or not predictions:
        raise TypeError(f'predictions: expected a dict of method name -> label volume, got '
                        f'{type(predictions).__name__}')
    gt_labels_zyx = check_labels(gt_labels_zyx, 'gt_labels_zyx', allow_empty=True)
    for name, labels in predictions.items():  # every method checked before any is scored
        check_same_shape(check_labels(labels, f'predictions[{name!r}]', allow_empty=True), gt_labels_zyx.shape,
                         f'predictions[{name!r}]', 'gt_labels_zyx')
    rows = {name: score_volume(gt_labels_zyx, labels, voxel_size_nm) for name, labels in predictions.items()}
    return pd.DataFrame.from_dict(rows, orient='index')


def foreground_dice(pred_labels, particle_mask):
    """Dice of the union of predicted particles against a particle-phase mask: 2|P ∩ G| / (|P| + |G|).

    Args:
        pred_labels (np.ndarray): (H, W) or (Z, Y, X) integer instance labels, or a bool foreground mask.
        particle_mask (np.ndarray): bool mask of the particle phase, same shape (a phase volume is not a mask:
            pass ``phases == NMC``).

    Returns:
        float: the Dice in [0, 1]; 1.0 when both are empty.

    Raises:
        TypeError / ValueError: labels that are neither integer nor bool, a mask that is not bool, a shape mismatch.
    """
    predicted = np.asarray(pred_labels)
    if predicted.dtype != bool:
        predicted = check_labels(predicted, 'pred_labels', ndim=(2, 3), allow_empty=True) > 0
    truth = np.asarray(particle_mask)
    if truth.dtype != bool:
        raise TypeError(f'particle_mask: expected a bool mask, got {truth.dtype} (a phase volume: pass phases == 1)')
    if predicted.shape != truth.shape:
        raise ValueError(f'prediction shape {predicted.shape} != particle mask shape {truth.shape}')
    total = predicted.sum() + truth.sum()
    return float(2 * np.logical_and(predicted, truth).sum() / total) if total else 1.0
