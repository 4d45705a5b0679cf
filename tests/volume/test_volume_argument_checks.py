"""volume functions that divided by zero or silently changed meaning on bad arguments."""
import numpy as np
import pytest

from libnet_mmdet.volume import fuse_views, min_voxels_for_diameter, remove_small, segment_tiled
from libnet_mmdet.volume.testing import sphere_labels


def test_fusion_checks_slab_and_votes_first():
    labels = sphere_labels((8, 16, 16), [((4, 8, 8), 3)])
    for kwargs, message in ((dict(slab=0), 'slab must be an integer >= 1'),
                            (dict(min_votes=3), 'min_votes must be between 1 and the number of views \\(2\\)'),
                            (dict(min_votes=True), 'min_votes must be an integer >= 1, got True'),  # was taken as 1
                            (dict(grow_voxels=2.0), 'grow_voxels must be an integer >= 0, got 2.0')):
        with pytest.raises(ValueError, match=message):
            fuse_views(labels, labels, **kwargs)


def test_size_rules_refuse_nan_and_negative_sizes():
    labels = sphere_labels((8, 16, 16), [((4, 8, 8), 3)])
    with pytest.raises(ValueError, match='min_voxels must be a number >= 0, got nan'):
        remove_small(labels, np.nan)
    for diameter in (-30, 0, np.nan):
        with pytest.raises(ValueError, match='mean_diameter_vox must be a number > 0'):
            min_voxels_for_diameter(diameter)
    assert min_voxels_for_diameter(22) == 206


def test_tiled_segmentation_checks_merge_iou_before_predicting():
    def predict(tiles):
        raise AssertionError('a tile was predicted before merge_iou was checked')
    for merge_iou in (0, 1.5, np.nan, True):
        with pytest.raises(ValueError, match=r'merge_iou must be in \(0, 1\]'):
            segment_tiled(np.zeros((64, 64), np.float32), predict, 32, 8, merge_iou=merge_iou)


def test_fuse_views_refuses_a_min_voxels_it_cannot_use_before_fusing(monkeypatch):
    """'auto' (valid for segment_volume) failed in merge_small_lut after the whole fusion; -5 and 2.5 passed."""
    from libnet_mmdet.io import InputError
    from libnet_mmdet.volume import fusion

    def fuse_slabs(*args, **kwargs):
        raise AssertionError('the views were fused before min_voxels was checked')
    monkeypatch.setattr(fusion, 'fuse_slabs', fuse_slabs)
    views = np.zeros((4, 8, 8), np.uint16)
    for value in ('auto', -5, 2.5):
        with pytest.raises(InputError, match=f'min_voxels must be an integer >= 0, got {value!r}'):
            fuse_views(views, views, min_voxels=value)
