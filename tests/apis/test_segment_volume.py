"""segment_volume end to end with a deterministic predictor: exact 3D recovery, streaming inputs, resume after an
interruption, and clear errors for bad volumes."""
import json
import os
import re
import shutil
import warnings

import numpy as np
import pytest
import tifffile

from libnet_mmdet.io import read_volume
from libnet_mmdet.apis import segment_image, segment_volume
from libnet_mmdet.io import ImageFormatError, InputError, LabelVolumeWriter, open_volume
from libnet_mmdet.evaluation import match_instances
from libnet_mmdet.volume.testing import IntensityPredictor, same_instances, sphere_labels

SPHERES = [((6, 10, 10), 5), ((8, 10, 20.5), 5.5), ((14, 24, 14), 6), ((3, 26, 27), 4), ((17, 8, 27), 3.5)]
SHAPE = (20, 32, 34)


@pytest.fixture(scope='module')
def truth():
    return sphere_labels(SHAPE, SPHERES)


@pytest.fixture(scope='module')
def image(truth):
    """Each sphere drawn with its own intensity (what IntensityPredictor separates)."""
    intensities = np.array([0, 200, 120, 90, 160, 240], np.uint8)
    return intensities[truth]


@pytest.fixture
def image_tif(image, tmp_path):
    path = tmp_path / 'stack.tif'
    tifffile.imwrite(path, image)
    return path


@pytest.mark.parametrize('views', [('xy',), ('xy', 'xz', 'yz'), ('xz', 'yz')])
def test_recovers_the_particles_exactly(image_tif, truth, views, tmp_path):
    out = tmp_path / 'labels.tif'
    labels = segment_volume(IntensityPredictor(), image_tif, out=out, views=views, slab=6, voxel_size_nm=50,
                            progress=False)
    assert isinstance(labels, np.memmap) and labels.dtype == np.uint16
    assert same_instances(labels, truth)
    assert sorted(os.listdir(tmp_path)) == ['labels.tif', 'stack.tif']  # work folder removed after success
    _, voxel_size = read_volume(out)
    np.testing.assert_allclose(voxel_size, [50, 50, 50])


class ContextPredictor(IntensityPredictor):
    """An IntensityPredictor with 2.5D input: it records the (H, W, 3) stacks it is given and reads their centre."""

    context_slices = True

    def __init__(self):
        super().__init__()
        self.seen = []

    def __call__(self, images):
        self.seen += [np.array(image) for image in images]
        return super().__call__([image[..., 1] for image in images])


def test_a_model_with_context_slices_gets_each_slice_between_its_neighbours(image, truth, tmp_path):
    predictor = ContextPredictor()
    labels = segment_volume(predictor, image, views=('xy', 'xz', 'yz'), slab=6, progress=False,
                            work_dir=tmp_path / 'work', keep_work=True)
    assert same_instances(labels, truth)
    manifest = json.loads((tmp_path / 'work' / 'manifest.json').read_text())
    assert manifest['identity']['inference']['context_slices'] is True  # a resume needs the same reading
    expected = []
    for axis in range(3):
        n = image.shape[axis]
        expected += [np.stack([np.take(image, max(i - 1, 0), axis), np.take(image, i, axis),
                               np.take(image, min(i + 1, n - 1), axis)], axis=-1).tobytes() for i in range(n)]
    assert sorted(seen.tobytes() for seen in predictor.seen) == sorted(expected)


def test_a_2d_slice_reaches_a_model_with_context_slices_as_the_slice_in_every_channel(image, truth, monkeypatch):
    predictor = ContextPredictor()
    labels, _ = segment_image(predictor, image[6], scale=1)
    np.testing.assert_array_equal(labels > 0, truth[6] > 0)
    assert [seen.shape for seen in predictor.seen] == [image[6].shape + (3,)]
    assert (predictor.seen[0] == image[6][..., None]).all()
    # scale='auto' samples the volume as the model reads it: xy slices between their neighbours
    monkeypatch.setattr(ContextPredictor, 'particle_diameter_px', (8, 16), raising=False)
    predictor = ContextPredictor()
    segment_volume(predictor, image, scale='auto', progress=False)
    assert all(seen.ndim == 3 and seen.shape[-1] == 3 for seen in predictor.seen)


