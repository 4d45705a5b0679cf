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


@pytest.fixture(scope='module')
def untrained_phase_model():
    """The CPU-tiny phase model with its random initialisation: the checks come before any slice is predicted."""
    from helpers import REPO_ROOT
    from libnet_mmdet.apis import init_phase_model
    return init_phase_model(str(REPO_ROOT / 'configs' / 'nmc' / 'phase-fpn_r18-gn_fpn-c64_cpu-tiny_generalist.py'),
                            None)


def test_predict_phases_refuses_views_it_cannot_use_and_colour_or_complex_images(untrained_phase_model):
    """No usable view gave an all-pore volume without a word; a colour image was taken as a volume."""
    from libnet_mmdet.apis import predict_phases
    from libnet_mmdet.io import ImageFormatError
    volume = np.random.default_rng(0).integers(0, 255, (8, 40, 40)).astype(np.uint8)
    with pytest.raises(ValueError, match="views must be 'auto' or distinct names"):
        predict_phases(untrained_phase_model, volume, views=())
    for views in (('xz',), ('xz', 'yz')):
        with pytest.raises(ValueError, match=r'none is usable for a volume of shape \(Z, Y, X\) = \(8, 40, 40\)'):
            predict_phases(untrained_phase_model, volume, views=views)
    with pytest.raises(ImageFormatError, match=r'image: shape \(40, 40, 3\) is an \(H, W, 3\) colour image'):
        predict_phases(untrained_phase_model, np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(ValueError, match='volume of integers or floats, got shape .* complex64'):
        predict_phases(untrained_phase_model, volume.astype(np.complex64))
    phases, details = predict_phases(untrained_phase_model, volume[:, :32, :32], views='xy')  # one name: one view
    assert phases.shape == (8, 32, 32) and details['views'] == ['xy']


def test_estimate_scale_and_segment_volume_check_their_arguments_before_any_pass(tmp_path):
    """A batch size of 0 failed in range(), a reversed intensity range gave a black input and scale 1 with a
    warning, a colour image was segmented as H slices of (W, 3) pixels, NaN in a late slice of an array was found
    after the slices before it were segmented."""
    from libnet_mmdet.apis import estimate_scale, segment_volume
    from libnet_mmdet.io import ImageFormatError
    predictor = IntensityPredictor()
    predictor.particle_diameter_px = (12, 48)
    volume = np.zeros((8, 40, 40), np.float32)
    for kwargs, message in ((dict(batch_size=0), 'batch_size must be an integer >= 1, got 0'),
                            (dict(intensity_range=(5000, 1)), r'intensity_range must be \(low, high\)'),
                            (dict(intensity_range=(np.nan, 1)), r'intensity_range must be \(low, high\)'),
                            (dict(intensity_range='auto'), r'intensity_range must be \(low, high\)')):
        with pytest.raises(InputError, match=message):
            estimate_scale(predictor, volume, **kwargs)
    for call in (lambda image: estimate_scale(predictor, image), lambda image: segment_volume(predictor, image)):
        with pytest.raises(ImageFormatError, match=r'shape \(64, 64, 3\) is an \(H, W, 3\) colour image'):
            call(np.zeros((64, 64, 3), np.uint8))
    volume[-1, 3, 4] = np.nan
    with pytest.raises(ImageFormatError, match=r'<array>: 1 NaN/Inf pixel\(s\), first at index \(7, 3, 4\)'):
        segment_volume(predictor, volume, scale=1.0, progress=False)
    assert predictor.n_images == 0


def test_a_single_channel_slice_is_a_slice():
    image = np.zeros((16, 16), np.uint8)
    image[4:10, 4:10] = 200
    labels, _ = segment_image(IntensityPredictor(), image[..., None])
    np.testing.assert_array_equal(labels, segment_image(IntensityPredictor(), image)[0])


def test_model_settings_that_do_not_build_are_one_input_error():
    """mmdet's KeyError ('invalid depth 7 for resnet', a misspelt type) came through as it was."""
    from helpers import TINY_CONFIG
    from libnet_mmdet.apis import init_segmenter
    for options, message in (({'model.backbone.depth': 7}, "KeyError: 'invalid depth 7 for resnet'"),
                             ({'model.type': 'MaskRCNNN'}, "KeyError: 'MaskRCNNN is not in the mmdet::model registry")):
        with pytest.raises(InputError, match=f'{TINY_CONFIG}: cannot build its model \\({message}'):
            init_segmenter(str(TINY_CONFIG), None, device='cpu', cfg_options=options)
