"""Scale at inference (issue 15): a detector sees slices through its test pipeline's Resize and pastes its masks at
the slice's resolution, scale='auto' estimates the scale from a coarse first pass, a list of scales merges, and bad
scales are refused. Deterministic predictors and an untrained CPU-tiny detector with a stand-in forward pass."""
import copy
import json
import os
import warnings

import numpy as np
import pytest
import tifffile
import torch
from mmengine.config import Config
from scipy import ndimage

from helpers import TINY_CONFIG
from libnet_mmdet.apis import estimate_scale, segment_image, segment_volume, trained_diameter_range
from libnet_mmdet.apis.model import scaled_test_pipeline
from libnet_mmdet.evaluation import match_instances
from libnet_mmdet.io import InputError
from libnet_mmdet.volume.testing import IntensityPredictor
from libnet_mmdet.volume.tiling import merge_segmentations


class BandPredictor:
    """Connected components of pixels > 100 whose equivalent diameter is within ``band`` (px, as the predictor
    sees them), scored higher the nearer they are to 24 px; a predictor trained for 12-48 px particles."""

    fingerprint = 'BandPredictor-1'
    particle_diameter_px = (12, 48)

    def __init__(self, band=(0, np.inf)):
        self.band, self.shapes = band, []

    def __call__(self, images):
        results = []
        for image in images:
            image = np.asarray(image)
            self.shapes.append(image.shape[:2])
            regions, n = ndimage.label(image > 100)
            diameters = np.sqrt(4 * np.bincount(regions.ravel(), minlength=n + 1)[1:] / np.pi)
            keep = np.flatnonzero((diameters >= self.band[0]) & (diameters <= self.band[1]))
            lut = np.zeros(n + 1, np.int32)
            lut[keep + 1] = np.arange(1, keep.size + 1)
            scores = 0.9 - 0.1 * np.abs(np.log2(diameters[keep] / 24))
            results.append((lut[regions], scores.astype(np.float32)))
        return results


def disk_slice(diameters, cell, grid, rng):
    """(labels, uint8 image) of ``grid`` x ``grid`` disks, one per ``cell``-pixel cell, jittered; disk i has
    diameter ``diameters[i % len(diameters)]`` (+-10 %)."""
    side = cell * grid
    labels = np.zeros((side, side), np.int32)
    rows, cols = np.mgrid[:side, :side]
    for i in range(grid * grid):
        diameter = diameters[i % len(diameters)] * rng.uniform(0.9, 1.1)
        centre = (np.array(divmod(i, grid)) + 0.5) * cell + rng.uniform(-1, 1, 2) * (cell - diameter) / 4
        labels[(rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= (diameter / 2) ** 2] = i + 1
    return labels, np.where(labels > 0, 200, 20).astype(np.uint8)


@pytest.fixture(scope='module')
def small_disks():
    """64 disks of about 12 px on 192 x 192 pixels."""
    return disk_slice([12], 24, 8, np.random.default_rng(0))


def zoom(array, factor):
    return np.kron(array, np.ones((factor, factor), array.dtype))


# ---- detectors: the test pipeline's Resize, masks pasted at the slice's resolution ----------------------------------

def test_detector_masks_are_pasted_at_the_slice_resolution(monkeypatch):
    """At scale 0.25 the model sees a quarter-size slice, but the mask head pastes at the slice's own resolution:
    the outline is not a 4-pixel staircase (resizing the labels back by nearest neighbour made one)."""
    from mmengine.structures import InstanceData
    from libnet_mmdet.apis import init_segmenter
    model = init_segmenter(str(TINY_CONFIG), None, device='cpu')
    seen = []

    def test_step(data):  # the real preprocessing and mask head; one box around the bright pixels, a disk mask
        data = model.data_preprocessor(data, False)
        for inputs, sample in zip(data['inputs'], data['data_samples']):
            height, width = sample.metainfo['img_shape']
            seen.append((height, width))
            image = inputs[0, :height, :width]
            ys, xs = torch.nonzero(image > image.mean(), as_tuple=True)
            box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32)
            grid = (torch.arange(28) + 0.5) / 14 - 1
            logits = torch.where(grid[:, None] ** 2 + grid[None] ** 2 <= 1, 10.0, -10.0)[None, None]
            detection = InstanceData(bboxes=box, labels=torch.zeros(1, dtype=torch.long), scores=torch.ones(1))
            sample.pred_instances = model.roi_head.mask_head.predict_by_feat(
                (logits,), [detection], [sample.metainfo], model.test_cfg.rcnn, rescale=True)[0]
        return data['data_samples']

    monkeypatch.setattr(model, 'test_step', test_step)
    rows, cols = np.mgrid[:200, :200]
    truth = (rows - 97.3) ** 2 + (cols - 103.6) ** 2 <= 61.5 ** 2
    image = np.where(truth, 200, 30).astype(np.uint8)

    def outline_columns(mask):
        """Columns where a row of the mask starts or ends, modulo 4."""
        return set((np.flatnonzero(np.diff(mask.astype(int), axis=1).any(axis=0)) + 1) % 4)

    labels, details = segment_image(model, image, scale=0.25, tile_size=None)
    assert seen == [(50, 50)] and labels.shape == image.shape and details['scale'] == 0.25
    mask = labels == 1
    assert (mask & truth).sum() / (mask | truth).sum() > 0.9
    assert outline_columns(mask) == {0, 1, 2, 3}
    staircase, _ = segment_image(BandPredictor(), image, scale=0.25, tile_size=None)  # no pipeline: labels back
    assert outline_columns(staircase > 0) == {0}

    seen.clear()  # tiles are cut from the slice at tile_size / scale: 128 px, 32 px as the model sees them
    labels, _ = segment_image(model, image, scale=0.25, tile_size=32, overlap=8)
    assert seen == [(32, 32)] * 4 and labels.shape == image.shape