def test_in_memory_and_file_output_agree(image, image_tif, tmp_path):
    in_memory = segment_volume(IntensityPredictor(), image, progress=False)
    to_file = segment_volume(IntensityPredictor(), image_tif, out=tmp_path / 'l.tif', progress=False)
    np.testing.assert_array_equal(in_memory, to_file)
    # numpy integers are integers (they failed in the work folder's JSON record, after the first passes)
    numpy_ints = segment_volume(IntensityPredictor(), image_tif, out=tmp_path / 'n.tif', slab=np.int64(6),
                                batch_size=np.int32(2), tile_size=np.int64(16), overlap=np.int64(4), progress=False)
    np.testing.assert_array_equal(numpy_ints, to_file)


def test_folder_and_compressed_inputs_stream(image, truth, tmp_path):
    folder = tmp_path / 'slices'
    folder.mkdir()
    for z, slice_hw in enumerate(image):
        tifffile.imwrite(folder / f'z{z}.tif', slice_hw)
    assert same_instances(segment_volume(IntensityPredictor(), folder, views=('xy', 'xz'), progress=False), truth)
    tifffile.imwrite(tmp_path / 'zlib.tif', image, compression='zlib')
    assert same_instances(segment_volume(IntensityPredictor(), tmp_path / 'zlib.tif', views=('xy', 'yz'),
                                         progress=False), truth)


def test_a_single_slice_volume_keeps_its_shape(image, tmp_path):
    labels = segment_volume(IntensityPredictor(), image[6:7], out=tmp_path / 'one.tif', progress=False)
    assert labels.shape == (1,) + image.shape[1:] and labels.max() > 0


def test_min_voxels_removes_small_particles(image, truth):
    labels = segment_volume(IntensityPredictor(), image, min_voxels=200, progress=False)
    sizes = np.bincount(truth.ravel())[1:]
    assert labels.max() == (sizes >= 200).sum() < len(SPHERES)


def test_interrupted_run_resumes_from_finished_slabs(image_tif, tmp_path):
    out = tmp_path / 'labels.tif'
    reference = np.array(segment_volume(IntensityPredictor(), image_tif, out=tmp_path / 'ref.tif', slab=4,
                                        views=('xy', 'xz'), progress=False))
    interrupted = IntensityPredictor(fail_after=30)  # xy: 5 slabs of 4 slices, then xz: 7 of 8 slabs... stops
    with pytest.raises(KeyboardInterrupt):
        segment_volume(interrupted, image_tif, out=out, slab=4, views=('xy', 'xz'), progress=False)
    assert not out.exists()
    parts = sorted(p.name for p in (tmp_path / 'labels.tif.work' / 'parts').iterdir())
    assert parts == [f'xy_{z:06d}.json' for z in range(0, 20, 4)] + ['xz_000000.json', 'xz_000004.json']  # 20 + 8
    restarted = IntensityPredictor()
    labels = segment_volume(restarted, image_tif, out=out, slab=4, views=('xy', 'xz'), progress=False)
    assert restarted.n_images == SHAPE[1] - 8  # only the unfinished xz slabs
    np.testing.assert_array_equal(labels, reference)
    assert not (tmp_path / 'labels.tif.work').exists()


def test_a_predictor_without_a_fingerprint_never_resumes_another(image_tif, tmp_path):
    """Two predictor functions of one name: the second must not take the first one's finished slabs."""
    def make_predict(blank):
        inner = IntensityPredictor(fail_after=None if blank else 8)

        def predict(images):
            results = inner(images)
            return [(np.zeros_like(labels), scores[:0]) for labels, scores in results] if blank else results
        return predict

    out = tmp_path / 'labels.tif'
    with pytest.raises(KeyboardInterrupt):
        segment_volume(make_predict(blank=False), image_tif, out=out, slab=4, progress=False)
    assert (tmp_path / 'labels.tif.work' / 'parts').is_dir()
    with pytest.warns(UserWarning, match='model'):
        labels = segment_volume(make_predict(blank=True), image_tif, out=out, slab=4, progress=False)
    assert labels.max() == 0  # nothing of the first predictor's slabs


