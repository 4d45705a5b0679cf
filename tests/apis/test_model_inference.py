"""init_segmenter / segment_image with a real (CPU-tiny, 1-epoch) Mask R-CNN, and tools/segment.py end to end."""
import runpy

import numpy as np
import pytest
import tifffile
from PIL import Image

from helpers import REPO_ROOT, TINY_CONFIG, run_tool, write_config

pytestmark = pytest.mark.slow

FAST_OPTIONS = ['model.test_cfg.rpn.max_per_img=200', 'model.test_cfg.rcnn.max_per_img=50']  # as FAST_TEST_CFG


def check_result(labels, details, shape):
    n = int(labels.max())
    assert labels.shape == shape and labels.dtype == np.uint16
    assert details['ids'].tolist() == list(range(1, n + 1))
    assert details['scores'].shape == (n,) and np.all(np.diff(details['scores']) <= 0)  # by decreasing score
    boxes = details['boxes']
    assert boxes.shape == (n, 4) and np.all(boxes[:, :2] < boxes[:, 2:])
    assert np.all(boxes[:, 2] <= shape[1]) and np.all(boxes[:, 3] <= shape[0])


def test_segment_image_arrays_paths_dtypes_and_batches(tiny_model, tiny_coco):
    from libnet_mmdet.apis import segment_image
    png = sorted((tiny_coco / 'images' / 'val').glob('*.png'))[0]
    gray = np.asarray(Image.open(png))[..., 0]
    labels, details = segment_image(tiny_model, png, score_thr=0.3)
    check_result(labels, details, gray.shape)
    assert labels.max() > 0  # the 1-epoch model scores nearly everything ~0.5
    np.testing.assert_array_equal(segment_image(tiny_model, gray, score_thr=0.3)[0], labels)  # path == array
    batch = segment_image(tiny_model, [gray.astype(np.uint16) * 257, gray.astype(np.float32) / 255], score_thr=0.3)
    assert len(batch) == 2
    for labels_hw, details_hw in batch:
        check_result(labels_hw, details_hw, gray.shape)


def test_a_slice_s_labels_do_not_depend_on_the_other_slices_of_its_batch(tiny_model, tiny_coco):
    """Slices of several sizes in one batch were padded to the largest (GroupNorm statistics and the network's
    receptive field then saw the padding) until 2026-12-07: now each batch holds slices of one shape, results in the
    given order."""
    from libnet_mmdet.apis import segment_image
    from libnet_mmdet.apis.inference import same_shape_batches
    gray = np.asarray(Image.open(sorted((tiny_coco / 'images' / 'val').glob('*.png'))[0]))[..., 0]
    slices = [gray[:96, :96], gray, gray[32:128, 16:112]]
    assert same_shape_batches(slices, 2) == [[0, 2], [1]] and same_shape_batches(slices, 1) == [[0], [2], [1]]
    alone = [segment_image(tiny_model, image, score_thr=0.3, batch_size=1)[0] for image in slices]
    together = segment_image(tiny_model, slices, score_thr=0.3, batch_size=3)
    for one, (labels, _) in zip(alone, together):
        np.testing.assert_array_equal(labels, one)


def test_slices_larger_than_the_training_size_are_tiled(tiny_model, tiny_coco, monkeypatch):
    from libnet_mmdet.apis import segment_image
    from libnet_mmdet.apis.model import training_tile_size
    assert training_tile_size(tiny_model) == 256
    png = sorted((tiny_coco / 'images' / 'val').glob('*.png'))[0]
    large = np.tile(np.asarray(Image.open(png))[..., 0], (3, 3))[:300, :340]
    shapes = []
    test_step = tiny_model.test_step
    monkeypatch.setattr(tiny_model, 'test_step', lambda batch: shapes.extend(
        tuple(x.shape[1:]) for x in batch['inputs']) or test_step(batch))
    labels, details = segment_image(tiny_model, large, score_thr=0.3)
    check_result(labels, details, large.shape)
    assert shapes == [(256, 256)] * 4  # 2 x 2 tiles of the training size, overlap >= 64 px