@pytest.mark.slow
def test_auto_scale_runs_a_real_detector(tiny_model, tiny_coco, monkeypatch):
    """The 1-epoch CPU-tiny model, told it was trained for 16-32 px: the coarse passes run through its pipeline at
    each candidate scale that leaves room for such a particle (128 px slice: 0.25 .. 4), then one scale is used."""
    from PIL import Image
    cfg = copy.deepcopy(tiny_model.cfg)
    cfg['particle_diameter_px'] = (16, 32)
    monkeypatch.setattr(tiny_model, 'cfg', cfg)
    seen = []
    test_step = tiny_model.test_step
    monkeypatch.setattr(tiny_model, 'test_step', lambda batch: seen.extend(
        tuple(x.shape[1:]) for x in batch['inputs']) or test_step(batch))
    image = np.asarray(Image.open(sorted((tiny_coco / 'images' / 'val').glob('*.png'))[0]))[..., 0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        labels, details = segment_image(tiny_model, image, score_thr=0.3, tile_size=None)
    info = details['scale_info']
    assert [c['scale'] for c in info['candidates']] == [0.25, 0.5, 1.0, 2.0, 4.0]
    assert seen[:5] == [(32, 32), (64, 64), (128, 128), (256, 256), (384, 384)]
    assert 22.6 / 600 <= details['scale'] <= 22.6 / 6 and labels.shape == image.shape
    found_nothing = any('found no particle' in str(warning.message) for warning in caught)
    assert (info['diameter_px'] is None) == found_nothing  # a barely trained model may find nothing confident
    side = int(128 * details['scale'] + 0.5)  # mmcv's rounding
    assert seen[5:] == [(side, side)]


def _module_with(cfg):
    module = torch.nn.Module()
    module.cfg = Config(cfg)
    return module


def _test_pipeline_cfg(*transforms):
    return dict(test_dataloader=dict(dataset=dict(pipeline=[
        dict(type='LoadTomoImageFromFile'), *transforms, dict(type='PackDetInputs')])))


def test_the_scale_multiplies_the_test_pipeline_resize():
    def resize(*transforms, scale):
        pipeline = scaled_test_pipeline(_module_with(_test_pipeline_cfg(*transforms)), scale)
        assert pipeline[0]['type'] == 'mmdet.LoadImageFromNDArray'
        return [t for t in pipeline if t['type'].endswith('Resize')]

    assert resize(dict(type='Resize', scale_factor=2.0, keep_ratio=True), scale=0.25) == [
        dict(type='Resize', scale_factor=0.5, keep_ratio=True)]
    assert resize(dict(type='Resize', scale_factor=(1.0, 2.0)), scale=0.5)[0]['scale_factor'] == (0.5, 1.0)
    assert resize(scale=0.5) == [dict(type='mmdet.Resize', scale_factor=0.5, keep_ratio=True)]
    fixed = dict(type='Resize', scale=(1333, 800), keep_ratio=True)
    assert resize(fixed, scale=1.0) == [fixed]
    with pytest.raises(ValueError, match=r'scale=0.5: the test pipeline of .* resizes every image to the fixed size'):
        resize(fixed, scale=0.5)


# ---- trained diameters and bad scales -----------------------------------------------------------------------------

def test_trained_diameter_range_reads_the_config_or_the_predictor():
    assert trained_diameter_range(_module_with(dict(particle_diameter_px=(12, 48)))) == (12.0, 48.0)
    assert trained_diameter_range(_module_with(dict())) is None
    assert trained_diameter_range(BandPredictor()) == (12.0, 48.0)
    assert trained_diameter_range(IntensityPredictor()) is None
    for bad in [(48, 12), (0, 12), ('a', 'b'), 12, (12, 24, 48), (12, float('inf'))]:
        with pytest.raises(InputError, match='particle_diameter_px: expected'):
            trained_diameter_range(_module_with(dict(particle_diameter_px=bad)))


@pytest.mark.parametrize('scale', [0, -0.5, float('nan'), float('inf'), 17, 'big', [], [0.5, 0], True])
def test_bad_scales_are_refused(small_disks, scale):
    with pytest.raises(ValueError, match=r'scale must be in \(0, 16\]'):
        segment_image(BandPredictor(), small_disks[1], scale=scale)


def test_auto_needs_recorded_diameters(small_disks, tmp_path):
    """A model that records no trained diameters: 'auto' is refused naming the fix, before anything is written;
    the default (None) is scale 1."""
    _, image = small_disks
    with pytest.raises(ValueError, match="scale='auto' .*records none: pass a number"):
        segment_image(IntensityPredictor(), image, scale='auto')
    with pytest.raises(ValueError, match='records none: pass a number'):
        estimate_scale(IntensityPredictor(), [image])
    assert segment_image(IntensityPredictor(), image)[1]['scale'] == 1.0
    predictor = IntensityPredictor()
    tifffile.imwrite(tmp_path / 'stack.tif', np.stack([image] * 3), photometric='minisblack')
    with pytest.raises(InputError, match='records none: pass a number'):
        segment_volume(predictor, tmp_path / 'stack.tif', out=tmp_path / 'labels.tif', scale='auto', progress=False)
    assert predictor.n_images == 0 and os.listdir(tmp_path) == ['stack.tif']


# ---- scale='auto' -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('factor', [1, 2, 4])
def test_auto_scale_recovers_a_known_rescale(small_disks, factor):
    """The same slice of ~12 px disks enlarged 1x, 2x, 4x (~12, 24, 48 px): the model (trained for 12-48 px, target
    band 24-36 px) should see them at 24, 24 and 36 px (scales 2, 1, 0.75), within 20 %."""
    _, image = small_disks
    scale, info = estimate_scale(BandPredictor(), zoom(image, factor))  # one slice (a list in the other tests)
    assert scale == pytest.approx({1: 2, 2: 1, 4: 0.75}[factor], rel=0.2)
    assert info['diameter_px'] == pytest.approx(12 * factor, rel=0.2)
    assert info['trained_diameter_px'] == (12, 48) and info['slices'] == 1 and 'median' in info['method']
    assert info['scales'] == (scale,) and info['fine_diameter_px'] is None  # one size: no finer second scale
    chosen = [c for c in info['candidates'] if c['scale'] == info['candidate']]
    assert chosen and chosen[0]['coverage'] == max(c['coverage'] for c in info['candidates']) > 0


def test_segment_image_resolves_auto_once_and_reports_it(small_disks):
    truth, image = small_disks
    slices = [zoom(image, 4)] * 4
    predictor = BandPredictor()
    results = segment_image(predictor, slices)  # default: auto, the predictor records its diameters
    assert len(results) == 4
    scale = results[0][1]['scale']
    assert scale == pytest.approx(0.75, rel=0.2)  # ~48 px disks to the band's high end, 36 px
    for labels, details in results:
        assert details['scale'] == scale and details['scale_info']['slices'] == 3  # up to 3 samples
        stats = match_instances(zoom(truth, 4), labels, thresholds=[0.8])
        assert stats.loc[0.8, 'tp'] == 64 and stats.loc[0.8, 'fp'] == 0
    assert predictor.shapes[-4:] == [(round(768 * scale),) * 2] * 4  # the 4 slices at the one scale


def test_auto_without_any_particle_is_scale_one_with_a_warning():
    with pytest.warns(UserWarning, match='found no particle of 12-48 px at any candidate scale'):
        scale, info = estimate_scale(BandPredictor(), [np.zeros((128, 128), np.uint8)])
    assert scale == 1.0 and info['diameter_px'] is None and info['candidates']


def test_segment_volume_estimates_once_prints_and_resumes(small_disks, tmp_path, capsys):
    """One scale for the volume, printed and stored in the manifest: a rerun with 'auto' reuses the parts."""
    truth, image = small_disks
    volume = np.stack([zoom(image[:96, :96], 4)] * 6)  # 16 disks of ~48 px
    tifffile.imwrite(tmp_path / 'stack.tif', volume)
    out = tmp_path / 'labels.tif'
    labels = segment_volume(BandPredictor(), tmp_path / 'stack.tif', out=out, slab=3, keep_work=True,
                            progress=False)
    assert labels.max() == 16
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith('scale: auto -> ') and line.endswith('; model trained for 12-48 px)')
    scale = float(line.split()[3])
    assert scale == pytest.approx(0.75, rel=0.2) and 'typical particle diameter' in line
    manifest = json.loads((tmp_path / 'labels.tif.work' / 'manifest.json').read_text())
    assert manifest['identity']['inference']['scale'] == scale
    parts = sorted((tmp_path / 'labels.tif.work' / 'parts').iterdir())
    stamps = [os.stat(part).st_mtime_ns for part in parts]
    segment_volume(BandPredictor(), tmp_path / 'stack.tif', out=out, slab=3, scale='auto', overwrite=True,
                   keep_work=True, progress=False)
    assert [os.stat(part).st_mtime_ns for part in parts] == stamps  # the same scale: every part reused


def two_sizes_slice(rng):
    """(labels, uint8 image) of 768 x 768 px: disks of ~40 px on a 64 px grid, and in the central 256 x 256 px
    disks of ~7 px on a 12 px grid (128 large, 484 small)."""
    side = 768
    rows, cols = np.mgrid[:side, :side]
    centres = [(y, x, 40) for y in range(32, side, 64) for x in range(32, side, 64)
               if max(abs(y - side / 2), abs(x - side / 2)) >= 160]
    centres += [(y, x, 7) for y in range(side // 2 - 126, side // 2 + 127, 12)
                for x in range(side // 2 - 126, side // 2 + 127, 12)]
    labels = np.zeros((side, side), np.int32)
    for i, (y, x, diameter) in enumerate(centres, start=1):
        labels[(rows - y) ** 2 + (cols - x) ** 2 <= (diameter * rng.uniform(0.9, 1.1) / 2) ** 2] = i
    return labels, np.where(labels > 0, 200, 20).astype(np.uint8)


def test_auto_adds_a_finer_scale_for_particles_far_below_the_typical_size(capsys, tmp_path):
    """Large disks cover most of the slice, so auto follows them (40 px -> the band's high end, 36 px); the
    candidate 4x finer finds the hundreds of 7 px disks: a second scale brings them to the band's low end (24 px),
    and a predictor that only knows 12-48 px finds both sizes, where the first scale alone misses every small one."""
    truth, image = two_sizes_slice(np.random.default_rng(0))
    scale, info = estimate_scale(BandPredictor(band=(12, 48)), image)
    assert scale == pytest.approx(36 / 40, rel=0.1) and info['diameter_px'] == pytest.approx(40, rel=0.1)
    assert info['fine_diameter_px'] == pytest.approx(7, rel=0.1)
    assert info['scales'] == (scale, pytest.approx(24 / 7, rel=0.1))
    labels, details = segment_image(BandPredictor(band=(12, 48)), image)
    assert details['scale'] == list(info['scales'])
    stats = match_instances(truth, labels, thresholds=[0.5]).loc[0.5]
    assert stats['tp'] == 612 and stats['fp'] == 0
    one_scale = match_instances(truth, segment_image(BandPredictor(band=(12, 48)), image, scale=scale)[0], [0.5])
    assert one_scale.loc[0.5, 'tp'] == 128
    tifffile.imwrite(tmp_path / 'stack.tif', np.stack([image] * 2))  # a volume: printed, min_voxels of the small
    segment_volume(BandPredictor(band=(12, 48)), tmp_path / 'stack.tif', min_voxels='auto', progress=False)
    scale_line, min_voxels_line = capsys.readouterr().out.strip().splitlines()[-2:]
    assert scale_line.startswith(f'scale: auto -> {scale:g}, ') and '(merged; typical particle diameters 41 px ' \
        'and 7 px; model trained for 12-48 px)' in scale_line
    assert min_voxels_line.endswith('7 px (measured))')


# ---- several scales -----------------------------------------------------------------------------------------------

def test_merge_drops_instances_mostly_taken_by_a_higher_score():
    a, b, c = (np.zeros((30, 20), np.int32) for _ in range(3))
    a[:10, :10] = 1
    b[:10, 4:14], b[20:, :10] = 1, 2  # b1 60 % inside a1: dropped; b2 alone
    c[:10, 7:17] = 1  # 30 % inside a1: kept, on its free pixels
    labels, scores = merge_segmentations([(a, [0.9]), (b, [0.8, 0.95]), (c, [0.7])])
    np.testing.assert_allclose(scores, [0.95, 0.9, 0.7])
    assert np.array_equal(labels == 1, b == 2) and np.array_equal(labels == 2, a == 1)
    assert np.array_equal(labels == 3, (c == 1) & (a == 0)) and labels.max() == 3


def test_merge_joins_a_finer_scales_core_to_the_particle_around_it():
    """A cracked particle seen whole at one scale and as its core at another, the core scoring higher: one particle,
    not an arc around a core (real slice 1501 before the join). A piece only partly inside stays apart, and within
    one segmentation nothing is joined."""
    coarse, fine = np.zeros((30, 30), np.int32), np.zeros((30, 30), np.int32)
    coarse[2:20, 2:20] = 1
    fine[8:14, 8:14] = 1  # the core, all inside coarse 1
    fine[16:26, 16:26] = 2  # 16 % inside coarse 1: its own particle
    labels, scores = merge_segmentations([(coarse, [0.7]), (fine, [0.95, 0.9])])
    np.testing.assert_allclose(scores, [0.9, 0.7])  # the joined particle keeps the score of the whole one
    assert np.array_equal(labels == 1, fine == 2) and np.array_equal(labels == 2, (coarse == 1) & (fine != 2))
    labels, scores = merge_segmentations([(coarse, [0.7]), (fine, [0.95, 0.9])], min_inside=1.01)  # off
    assert labels.max() == 3 and np.array_equal(labels == 1, fine == 1)
    single = merge_segmentations([(fine, [0.9, 0.95])])[0]
    assert np.array_equal(single == 1, fine == 2) and np.array_equal(single == 2, fine == 1)


def test_a_list_of_scales_finds_small_and_large_particles():
    """Disks of 12, 24 and 64 px; a predictor that only knows 10-40 px: scale 1 misses the large ones, 0.5 the
    small ones; [1, 0.5] finds every disk once (the 24 px ones, found at both, from the higher score: scale 1)."""
    truth, image = disk_slice([12, 24, 64], 96, 3, np.random.default_rng(1))

    def run(scale):
        labels, details = segment_image(BandPredictor(band=(10, 40)), image, scale=scale, tile_size=None)
        return match_instances(truth, labels, thresholds=[0.8]).loc[0.8], labels, details

    assert run(1.0)[0]['tp'] == 6 and run(0.5)[0]['tp'] == 6
    stats, labels, details = run([1.0, 0.5])
    assert stats['tp'] == 9 and stats['fp'] == 0 and details['scale'] == [1.0, 0.5]
    assert np.all(np.diff(details['scores']) <= 0)
    for i in np.flatnonzero(np.arange(9) % 3 == 1) + 1:  # 24 px disks: exact, as found at scale 1
        assert len(np.unique(labels[truth == i])) == 1 and np.array_equal(labels == labels[truth == i][0],
                                                                          truth == i)


# ---- min_voxels='auto' --------------------------------------------------------------------------------------------

def test_min_voxels_auto_follows_the_measured_particle_size(small_disks, tmp_path, capsys):
    """'auto' merges or removes pieces smaller than a sphere a third of the measured typical diameter across: a
    speck in one slice goes, the 16 disks stay; the line printed says the number and where it came from."""
    from libnet_mmdet.volume import min_voxels_for_diameter
    _, image = small_disks
    volume = np.stack([zoom(image[:96, :96], 4)] * 6)  # 16 disks of ~48 px
    volume[2, 2:6, 2:6] = 255  # a speck, far from the disks
    tifffile.imwrite(tmp_path / 'stack.tif', volume)
    kept = segment_volume(BandPredictor(), tmp_path / 'stack.tif', progress=False)  # Python default: 0
    assert kept.max() == 17 and kept[2, 3, 3] > 0
    labels = segment_volume(BandPredictor(), tmp_path / 'stack.tif', min_voxels='auto', progress=False)
    assert labels.max() == 16 and labels[2, 3, 3] == 0
    lines = capsys.readouterr().out.strip().splitlines()
    diameter = float(lines[-2].split('typical particle diameter ')[1].split(' px')[0])  # rounded to 1 px
    assert diameter == pytest.approx(48, rel=0.2) and lines[-1].startswith('min_voxels: auto -> ')
    assert lines[-1].endswith(f'(a sphere a third of the typical particle diameter across, {diameter:.0f} px '
                              '(measured))')
    number = int(lines[-1].split()[3])
    assert min_voxels_for_diameter(diameter - 0.5) <= number <= min_voxels_for_diameter(diameter + 0.5)


def test_min_voxels_auto_counts_voxels_of_the_volume_s_own_shape(small_disks, tmp_path, capsys):
    """Voxels 3x longer in z than the xy pixel: a sphere a third of the measured diameter across holds a third of
    the voxels it holds in cubic ones (until 2026-12-07 the cubic number, which removed particles up to ~D/2 across
    from every thick-slice scan); the voxel size recorded in the file counts as one given."""
    from libnet_mmdet.apis.volume import resolve_min_voxels
    from libnet_mmdet.volume import min_voxels_for_diameter
    measured = dict(diameter_px=48.0, fine_diameter_px=None)
    cubic = min_voxels_for_diameter(48.0)
    assert resolve_min_voxels(BandPredictor(), 'auto', (1.0,), measured, 100.0) == resolve_min_voxels(
        BandPredictor(), 'auto', (1.0,), measured) == (cubic, 'a sphere a third of the typical particle diameter '
                                                       'across, 48 px (measured)')
    number, why = resolve_min_voxels(BandPredictor(), 'auto', (1.0,), measured, (300.0, 100.0, 100.0))
    assert number == round(cubic / 3) and why.endswith('48 px (measured), in voxels 3 px long in z')
    _, image = small_disks
    tifffile.imwrite(tmp_path / 'stack.tif', np.stack([zoom(image[:96, :96], 4)] * 4), imagej=True,
                     resolution=(1 / 0.1, 1 / 0.1), metadata=dict(axes='ZYX', spacing=0.3, unit='um'))
    segment_volume(BandPredictor(), tmp_path / 'stack.tif', min_voxels='auto', progress=False)
    diameter_line, min_voxels_line = capsys.readouterr().out.strip().splitlines()[-2:]
    diameter = float(diameter_line.split('typical particle diameter ')[1].split(' px')[0])
    number = int(min_voxels_line.split()[3])  # the diameter printed is rounded to 1 px
    assert min_voxels_for_diameter(diameter - 0.5) / 3 - 1 <= number <= min_voxels_for_diameter(diameter + 0.5) / 3
    assert min_voxels_line.endswith('in voxels 3 px long in z)')


def test_min_voxels_auto_needs_recorded_diameters_and_none_falls_back_to_zero(tmp_path):
    from libnet_mmdet.apis.volume import resolve_min_voxels
    predictor = IntensityPredictor()
    tifffile.imwrite(tmp_path / 'stack.tif', np.zeros((3, 32, 32), np.uint8), photometric='minisblack')
    with pytest.raises(InputError, match="min_voxels='auto' .*records none"):
        segment_volume(predictor, tmp_path / 'stack.tif', out=tmp_path / 'labels.tif', min_voxels='auto',
                       progress=False)
    assert predictor.n_images == 0 and os.listdir(tmp_path) == ['stack.tif']
    assert resolve_min_voxels(predictor, None, (1.0,), None) == (0, None)
    assert resolve_min_voxels(predictor, 7, (1.0,), None) == (7, None)
    number, why = resolve_min_voxels(BandPredictor(), None, (0.5,), None)  # no estimate: trained middle / scale
    assert number == round(np.pi / 6 * (24 / 0.5 / 3) ** 3) and why.endswith('48 px (the trained middle at this scale)')
    with pytest.raises(InputError, match="min_voxels must be 'auto' or an integer >= 0, got 'big'"):
        segment_volume(predictor, tmp_path / 'stack.tif', min_voxels='big', progress=False)