def test_a_changed_program_does_not_resume_its_slabs(image_tif, tmp_path, monkeypatch):
    """An upgrade (or an edit) of the package between an interrupted run and its rerun: the finished slabs were
    segmented by another program, so the rerun starts afresh and says why."""
    import libnet_mmdet.apis.model as model_module

    out = tmp_path / 'labels.tif'
    with pytest.raises(KeyboardInterrupt):
        segment_volume(IntensityPredictor(fail_after=8), image_tif, out=out, slab=4, progress=False)
    assert (tmp_path / 'labels.tif.work' / 'parts' / 'xy_000000.json').is_file()
    monkeypatch.setattr(model_module, '_source_digest', lambda: 'another version')
    restarted = IntensityPredictor()
    with pytest.warns(UserWarning, match=r'discarding .* \(code\.source\)'):
        segment_volume(restarted, image_tif, out=out, slab=4, progress=False)
    assert restarted.n_images == SHAPE[0]  # every slice segmented again


def test_code_fingerprint_follows_the_package_source(tmp_path, monkeypatch):
    import libnet_mmdet.apis.model as model_module

    fingerprint = model_module.code_fingerprint()
    assert set(fingerprint) == {'libnet_mmdet', 'source', 'torch', 'mmcv', 'mmdet', 'mmengine', 'numpy'}
    package = tmp_path / 'libnet_mmdet'  # a copy of the package, read through the module's __file__
    shutil.copytree(os.path.dirname(os.path.dirname(model_module.__file__)), package,
                    ignore=shutil.ignore_patterns('__pycache__'))
    monkeypatch.setattr(model_module, '__file__', str(package / 'apis' / 'model.py'))
    digests = []
    for edit in ('', '# an edit\n'):
        with open(package / 'apis' / 'volume.py', 'a') as f:
            f.write(edit)
        digests.append(model_module._source_digest.__wrapped__())  # uncached
    assert digests[0] == fingerprint['source'] != digests[1]


def _interrupt(image_tif, out, **kwargs):
    with pytest.raises(KeyboardInterrupt):
        segment_volume(IntensityPredictor(fail_after=8), image_tif, out=out, slab=4, progress=False, overwrite=True,
                       **kwargs)


def test_a_view_added_on_resume_is_not_called_damaged(image, image_tif, tmp_path):
    """Volume audit: resuming an xy run with xz added warned that the new view's array was 'missing or damaged'."""
    out = tmp_path / 'labels.tif'
    _interrupt(image_tif, out, views=('xy',), keep_work=True)
    resumed = IntensityPredictor()
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no warning at all
        labels = segment_volume(resumed, image_tif, out=out, views=('xy', 'xz'), slab=4, progress=False,
                                keep_work=True)
    assert resumed.n_images == SHAPE[0] - 8 + SHAPE[1]  # the finished xy slabs kept, every xz slice made
    np.testing.assert_array_equal(labels, segment_volume(IntensityPredictor(), image, views=('xy', 'xz'), slab=4,
                                                         progress=False))
    shutil.rmtree(f'{out}.work/view_xz.zarr')  # a view of the run lost: that one is called missing
    with pytest.warns(UserWarning, match=r'view_xz.zarr: missing or damaged .*segmenting the xz view again'):
        segment_volume(IntensityPredictor(), image_tif, out=out, views=('xy', 'xz'), slab=4, progress=False,
                       overwrite=True)