def test_input_is_prepared_like_the_tomo_loader(tmp_path):
    """With LoadTomoImageFromFile in the test pipeline, an array is normalised exactly as a file would be."""
    from mmdet.registry import TRANSFORMS

    from libnet_mmdet.apis import init_segmenter
    from libnet_mmdet.apis.inference import slice_preparer
    config = tmp_path / 'tomo.py'
    config.write_text(f"_base_ = {str(TINY_CONFIG)!r}\n"
                      "test_pipeline = [dict(type='LoadTomoImageFromFile', percentiles=(1, 99)),\n"
                      "                 dict(type='Resize', scale=(256, 256), keep_ratio=True),\n"
                      "                 dict(type='PackDetInputs')]\n"
                      "test_dataloader = dict(dataset=dict(pipeline=test_pipeline))\n")
    model = init_segmenter(str(config), None, device='cpu')
    image = np.random.default_rng(0).integers(0, 4000, (40, 50)).astype(np.uint16)
    tifffile.imwrite(tmp_path / 'slice.tif', image)
    from_file = TRANSFORMS.build(dict(type='LoadTomoImageFromFile', percentiles=(1, 99)))(
        dict(img_path=str(tmp_path / 'slice.tif')))['img']
    np.testing.assert_array_equal(slice_preparer(model)(image), from_file)


