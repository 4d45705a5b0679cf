"""tools/browse_dataset.py: PNG overlays of the ground truth after the pipeline, with and without augmentation."""

import numpy as np
import pytest
import tifffile
from mmengine.config import Config
from PIL import Image

from helpers import REPO_ROOT, TINY_CONFIG, import_tool, write_config
from libnet_mmdet.io.errors import OUTPUT_MARKER
from tomo_data import TINY_TRAIN_PIPELINE, ball_stack


def browse_main():
    return import_tool('browse_dataset').main


def test_overlays_are_written_for_stack_slices_with_and_without_augmentation(tmp_path):
    image, labels = ball_stack(np.random.default_rng(5), shape_zyx=(8, 48, 40))
    tifffile.imwrite(tmp_path / 'image.tif', image)
    tifffile.imwrite(tmp_path / 'labels.tif', labels)
    cfg = Config.fromfile(str(TINY_CONFIG))
    cfg.train_dataloader.dataset = dict(type='LabelTiffDataset', data_root=str(tmp_path),
                                        data_prefix=dict(img='image.tif', label='labels.tif'),
                                        slice_axes='zx', pipeline=TINY_TRAIN_PIPELINE)
    config = tmp_path / 'browse.py'
    cfg.dump(str(config))
    main = browse_main()
    main([str(config), '--out', str(tmp_path / 'raw'), '--no-aug', '--n', '3'])
    main([str(config), '--out', str(tmp_path / 'aug'), '--n', '2'])
    raw = sorted(p.name for p in (tmp_path / 'raw').iterdir() if p.name != OUTPUT_MARKER)
    assert raw == ['0000_image_z0002.png', '0001_image_z0003.png', '0002_image_z0004.png']
    hidden = [p.name for p in (tmp_path / 'aug').glob('.*')]
    assert len(list((tmp_path / 'aug').glob('*.png'))) == 2 and hidden == [OUTPUT_MARKER]  # no temporary file
    overlay = np.asarray(Image.open(tmp_path / 'raw' / raw[0]).convert('RGB')).astype(int)
    assert overlay.shape == (48, 40, 3)  # the slice at its own size: --no-aug skips crops and resizing
    coloured = overlay.max(-1) - overlay.min(-1) > 20  # the slice itself is gray
    particles = labels[2] > 0
    assert coloured[particles].all() and coloured[~particles].mean() < 0.2  # outside: only the box outlines
    # the augmentation is drawn (not stripped as --no-aug strips it): a Resize ×2 among the training steps
    cfg.train_dataloader.dataset.pipeline = (TINY_TRAIN_PIPELINE[:2] + [dict(type='Resize', scale_factor=2.0)]
                                             + TINY_TRAIN_PIPELINE[2:])
    cfg.dump(str(config))
    main([str(config), '--out', str(tmp_path / 'resized'), '--n', '1'])
    (drawn,) = (tmp_path / 'resized').glob('*.png')
    assert Image.open(drawn).size in ((80, 96), (96, 80))  # (W, H) of a 48 x 40 slice doubled, maybe rotated


def test_a_test_pipeline_that_resizes_before_loading_annotations_is_drawn_at_its_size(tmp_path):
    """mmdet's test pipelines load the annotations after their ``Resize``: browsing ``--split val`` of such a
    pipeline (``Resize(scale_factor=2.0)``; here as the train split's) failed on masks of the slice's own size (until
    2026-12-07)."""
    image, labels = ball_stack(np.random.default_rng(5), shape_zyx=(8, 48, 40))
    tifffile.imwrite(tmp_path / 'image.tif', image)
    tifffile.imwrite(tmp_path / 'labels.tif', labels)
    cfg = Config.fromfile(str(TINY_CONFIG))
    pipeline = [dict(type='LoadTomoImageFromFile'), dict(type='Resize', scale_factor=2.0, keep_ratio=True),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True), dict(type='PackDetInputs')]
    cfg.train_dataloader.dataset = dict(type='LabelTiffDataset', data_root=str(tmp_path),
                                        data_prefix=dict(img='image.tif', label='labels.tif'), pipeline=pipeline)
    config = tmp_path / 'browse.py'
    cfg.dump(str(config))
    browse_main()([str(config), '--out', str(tmp_path / 'val'), '--n', '1'])
    overlay = np.asarray(Image.open(next((tmp_path / 'val').glob('*.png'))).convert('RGB')).astype(int)
    assert overlay.shape == (96, 80, 3)
    coloured = overlay.max(-1) - overlay.min(-1) > 20
    particles = np.kron(labels[2] > 0, np.ones((2, 2), bool))  # the first slice with a particle, doubled
    assert coloured[particles].mean() > 0.95