def test_changed_input_or_parameters_start_over(image, image_tif, tmp_path):
    out = tmp_path / 'labels.tif'
    _interrupt(image_tif, out)
    changed = image.copy()
    changed[1, 0, 0] = 7  # inside a finished slab
    tifffile.imwrite(image_tif, changed)
    restarted = IntensityPredictor()
    with pytest.warns(UserWarning, match=r'stack.tif \[z=0\]: the input changed'):
        labels = segment_volume(restarted, image_tif, out=out, slab=4, progress=False)
    assert restarted.n_images == SHAPE[0] - 4  # the changed slab again, the finished z=4..7 slab not
    np.testing.assert_array_equal(labels, segment_volume(IntensityPredictor(), changed, progress=False))
    tifffile.imwrite(image_tif, image)

    # out exists from here on: each run below replaces it (overwrite=True)
    _interrupt(image_tif, out, keep_work=True)
    restarted = IntensityPredictor()
    with pytest.warns(UserWarning, match=r'labels.tif.work: discarding its 2 finished slab\(s\), made with other '
                      r'settings \(inference.score_thr\); the run starts afresh'):
        segment_volume(restarted, image_tif, out=out, slab=4, score_thr=0.6, progress=False,
                       overwrite=True)  # other parameters
    assert restarted.n_images == SHAPE[0]

    _interrupt(image_tif, out)
    restarted = IntensityPredictor()
    segment_volume(restarted, image_tif, out=out, slab=4, resume=False, progress=False, overwrite=True)
    assert restarted.n_images == SHAPE[0]

    _interrupt(image_tif, out)
    smaller = image[:, :20]  # another shape: the stale scratch arrays of the work folder must not be reused
    tifffile.imwrite(image_tif, smaller)
    with pytest.warns(UserWarning, match=r'other settings \(input.shape\)'):
        labels = segment_volume(IntensityPredictor(), image_tif, out=out, slab=4, progress=False, overwrite=True)
    np.testing.assert_array_equal(labels, segment_volume(IntensityPredictor(), smaller, progress=False))


def test_post_processing_options_reuse_the_inference(image_tif, tmp_path):
    out = tmp_path / 'labels.tif'
    segment_volume(IntensityPredictor(), image_tif, out=out, slab=4, keep_work=True, progress=False)
    again = IntensityPredictor()
    labels = segment_volume(again, image_tif, out=out, slab=4, min_voxels=200, progress=False, overwrite=True)
    assert again.n_images == 0 and labels.max() < len(SPHERES)


@pytest.mark.parametrize('volume, error, message', [
    (np.zeros((16, 16), np.uint8), ValueError, 'expected a 3D .*segment_image'),
    (np.zeros((0, 16, 16), np.uint8), ValueError, 'empty volume'),
    (np.zeros((2, 2, 16, 16), np.uint8), ValueError, 'expected a 3D'),
])
def test_bad_volumes_are_refused(volume, error, message):
    with pytest.raises(error, match=message):
        segment_volume(IntensityPredictor(), volume, progress=False)


def test_nan_voxels_name_the_file_and_slice(image, tmp_path):
    volume = image.astype(np.float32)
    volume[13, 4, 4] = np.nan
    tifffile.imwrite(tmp_path / 'nan.tif', volume)
    with pytest.raises(ImageFormatError, match=r'nan.tif \[z=13\]: 1 NaN/Inf pixel'):
        segment_volume(IntensityPredictor(), tmp_path / 'nan.tif', out=tmp_path / 'l.tif', progress=False)


def test_unreadable_tiff_and_overwriting_the_input(tmp_path, image_tif):
    (tmp_path / 'bad.tif').write_bytes(b'MM\x00*garbage')
    with pytest.raises(ImageFormatError, match='bad.tif: not a readable TIFF'):
        segment_volume(IntensityPredictor(), tmp_path / 'bad.tif', progress=False)
    with pytest.raises(ValueError, match='would overwrite the input'):
        segment_volume(IntensityPredictor(), image_tif, out=image_tif, progress=False)
    with pytest.raises(ValueError, match='views must be'):
        segment_volume(IntensityPredictor(), image_tif, views=('xy', 'xy'), progress=False)


TILES_PER_SLICE = 4 * 4  # 128 x 136 px in 48 px tiles overlapping by at least 16 px: 4 rows of 4


