"""score_volume / compare_methods / tune_watershed / foreground_dice on small phantoms."""
import numpy as np
import pytest

from libnet_mmdet.analysis import tune_watershed
from libnet_mmdet.evaluation import compare_methods, foreground_dice
from libnet_mmdet.evaluation.compare import score_volume


def two_touching_balls():
    zz, yy, xx = np.mgrid[:24, :24, :48]
    labels = np.zeros(zz.shape, np.uint16)
    labels[(zz - 12) ** 2 + (yy - 12) ** 2 + (xx - 13) ** 2 < 10 ** 2] = 1
    labels[((zz - 12) ** 2 + (yy - 12) ** 2 + (xx - 33) ** 2 < 10 ** 2) & (labels == 0)] = 2
    return labels


def test_score_volume_perfect_and_merged():
    gt = two_touching_balls()
    perfect = score_volume(gt, gt, voxel_size_nm=100)
    assert perfect['f1_50'] == perfect['accuracy_mean'] == perfect['f1_50_2d'] == 1.0
    assert perfect['count_error'] == 0
    merged = score_volume(gt, (gt > 0).astype(np.uint16), voxel_size_nm=100)
    assert merged['count_error'] == -1 and merged['f1_50'] < 1.0
    table = compare_methods(gt, {'perfect': gt, 'merged': (gt > 0).astype(np.uint16)}, 100)
    assert list(table.index) == ['perfect', 'merged']
    assert table.loc['perfect', 'pq_50'] == 1.0 > table.loc['merged', 'pq_50']


def test_tune_watershed_finds_the_split():
    gt = two_touching_balls()
    rng = np.random.default_rng(0)
    image = np.where(gt > 0, 200.0, 20.0) + rng.normal(0, 5, gt.shape)
    image[:, :, 44:] += 80.0  # a third intensity class (carbon-binder-like), as in tomography
    best, table = tune_watershed(image, gt, 100, grid={'sigma': (1.0,), 'h_voxels': (1.0, 30.0)})
    assert best == {'sigma': 1.0, 'h_voxels': 1.0}  # h = 30 voxels cannot split the two balls
    assert len(table) == 2 and table['accuracy_mean'].is_monotonic_decreasing
    assert table.loc[0, 'f1_50'] == 1.0
    # a grid mixing integers and floats: the best setting as given (a table row turned n_classes into 2.0, which
    # watershed_segment refuses), so it can be passed back
    best, table = tune_watershed(image, gt, 100, grid={'sigma': (1.0,), 'h_voxels': (30.0, 1.0), 'n_classes': (2,)})
    assert best == {'sigma': 1.0, 'h_voxels': 1.0, 'n_classes': 2} and type(best['n_classes']) is int
    assert list(table['h_voxels']) == [1.0, 30.0]


def test_foreground_dice():
    truth = np.zeros((4, 4), bool)
    truth[:2] = True
    assert foreground_dice(truth.astype(np.uint8) * 3, truth) == 1.0
    assert foreground_dice(np.zeros((4, 4), np.uint8), truth) == 0.0
    assert foreground_dice(truth, truth) == 1.0  # a bool foreground (a threshold) is a prediction too
    with pytest.raises(ValueError, match=r'prediction shape \(3, 4\) != particle mask shape \(4, 4\)'):
        foreground_dice(np.zeros((3, 4), np.uint8), truth)  # (numpy's own broadcast error names shapes too)
    with pytest.raises(TypeError, match='pred_labels: instance labels must have an integer dtype'):
        foreground_dice(np.zeros((4, 4)), truth)
    with pytest.raises(TypeError, match='particle_mask: expected a bool mask, got uint8'):
        foreground_dice(truth.astype(np.uint8), np.where(truth, 1, 2).astype(np.uint8))  # a phase volume


def test_compare_methods_checks_every_prediction_before_scoring(monkeypatch):
    from libnet_mmdet.evaluation import compare

    def score_volume(*args):
        raise AssertionError('a method was scored before every prediction was checked')
    monkeypatch.setattr(compare, 'score_volume', score_volume)
    truth = np.zeros((4, 6, 6), np.uint16)
    truth[1:3, 1:4, 1:4] = 1
    with pytest.raises(ValueError, match="predictions\\['b'\\]: shape \\(4, 6, 5\\) does not match"):
        compare_methods(truth, {'a': truth, 'b': truth[..., :5]}, 50.0)
    with pytest.raises(TypeError, match='predictions: expected a dict'):
        compare_methods(truth, [truth], 50.0)