def test_input_is_prepared_for_the_stock_loader(tmp_path):
    """With mmdet's LoadImageFromFile, 8-bit slices are used as stored, other dtypes percentile-normalised."""
    from libnet_mmdet.apis import init_segmenter
    from libnet_mmdet.apis.inference import slice_preparer
    from libnet_mmdet.io.images import normalize_intensity
    config = tmp_path / 'stock.py'
    config.write_text(f"_base_ = {str(TINY_CONFIG)!r}\n"
                      "test_pipeline = [dict(type='LoadImageFromFile'),\n"
                      "                 dict(type='Resize', scale=(256, 256), keep_ratio=True),\n"
                      "                 dict(type='PackDetInputs')]\n"
                      "test_dataloader = dict(dataset=dict(pipeline=test_pipeline))\n")
    prepare = slice_preparer(init_segmenter(str(config), None, device='cpu'))
    image = np.random.default_rng(0).integers(0, 4000, (40, 50)).astype(np.uint16)
    cases = [((image // 16).astype(np.uint8), (image // 16).astype(np.float32)),
             (image, normalize_intensity(image, 'percentile', (0.5, 99.5)))]
    for array, expected in cases:
        prepared = prepare(array)
        assert prepared.dtype == np.float32 and prepared.shape == (40, 50, 3)
        np.testing.assert_array_equal(prepared, np.repeat(expected[..., None], 3, axis=-1))


def test_config_checkpoint_mismatch_is_explained(trained_tiny, tiny_coco, tmp_path):
    from libnet_mmdet.apis import CheckpointMismatchError, init_segmenter
    _, checkpoint = trained_tiny
    other = write_config(tmp_path / 'r34.py', TINY_CONFIG, tiny_coco, model=dict(backbone=dict(depth=34)))
    with pytest.raises(CheckpointMismatchError, match='config/checkpoint mismatch') as info:
        init_segmenter(str(other), str(checkpoint), device='cpu')
    assert str(checkpoint) in str(info.value) and 'missing in the checkpoint' in str(info.value)
    with pytest.raises(FileNotFoundError, match='checkpoint file not found'):
        init_segmenter(str(other), str(tmp_path / 'none.pth'), device='cpu')
    (tmp_path / 'garbage.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='garbage.pth: not a readable checkpoint file'):
        init_segmenter(str(other), str(tmp_path / 'garbage.pth'), device='cpu')


@pytest.fixture(scope='module')
def synthetic_stack(tmp_path_factory):
    from libnet_mmdet.synth import generate_volume, preset_params
    volume = generate_volume((8, 128, 128), preset_params('typical', mean_diameter_vox=20), seed=0)
    path = tmp_path_factory.mktemp('segment_cli') / 'stack.tif'
    tifffile.imwrite(path, volume.image_zyx)
    return path


def test_segment_tool_end_to_end(trained_tiny, synthetic_stack, tmp_path):
    config, checkpoint = trained_tiny
    out = tmp_path / 'labels.tif'
    result = run_tool('tools/segment.py', synthetic_stack, '--config', config, '--checkpoint', checkpoint,
                      '--device', 'cpu', '--out', out, '--voxel-size-nm', '50', '--score-thr', '0.3',
                      '--overlays', tmp_path / 'overlays', '--overlay-step', '4', '--slab', '4',
                      '--cfg-options', *FAST_OPTIONS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'particles' in result.stdout and 'segment slabs' in result.stderr  # summary and tqdm progress
    with tifffile.TiffFile(out) as tif:
        labels = tif.asarray()
        assert tif.is_imagej and tif.imagej_metadata['spacing'] == pytest.approx(0.05)
        assert tif.imagej_metadata['unit'] == 'um'
        assert tif.pages[0].tags['XResolution'].value[0] / tif.pages[0].tags['XResolution'].value[1] == \
            pytest.approx(20)  # pixels per um
    assert labels.shape == (8, 128, 128) and labels.dtype == np.uint16 and labels.max() > 0
    assert sorted(p.name for p in (tmp_path / 'overlays').glob('*.png')) == ['overlay_z0.png', 'overlay_z4.png']
    assert not (tmp_path / 'labels.tif.work').exists()


@pytest.fixture(scope='module')
def segment_main():
    return runpy.run_path(str(REPO_ROOT / 'tools' / 'segment.py'))['main']


@pytest.mark.parametrize('make, message', [
    (lambda p: p.write_bytes(b'II*\x00broken'), 'not a readable TIFF'),
    (lambda p: tifffile.imwrite(p, np.full((2, 32, 32), np.nan, np.float32)), r'\[z=0\]: 1024 NaN/Inf'),
])
def test_segment_tool_errors_are_clear(segment_main, trained_tiny, tmp_path, make, message):
    config, checkpoint = trained_tiny
    volume = tmp_path / 'in.tif'
    make(volume)
    with pytest.raises(SystemExit, match=message) as info:
        segment_main([str(volume), '--config', str(config), '--checkpoint', str(checkpoint), '--device', 'cpu',
                      '--out', str(tmp_path / 'out.tif')])
    assert str(volume) in str(info.value)
    assert not (tmp_path / 'out.tif').exists()


def test_segment_tool_segments_one_2d_image(segment_main, trained_tiny, synthetic_stack, tmp_path, capsys):
    """A single-page TIFF is segmented as one slice by the trained model, as segment_image does (it was refused as
    'expected a 3D stack' before): (H, W) labels, the same as the API's."""
    from libnet_mmdet.apis import init_segmenter, segment_image
    config, checkpoint = trained_tiny
    image = tmp_path / 'slice.tif'
    tifffile.imwrite(image, tifffile.imread(synthetic_stack)[3])
    segment_main([str(image), '--config', str(config), '--checkpoint', str(checkpoint), '--device', 'cpu',
                  '--out', str(tmp_path / 'labels.tif'), '--scale', '1'])
    labels = tifffile.imread(tmp_path / 'labels.tif')
    expected = segment_image(init_segmenter(str(config), str(checkpoint), device='cpu'), str(image), scale=1.0)[0]
    assert labels.shape == expected.shape == tifffile.imread(image).shape and labels.dtype == np.uint16
    np.testing.assert_array_equal(labels, expected)
    assert f'{int(labels.max())} particles, (H, W)' in capsys.readouterr().out


def test_segment_tool_reports_a_mismatched_checkpoint(segment_main, trained_tiny, tiny_coco, synthetic_stack,
                                                      tmp_path):
    _, checkpoint = trained_tiny
    other = write_config(tmp_path / 'r34.py', TINY_CONFIG, tiny_coco, model=dict(backbone=dict(depth=34)))
    with pytest.raises(SystemExit, match='config/checkpoint mismatch'):
        segment_main([str(synthetic_stack), '--config', str(other), '--checkpoint', str(checkpoint),
                      '--device', 'cpu', '--out', str(tmp_path / 'out.tif')])


def test_segment_tool_keeps_the_input_voxel_size(segment_main, trained_tiny, synthetic_stack, tmp_path):
    """Without --voxel-size-nm the output records the voxel size of the input TIFF (read from its header)."""
    from libnet_mmdet.io import read_volume
    from libnet_mmdet.io import write_tiff
    config, checkpoint = trained_tiny
    stack = tmp_path / 'stack.tif'
    write_tiff(stack, tifffile.imread(synthetic_stack)[:2], voxel_size_nm=80)
    segment_main([str(stack), '--config', str(config), '--checkpoint', str(checkpoint), '--device', 'cpu',
                  '--out', str(tmp_path / 'labels.tif'), '--cfg-options', *FAST_OPTIONS])
    np.testing.assert_allclose(read_volume(tmp_path / 'labels.tif')[1], [80, 80, 80])