def test_segment_image_batches_and_tiles_with_a_predictor(image):
    """A list of slices gives one result per slice; a forced small tile gives the same instances."""
    slices = [np.tile(image[z], (4, 4)) for z in (6, 8, 14)]  # 128 x 136: tiled with 48 px tiles
    whole, tiles = IntensityPredictor(), IntensityPredictor()
    untiled = segment_image(whole, slices)
    tiled = segment_image(tiles, slices, tile_size=48, overlap=16)
    assert len(tiled) == 3
    assert whole.n_images == 3 and tiles.n_images == 3 * TILES_PER_SLICE  # tiled indeed (equal results alone: no)
    for (labels, details), (want, want_details) in zip(tiled, untiled):
        np.testing.assert_array_equal(labels, want)
        assert details['scores'].shape == details['ids'].shape == (labels.max(),)
        assert details['boxes'].shape == (labels.max(), 4)
        np.testing.assert_array_equal(details['boxes'], want_details['boxes'])


@pytest.mark.parametrize('bad, message', [
    (np.zeros((3, 16, 16), np.uint8), r'expected a 2D .*segment_volume'),
    (np.zeros((0, 5), np.uint8), 'empty image'),
    (np.full((4, 4), np.nan, np.float32), 'NaN/Inf'),
])
def test_segment_image_refuses_bad_slices(bad, message):
    with pytest.raises(ValueError, match=message):
        segment_image(IntensityPredictor(), bad)


class ThresholdPredictor:
    """Connected components of pixels > 100, each scored 0.9; remembers the image shapes it was given."""

    fingerprint = 'ThresholdPredictor-1'

    def __init__(self):
        self.shapes = []

    def __call__(self, images):
        from scipy import ndimage
        self.shapes += [np.asarray(image).shape[:2] for image in images]
        results = []
        for image in images:
            labels, n = ndimage.label(np.asarray(image)[..., 0] > 100 if np.asarray(image).ndim == 3 else
                                      np.asarray(image) > 100)
            results.append((labels, np.full(n, 0.9, np.float32)))
        return results


def test_scale_resizes_slices_for_the_model_and_labels_back():
    """Particles twice the model's size: scale=0.5 runs the model on half-size slices, labels come back full size."""
    truth = sphere_labels((1, 96, 96), [((0, 24, 24), 14), ((0, 64, 60), 18), ((0, 20, 72), 10)])[0]
    image = np.where(truth > 0, 200, 20).astype(np.uint8)
    predictor = ThresholdPredictor()
    labels, details = segment_image(predictor, image, scale=0.5, tile_size=None)
    assert predictor.shapes == [(48, 48)] and labels.shape == image.shape
    stats = match_instances(truth, labels, thresholds=[0.9])
    assert stats.loc[0.9, 'tp'] == 3 and stats.loc[0.9, 'fp'] == 0
    assert details['boxes'].max() > 48  # boxes in pixels of the original slice
    volume = np.stack([image] * 3)
    np.testing.assert_array_equal(segment_volume(ThresholdPredictor(), volume, scale=0.5, progress=False)[1] > 0,
                                  labels > 0)
    with pytest.raises(ValueError, match='scale must be in'):
        segment_image(predictor, image, scale=0)


@pytest.mark.parametrize('existing', ['file', 'text file', 'folder'])
def test_an_existing_output_is_never_replaced(image_tif, tmp_path, existing):
    """Issue 17, defects 2 and 3: refused before the input is read or the model runs; no work folder is made."""
    out = tmp_path / 'labels.tif'
    if existing == 'folder':
        out.mkdir()
        message = 'labels.tif: is a folder'
    else:
        out.write_bytes(b'II*\x00earlier result' if existing == 'file' else b'my notes\n')
        message = 'labels.tif: exists; pass --overwrite'
    before = out.read_bytes() if out.is_file() else None
    predictor = IntensityPredictor()
    with pytest.raises(InputError, match=message):
        segment_volume(predictor, image_tif, out=out, progress=False)
    assert predictor.n_images == 0 and not (tmp_path / 'labels.tif.work').exists()
    if before is not None:
        assert out.read_bytes() == before
        labels = segment_volume(IntensityPredictor(), image_tif, out=out, progress=False, overwrite=True)
        assert labels.max() == len(SPHERES) and out.read_bytes() != before


