"""One intensity mapping per volume (shared_intensity_range): slices of air above and below a sample stay as dark as
its pore for the model, instead of having their noise stretched to 0-255; segment_volume uses it for every slice of
every view and records it for resume."""
import json

import numpy as np
import pytest

from libnet_mmdet.apis import segment_volume
from libnet_mmdet.apis.inference import RANGE_SLICES, evenly_spaced, shared_intensity_range, slice_preparer
from libnet_mmdet.datasets.transforms import LoadTomoImageFromNDArray
from libnet_mmdet.synth import generate_volume, preset_params, render_volume
from libnet_mmdet.volume.testing import IntensityPredictor

PAD = 4  # air slices above and below


@pytest.fixture(scope='module')
def padded():
    """``(image_zyx, phases_zyx)``: a small synthetic sample with PAD slices of air (pore) rendered above and below."""
    params = preset_params('typical', mean_diameter_vox=12)
    volume = generate_volume((8, 64, 64), params, seed=3)
    padding = ((PAD, PAD), (0, 0), (0, 0))
    phases = np.pad(volume.phases_zyx, padding)
    return render_volume(np.pad(volume.labels_zyx, padding), phases, params, seed=3), phases


def volume_range(model, image):
    return shared_intensity_range(model, [image[z] for z in evenly_spaced(len(image), RANGE_SLICES)])


def test_air_slices_stay_dark(tiny_model, padded):
    image, phases = padded
    value_range = volume_range(tiny_model, image)
    own, shared = slice_preparer(tiny_model), slice_preparer(tiny_model, value_range)
    middle = len(image) // 2
    pore_gray = shared(image[middle])[..., 0][phases[middle] == 0].mean()

    assert shared(image[0])[..., 0].mean() < pore_gray  # the air is no brighter than the sample's pore
    assert own(image[0])[..., 0].mean() - own(image[middle])[..., 0][phases[middle] == 0].mean() > 50  # per slice
    assert np.abs(shared(image[middle]) - own(image[middle])).mean() < 10  # the sample's slices barely change


def test_the_range_is_the_loader_percentiles_of_sampled_pixels(tiny_model, padded):
    image, _ = padded
    low, high = volume_range(tiny_model, image)
    np.testing.assert_allclose((low, high), np.percentile(image, (0.5, 99.5)), rtol=0.05)
    assert evenly_spaced(len(image), RANGE_SLICES) == list(range(len(image)))  # 16 slices: all of them
    assert evenly_spaced(100, 3) == [0, 50, 99] and evenly_spaced(1, 3) == [0]
    assert shared_intensity_range(IntensityPredictor(), list(image)) is None  # a predictor sees the slices as they are


def test_segment_volume_maps_every_slice_of_every_view_alike(tiny_model, padded, tmp_path, monkeypatch):
    image, _ = padded
    seen = []
    transform = LoadTomoImageFromNDArray.transform

    def spy(self, results):
        seen.append(results.get('intensity_range'))
        return transform(self, results)

    monkeypatch.setattr(LoadTomoImageFromNDArray, 'transform', spy)
    segment_volume(tiny_model, image, views=('xy', 'xz'), scale=1.0, work_dir=tmp_path / 'work', keep_work=True,
                   progress=False)

    expected = volume_range(tiny_model, image)
    assert len(seen) == image.shape[0] + image.shape[1] and set(seen) == {expected}
    manifest = json.loads((tmp_path / 'work' / 'manifest.json').read_text())
    assert manifest['identity']['inference']['intensity_range'] == list(expected)  # a rerun resumes only alike
