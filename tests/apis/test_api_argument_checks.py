"""Settings of segment_volume / segment_image that were checked only after the model pass (or never): refused
first, by name."""
import numpy as np
import pytest

from libnet_mmdet.apis import check_volume_args, segment_image
from libnet_mmdet.io import InputError
from libnet_mmdet.volume.testing import IntensityPredictor


@pytest.mark.parametrize('kwargs, message', [
    (dict(views=('xy', 'xz', 'yz'), min_votes=4), 'min_votes must be at most the number of views'),
    (dict(min_votes=0), 'min_votes must be an integer >= 1'),
    (dict(min_overlap=float('nan')), r'min_overlap must be in \(0, 1\]'),
    (dict(min_overlap=0), r'min_overlap must be in \(0, 1\]'),
    (dict(grow_voxels=-1), 'grow_voxels must be an integer >= 0'),
    (dict(batch_size=2.0), 'batch_size must be an integer >= 1, got 2.0'),
    (dict(tile_size='64'), "tile_size must be an integer >= 1, got '64'"),  # failed in int() without the name
    (dict(tile_size=float('inf')), 'tile_size must be an integer >= 1, got inf'),  # was an OverflowError
    (dict(tile_size=64, overlap=2.0), 'overlap must be an integer >= 0, got 2.0'),
    (dict(merge_iou=-0.1), r'merge_iou must be in \(0, 1\]'),
    (dict(merge_iou=float('nan')), r'merge_iou must be in \(0, 1\]'),
    (dict(score_thr=float('nan')), r'score_thr must be in \[0, 1\]'),
])
def test_volume_settings_are_refused_before_anything(tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message):
        check_volume_args(str(tmp_path / 'stack.tif'), out=str(tmp_path / 'labels.tif'), **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_slice_settings_are_refused_by_name():
    image = np.zeros((16, 16), np.uint8)
    for kwargs, message in ((dict(batch_size=np.nan), 'batch_size must be an integer >= 1'),
                            (dict(merge_iou=2), r'merge_iou must be in \(0, 1\]')):
        with pytest.raises(ValueError, match=message):
            segment_image(IntensityPredictor(), image, **kwargs)
    assert segment_image(IntensityPredictor(), image, batch_size=np.int64(2))[0].shape == (16, 16)