@pytest.mark.parametrize('bad, message', [
    (dict(voxel_size_nm=0), 'voxel_size_nm: voxel sizes must be finite and > 0'),
    (dict(voxel_size_nm=(50, 50)), 'voxel_size_nm: expected one value or three'),
    (dict(slab=0), 'slab must be an integer >= 1'),
    (dict(min_voxels=-1), "min_voxels must be 'auto' or an integer >= 0"),
    (dict(score_thr=1.5), r'score_thr must be in \[0, 1\]'),
    (dict(scale=0), r'scale must be in \(0, 16\]'),
    (dict(batch_size=0), 'batch_size must be an integer >= 1'),
    (dict(tile_size=32, overlap=32), 'overlap must be an integer in'),
    (dict(tile_size=None, overlap=8), r'overlap=8 \(--overlap\): slices are not tiled'),  # ignored until 2026-12-07
    (dict(views=('xy', 'ab')), "views must be 'auto' or distinct names"),
    (dict(views=None), "views must be 'auto' or distinct names"),  # a TypeError traceback before 2026-12-07
])
def test_settings_are_checked_before_anything_is_read_or_run(image_tif, tmp_path, bad, message):
    """Issue 17, defect 3: --voxel-size-nm 0 used to fail after the whole inference."""
    predictor = IntensityPredictor()
    with pytest.raises(InputError, match=message):
        segment_volume(predictor, image_tif, out=tmp_path / 'labels.tif', progress=False, **bad)
    assert predictor.n_images == 0 and sorted(os.listdir(tmp_path)) == ['stack.tif']


def test_tiling_and_scale_checks_take_what_the_api_takes(tiny_model):
    """check_fixed_resize takes every scale check_scale takes (an array, a predictor callable: no test pipeline);
    resolve_tiling refuses an overlap where 'auto' finds no tile size (a predictor), as for tile_size=None."""
    from libnet_mmdet.apis import check_fixed_resize, resolve_tiling
    check_fixed_resize(tiny_model, np.array([0.5, 1.0]))
    check_fixed_resize(IntensityPredictor(), 0.5)
    check_fixed_resize(tiny_model, 'auto')
    assert resolve_tiling(tiny_model.cfg, 'auto', 32) == resolve_tiling(tiny_model, 'auto', 32) == (256, 32)
    assert resolve_tiling(IntensityPredictor(), 'auto') == (None, None)
    with pytest.raises(ValueError, match=r'overlap=32 \(--overlap\): slices are not tiled \(IntensityPredictor gives '
                       'no training size to tile at'):
        resolve_tiling(IntensityPredictor(), 'auto', 32)


def test_a_folder_of_other_files_is_never_the_work_folder(image_tif, tmp_path):
    """The work folder is deleted after success: a folder holding other files is refused, its files kept."""
    folder = tmp_path / 'data'
    folder.mkdir()
    (folder / 'keep.txt').write_text('mine')
    with pytest.raises(InputError, match='data: not a work folder of a volume run'):
        segment_volume(IntensityPredictor(), image_tif, out=tmp_path / 'labels.tif', work_dir=folder,
                       progress=False)
    assert os.listdir(folder) == ['keep.txt']


def test_a_deletion_of_the_work_folder_cut_short_leaves_one_the_next_run_takes(image_tif, tmp_path, monkeypatch):
    """Review 2026-12-07: a rerun with other settings empties the work folder; Ctrl-C while a view array went (after
    the manifest, deleted in listing order) left a folder every later run refused as 'not a work folder'. The
    manifest now goes last, the part files first; the same for the deletion after success."""
    from libnet_mmdet.volume import WorkFolder, workdir
    out, work = tmp_path / 'labels.tif', tmp_path / 'labels.tif.work'
    _interrupt(image_tif, out)
    real_rmtree, deleted = shutil.rmtree, []

    def rmtree_then_ctrl_c(path, *args, **kwargs):
        if deleted:  # the second folder
            raise KeyboardInterrupt
        deleted.append(os.path.basename(path))
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(workdir.shutil, 'rmtree', rmtree_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):  # other settings: the folder is emptied
        segment_volume(IntensityPredictor(), image_tif, out=out, slab=4, progress=False, score_thr=0.4)
    assert deleted == ['parts'] and 'manifest.json' in os.listdir(work) and len(os.listdir(work)) > 1
    monkeypatch.setattr(workdir.shutil, 'rmtree', real_rmtree)
    expected = segment_volume(IntensityPredictor(), image_tif, progress=False, score_thr=0.4)
    labels = segment_volume(IntensityPredictor(), image_tif, out=out, slab=4, progress=False, score_thr=0.4,
                            keep_work=True)
    np.testing.assert_array_equal(labels, expected)
    deleted.clear()
    monkeypatch.setattr(workdir.shutil, 'rmtree', rmtree_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):  # the deletion after success
        WorkFolder(work).remove()
    assert 'manifest.json' in os.listdir(work)
    monkeypatch.setattr(workdir.shutil, 'rmtree', real_rmtree)
    labels = segment_volume(IntensityPredictor(), image_tif, out=out, slab=4, progress=False, score_thr=0.4,
                            overwrite=True)
    np.testing.assert_array_equal(labels, expected)
    assert not work.exists()