def test_the_output_never_holds_the_dataset_nor_enters_its_image_folder(tiny_coco, tmp_path):
    """--overwrite used to empty any marked folder, a dataset folder that an earlier tool had written included."""
    config = write_config(tmp_path / 'browse.py', TINY_CONFIG, tiny_coco)
    images = tiny_coco / 'images' / 'train'
    before = sorted(p.name for p in images.iterdir())
    for out, message in ((tiny_coco, 'the output folder holds the input'),
                         (images / 'overlays', 'lies inside the input folder')):
        with pytest.raises(SystemExit, match=f'browse_dataset.py: error: .*{message}'):
            browse_main()([str(config), '--out', str(out), '--overwrite'])
    assert sorted(p.name for p in images.iterdir()) == before


def test_a_split_without_a_dataset_is_one_line(tmp_path):
    config = REPO_ROOT / 'configs' / 'nmc' / 'mask-rcnn_r18-gn_fpn-c64_cpu-tiny_generalist.py'  # val_dataloader None
    with pytest.raises(SystemExit, match='browse_dataset.py: error: .*: no val_dataloader with a dataset'):
        browse_main()([str(config), '--out', str(tmp_path / 'out'), '--split', 'val'])
    assert not (tmp_path / 'out').exists()


def test_a_wrapped_dataset_is_browsed_and_its_folders_are_protected(tiny_coco, tmp_path):
    """A RepeatDataset around the dataset was a traceback (the pipeline lies in the wrapped dataset), and the output
    checks saw none of its folders."""
    config = write_config(tmp_path / 'browse.py', TINY_CONFIG, tiny_coco)
    wrapped = tmp_path / 'wrapped.py'
    wrapped.write_text(f"_base_ = {str(config)!r}\ntrain_dataloader = dict(dataset=dict(_delete_=True, "
                       "type='RepeatDataset', times=2, dataset=_base_.train_dataloader.dataset))\n")
    main = browse_main()
    main([str(wrapped), '--out', str(tmp_path / 'out'), '--n', '2', '--no-aug'])
    assert len(list((tmp_path / 'out').glob('*.png'))) == 2
    with pytest.raises(SystemExit, match='browse_dataset.py: error: .*lies inside the input folder'):
        main([str(wrapped), '--out', str(tiny_coco / 'images' / 'train' / 'overlays')])


def test_an_instance_keeps_its_colour_however_many_the_picture_has():
    """Mask i is drawn as id i + 1 (README: a particle has the colour of its id in every picture); it was id N - i,
    so the same particle changed colour with the number of instances."""
    draw_overlay = import_tool('browse_dataset').draw_overlay
    image = np.full((20, 30, 3), 128, np.uint8)
    masks = np.zeros((3, 20, 30), bool)
    masks[0, 2:8, 2:8] = masks[1, 10:16, 2:8] = masks[2, 2:8, 20:26] = True
    two, three = draw_overlay(image, masks[:2], np.zeros((0, 4))), draw_overlay(image, masks, np.zeros((0, 4)))
    np.testing.assert_array_equal(two[masks[0]], three[masks[0]])
    np.testing.assert_array_equal(two[masks[1]], three[masks[1]])
    assert not np.array_equal(three[4, 4], three[4, 22])  # and neighbours differ


def test_a_2_5d_sample_is_drawn_from_its_own_slice():
    """A 2.5D input's channels are (previous, slice, next): the mean of the three was drawn under the slice's masks."""
    draw_overlay = import_tool('browse_dataset').draw_overlay
    from libnet_mmdet.visualization import render_labels
    image = np.zeros((10, 12, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 40, 120, 250
    picture = draw_overlay(image, np.zeros((0, 10, 12), bool), np.zeros((0, 4)))
    np.testing.assert_array_equal(picture, render_labels(image[..., 1], np.zeros((10, 12), np.int32),
                                                         intensity_range=(0, 255)))
