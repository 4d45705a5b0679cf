"""tools/browse_dataset.py: PNG overlays of the ground truth after the pipeline, with and without augmentation."""

import numpy as np
import tifffile
from mmengine.config import Config
from PIL import Image

from helpers import TINY_CONFIG, import_tool
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