def test_a_work_folder_inside_a_zarr_output_is_refused_before_the_run(image_tif, tmp_path):
    """Review 2026-12-07: the output's writer refused it only when the run ended, after the whole inference."""
    predictor = IntensityPredictor()
    with pytest.raises(InputError, match='labels.zarr/work: the work folder lies inside the output'):
        segment_volume(predictor, image_tif, out=tmp_path / 'labels.zarr', work_dir=tmp_path / 'labels.zarr' / 'work',
                       progress=False)
    assert predictor.n_images == 0 and sorted(os.listdir(tmp_path)) == ['stack.tif']


def test_a_work_folder_holding_the_input_is_refused(image_tif, tmp_path):
    """Volume audit: a scan copied into a kept work folder and segmented from there was deleted with the folder's
    other entries (a work folder that does not resume is emptied, and removed after success)."""
    work = tmp_path / 'work'
    segment_volume(IntensityPredictor(), image_tif, out=tmp_path / 'a.tif', work_dir=work, keep_work=True,
                   progress=False)
    scan = work / 'stack.tif'
    scan.write_bytes(image_tif.read_bytes())
    with pytest.raises(InputError, match=re.escape(f'{work}: holds the input {scan}, which it must never remove')):
        segment_volume(IntensityPredictor(), scan, out=tmp_path / 'b.tif', work_dir=work, progress=False)
    assert scan.read_bytes() == image_tif.read_bytes() and not (tmp_path / 'b.tif').exists()


@pytest.mark.parametrize('damage', [
    lambda path: path.write_bytes(path.read_bytes()[:10]),  # cut short
    lambda path: path.write_bytes(b'\xff\xfe garbage'),
    lambda path: path.write_text('[1, 2]'),  # JSON, but not a part
    lambda path: path.write_text('{"checksum": 7}'),
    lambda path: path.write_text('{"checksum": "0123"}'),  # no checksum of the labels
])
def test_a_damaged_part_file_is_segmented_again(image, image_tif, tmp_path, damage):
    """Issue 17, defect 5: a damaged slab file of the resume folder counts as unfinished (warned), not a crash."""
    out = tmp_path / 'labels.tif'
    _interrupt(image_tif, out)  # slabs z=0..3 and z=4..7 finished
    part = tmp_path / 'labels.tif.work' / 'parts' / 'xy_000004.json'
    damage(part)
    restarted = IntensityPredictor()
    with pytest.warns(UserWarning, match=r'xy_000004.json: damaged part file .*segmenting this slab again'):
        labels = segment_volume(restarted, image_tif, out=out, slab=4, progress=False)
    assert restarted.n_images == SHAPE[0] - 4  # the damaged slab and the unfinished ones, not slab z=0..3
    np.testing.assert_array_equal(labels, segment_volume(IntensityPredictor(), image, progress=False))


