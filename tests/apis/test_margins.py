"""Empty margins: one intensity mapping per volume (shared_intensity_range) keeps slices of air above and below a
sample as dark as its pore for the model, segment_volume uses it for every slice of every view and records it for
resume; the fill outside the reconstructed field of view is neither seen nor labelled."""
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


def test_a_minmax_range_is_measured_as_training_measures_it(tiny_model, monkeypatch):
    """normalize='minmax': a training slice's min and max are taken with the fill around the field of view mirrored
    away; the volume's range took the fill's 0 as its low end (until 2026-12-07), so the sample came out brighter
    at inference than in training."""
    from libnet_mmdet.datasets.transforms import LoadTomoImageFromFile
    cfg = tiny_model.cfg.copy()
    cfg.test_dataloader.dataset.pipeline[0].normalize = 'minmax'
    monkeypatch.setattr(tiny_model, 'cfg', cfg)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    disc = (yy + 0.5 - 32) ** 2 + (xx + 0.5 - 32) ** 2 < 30 ** 2
    slices = [np.where(disc, rng.integers(3000, 9000, (64, 64)), 0).astype(np.uint16) for _ in range(4)]
    low, high = shared_intensity_range(tiny_model, slices)
    assert 3000 <= low < 3010 and 8990 < high <= 9000
    trained = LoadTomoImageFromFile(normalize='minmax')(dict(img=slices[0]))['img'][..., 0]
    inferred = slice_preparer(tiny_model, (low, high))(slices[0])[..., 0]
    assert abs(trained[disc].mean() - inferred[disc].mean()) < 1


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


def test_the_model_never_sees_nor_labels_the_outside_of_the_field_of_view():
    """The fill around the reconstructed disc is replaced by the mirror image of the inside for the model (mirrored
    particles out there are dropped) and never labelled; a particle cut by the edge of the field of view keeps its
    inside part."""
    from scipy import ndimage
    from libnet_mmdet.apis import segment_image
    from libnet_mmdet.volume.testing import same_instances
    yy, xx = np.mgrid[:96, :96]
    outside = (yy - 47.5) ** 2 + (xx - 47.5) ** 2 > 48 ** 2
    truth = np.zeros((96, 96), np.int32)
    for i, ((y, x), radius) in enumerate([((48, 48), 10), ((20, 30), 8), ((88, 48), 9)], start=1):  # 3: cut
        truth[(yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2] = i
    image = np.where(truth > 0, 100 + 20 * truth, 10).astype(np.uint16)
    image[outside] = 0
    seen = []

    def bright_regions(images):
        seen.extend(images)
        regions = [ndimage.label(np.asarray(image) >= 100) for image in images]
        return [(labels, np.ones(count, np.float32)) for labels, count in regions]

    labels, _ = segment_image(bright_regions, image, scale=1.0, tile_size=None)

    assert len(seen) == 1 and seen[0].min() == 10  # the fill was given the inside's values, not shown as 0
    assert ndimage.label(seen[0] >= 100)[1] > 3  # particle 2's mirror image beyond the rim: seen, not labelled
    assert not labels[outside].any()
    assert same_instances(labels, np.where(outside, 0, truth))


def test_instances_seen_mostly_in_the_fill_are_dropped_whole():
    """An instance with less than MIN_IN_VIEW of its pixels inside the field of view (a piece of the fill's stripes
    leaving a sliver at the rim) is dropped; one cut by the rim with more inside keeps its inside part."""
    from libnet_mmdet.apis import segment_image
    from libnet_mmdet.apis.inference import MIN_IN_VIEW, in_view
    outside = np.zeros((40, 60), bool)
    outside[:, 40:] = True  # the field of view ends at column 40
    predicted = np.zeros((40, 60), np.int32)
    predicted[5:15, 5:15] = 1  # inside
    predicted[20:30, 30:50] = 2  # half inside
    predicted[2:12, 39:59] = 3  # 1 of 20 columns inside: 5 %
    predicted[30:40, 39:60] = 4  # 1 of 21 columns inside: under 5 %
    assert 1 / 21 < MIN_IN_VIEW <= 1 / 20
    kept = in_view(predicted, outside)
    expected = np.where(outside | (predicted == 4), 0, predicted)
    np.testing.assert_array_equal(kept, expected)
    image = np.full((40, 60), 50, np.uint16)
    image[outside] = 0
    labels, details = segment_image(lambda images: [(predicted, np.ones(4, np.float32)) for _ in images], image,
                                    scale=1.0, tile_size=None)
    assert len(details['scores']) == 3 and not labels[outside].any() and not labels[30:40].any()


def test_the_phase_model_calls_the_fill_outside_the_field_of_view_pore():
    """Review of session 36: with the loader filling the field of view's outside from the nearest pixels inside,
    the phase model saw stripes there and gave them NMC and carbon-binder; outside is pore, as the flat fill was."""
    from helpers import REPO_ROOT
    from libnet_mmdet.apis import init_phase_model
    from libnet_mmdet.apis.phases import phase_probabilities
    model = init_phase_model(str(REPO_ROOT / 'configs' / 'nmc' / 'phase-fpn_r18-gn_fpn-c64_cpu-tiny_generalist.py'),
                             None)  # untrained: any phase anywhere
    image = np.random.default_rng(5).integers(5000, 60000, (64, 64)).astype(np.uint16)
    yy, xx = np.mgrid[:64, :64]
    outside = (yy - 31.5) ** 2 + (xx - 31.5) ** 2 > 30 ** 2
    image[outside] = 0

    probs, = phase_probabilities(model, [image])

    assert probs.shape == (3, 64, 64)
    np.testing.assert_array_equal(probs[:, outside], np.repeat([[1], [0], [0]], outside.sum(), axis=1))
    assert probs[1:, ~outside].max() > 0  # inside, the model's own probabilities
