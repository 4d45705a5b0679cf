"""Particle size distributions (count, ESD percentiles, Wasserstein distance) and whole-volume comparison."""
import numpy as np
from scipy.stats import wasserstein_distance

from ..io.labels import check_labels, check_same_shape, compact_labels
from ..io.tiff import voxel_size_zyx
from .matching import DEFAULT_THRESHOLDS, match_instances, matching_summary


def equivalent_diameter_um(voxels, voxel_size_nm):
    """Equivalent spherical diameter ESD = (6 V / pi)^(1/3) in µm of particles of ``voxels`` voxels.

    Args:
        voxels (array-like): voxel counts.
        voxel_size_nm (float | sequence[float]): voxel edge (or (Z, Y, X) edges) in nm.
    """
    voxel_volume_um3 = np.prod(voxel_size_zyx(voxel_size_nm) / 1e3)
    return np.cbrt(6 * np.asarray(voxels, dtype=np.float64) * voxel_volume_um3 / np.pi)


def esd_from_labels(labels, voxel_size_nm):
    """Equivalent spherical diameters (µm) of the instances of a 3-D label volume, in increasing id order.

    Args:
        labels (np.ndarray): (Z, Y, X) integer instance labels, 0 = background.
        voxel_size_nm (float | sequence[float]): voxel edge, or (Z, Y, X) edges, in nm.

    Returns:
        np.ndarray: float64 ESDs, one per instance (empty when there is none).
    """
    labels, _ = compact_labels(check_labels(labels, 'labels', allow_empty=True))
    voxels = np.bincount(labels.ravel())[1:]
    voxels = voxels[voxels > 0]
    return equivalent_diameter_um(voxels, voxel_size_nm)


def esd_distribution_error(gt_esd_um, pred_esd_um):
    """How far a predicted particle size distribution is from the ground truth one.

    Args:
        gt_esd_um, pred_esd_um (array-like): ESDs (µm) of the ground-truth and predicted particles.

    Returns:
        dict: ``n_true``, ``n_pred``, ``count_error`` (n_pred - n_true), ``count_relative_error``
        (/ n_true), for each of ``d10``, ``d50``, ``d90``: ``{name}_true_um``, ``{name}_pred_um`` and
        ``{name}_relative_error`` ((pred - true) / true), and ``wasserstein_um`` (earth mover's distance
        between the two ESD samples, :func:`scipy.stats.wasserstein_distance`). Values that need a missing
        sample or a zero denominator are ``None``.
    """
    gt_esd_um = np.asarray(gt_esd_um, dtype=np.float64).ravel()
    pred_esd_um = np.asarray(pred_esd_um, dtype=np.float64).ravel()
    for name, values in (('gt_esd_um', gt_esd_um), ('pred_esd_um', pred_esd_um)):
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(f'{name}: ESD values must be finite and >= 0')
    result = {'n_true': int(gt_esd_um.size), 'n_pred': int(pred_esd_um.size),
              'count_error': int(pred_esd_um.size - gt_esd_um.size),
              'count_relative_error': _ratio(pred_esd_um.size - gt_esd_um.size, gt_esd_um.size)}
    for percentile in (10, 50, 90):
        true = float(np.percentile(gt_esd_um, percentile)) if gt_esd_um.size else None
        pred = float(np.percentile(pred_esd_um, percentile)) if pred_esd_um.size else None
        result[f'd{percentile}_true_um'] = true
        result[f'd{percentile}_pred_um'] = pred
        result[f'd{percentile}_relative_error'] = (None if true is None or pred is None
                                                   else _ratio(pred - true, true))
    result['wasserstein_um'] = (float(wasserstein_distance(gt_esd_um, pred_esd_um))
                                if gt_esd_um.size and pred_esd_um.size else None)
    return result


def _ratio(numerator, denominator):
    return float(numerator / denominator) if denominator else None


def compare_label_volumes(gt_labels, pred_labels, voxel_size_nm, thresholds=None):
    """3-D matching table and size-distribution errors of a predicted label volume against ground truth.

    Args:
        gt_labels, pred_labels (np.ndarray): (Z, Y, X) integer instance labels of the same shape.
        voxel_size_nm (float | sequence[float]): voxel edge, or (Z, Y, X) edges, in nm.
        thresholds (sequence[float] | None): IoU thresholds; ``None`` = 0.50:0.05:0.95.

    Returns:
        tuple: ``(stats, summary)``: the per-threshold matching table (:func:`match_instances`) and a dict with
        the headline matching numbers (:func:`matching_summary`) and :func:`esd_distribution_error`.
    """
    gt_labels = check_labels(gt_labels, 'ground truth', allow_empty=True)
    pred_labels = check_labels(pred_labels, 'prediction', allow_empty=True)
    check_same_shape(pred_labels, gt_labels.shape, 'prediction', 'ground truth')
    voxel_size_zyx(voxel_size_nm)  # before the matching
    stats = match_instances(gt_labels, pred_labels, DEFAULT_THRESHOLDS if thresholds is None else thresholds)
    summary = {**matching_summary(stats),
               **esd_distribution_error(esd_from_labels(gt_labels, voxel_size_nm),
                                        esd_from_labels(pred_labels, voxel_size_nm))}
    return stats, summary