@pytest.mark.parametrize('damage', [
    lambda chunk: chunk.unlink(),  # never reached the disk: reads as zeros
    lambda chunk: chunk.write_bytes(b''),  # its name on disk, its bytes not
    lambda chunk: chunk.write_bytes(chunk.read_bytes()[:20]),
], ids=['missing', 'empty', 'cut-short'])
def test_a_slab_whose_labels_do_not_read_back_is_segmented_again(image, image_tif, tmp_path, damage):
    """A crash of the machine can keep a part file but lose the chunk of labels written just before it (chunks are
    not forced to the disk): the resumed run checks the labels against the part file instead of trusting them."""
    out = tmp_path / 'labels.tif'
    _interrupt(image_tif, out)  # slabs z=0..3 and z=4..7 finished
    chunk = tmp_path / 'labels.tif.work' / 'view_xy.zarr' / 'c' / '1' / '0' / '0'  # chunks of 4 slices: z=4..7
    assert chunk.is_file()
    damage(chunk)
    restarted = IntensityPredictor()
    with pytest.warns(UserWarning, match=r'view_xy.zarr: the xy labels of slices 4:8 do not read back as .*'
                      r'xy_000004.json records them .*segmenting this slab again'):
        labels = segment_volume(restarted, image_tif, out=out, slab=4, progress=False)
    assert restarted.n_images == SHAPE[0] - 4  # the damaged slab and the unfinished ones, not slab z=0..3
    np.testing.assert_array_equal(labels, segment_volume(IntensityPredictor(), image, progress=False))


def test_a_damaged_manifest_starts_afresh(image_tif, tmp_path):
    out = tmp_path / 'labels.tif'
    _interrupt(image_tif, out)
    (tmp_path / 'labels.tif.work' / 'manifest.json').write_text('{"format": 2, "ident')
    restarted = IntensityPredictor()
    with pytest.warns(UserWarning, match='manifest.json: damaged manifest'):
        segment_volume(restarted, image_tif, out=out, slab=4, progress=False)
    assert restarted.n_images == SHAPE[0]


def test_hdf5_in_ome_zarr_out_keeps_the_voxel_size(image, truth, tmp_path):
    """Issue 18: segment_volume(model, 'stack.h5:/exchange/data', out='labels.zarr'), fused views, read chunk-wise."""
    import h5py
    with h5py.File(tmp_path / 'scan.h5', 'w') as f:
        data = f.create_dataset('exchange/data', data=image, chunks=(4, 16, 16))
        data.attrs['voxel_size_nm'] = [60, 50, 50]
    out = tmp_path / 'labels.zarr'
    labels = segment_volume(IntensityPredictor(), f'{tmp_path}/scan.h5:/exchange/data', out=out,
                            views=('xy', 'xz', 'yz'), slab=4, progress=False)
    assert same_instances(np.asarray(labels), truth)
    with open_volume(out) as reader:
        np.testing.assert_allclose(reader.voxel_size_nm, [60, 50, 50])
        np.testing.assert_array_equal(reader.read('z', 0, SHAPE[0]), np.asarray(labels))
    assert sorted(os.listdir(tmp_path)) == ['labels.zarr', 'scan.h5']


def test_a_run_killed_during_assembly_resumes_without_inference(image_tif, tmp_path, monkeypatch):
    """Issue 18: no half-written output at the target after a kill while writing; the rerun reuses every slab."""
    out = tmp_path / 'labels.tif'
    reference = np.array(segment_volume(IntensityPredictor(), image_tif, out=tmp_path / 'ref.tif', slab=4,
                                        views=('xy', 'xz'), progress=False))
    write = LabelVolumeWriter.write

    def killed_after_one_slab(self, z0, labels):
        if z0 > 0:
            raise KeyboardInterrupt('killed while writing the output')
        write(self, z0, labels)

    monkeypatch.setattr(LabelVolumeWriter, 'write', killed_after_one_slab)
    with pytest.raises(KeyboardInterrupt):
        segment_volume(IntensityPredictor(), image_tif, out=out, slab=4, views=('xy', 'xz'), progress=False)
    assert not out.exists()
    monkeypatch.setattr(LabelVolumeWriter, 'write', write)
    restarted = IntensityPredictor()
    labels = segment_volume(restarted, image_tif, out=out, slab=4, views=('xy', 'xz'), progress=False)
    assert restarted.n_images == 0
    np.testing.assert_array_equal(labels, reference)
    assert sorted(os.listdir(tmp_path)) == ['labels.tif', 'ref.tif', 'stack.tif']  # no temporary left
