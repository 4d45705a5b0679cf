"""Tiny generated data for the dataset tests: disc images with known masks, VIA files, label stacks.

Imported by the tests as ``tomo_data`` (conftest.py puts this folder on sys.path) and provides fixtures.
"""
import json

import numpy as np
import pytest
import tifffile
from matplotlib.path import Path as MplPath
from mmengine.config import Config
from PIL import Image

from helpers import TINY_CONFIG, draw_disc_image

VIA_SIZE = (48, 64)  # (H, W) of the VIA test image


def pixel_centres(height, width):
    """(x, y) pixel-centre coordinates of an (height, width) image, each (H, W)."""
    rows, cols = np.mgrid[:height, :width]
    return cols + 0.5, rows + 0.5


def reference_via_mask(shape, height, width):
    """The VIA rule written out independently of the implementation: pixel centres inside the shape."""
    x, y = pixel_centres(height, width)
    name = shape['name']
    if name in ('polygon', 'polyline'):
        path = MplPath(np.c_[shape['all_points_x'], shape['all_points_y']])
        return path.contains_points(np.c_[x.ravel(), y.ravel()]).reshape(height, width)
    if name == 'rect':
        return ((x >= shape['x']) & (x <= shape['x'] + shape['width']) & (y >= shape['y'])
                & (y <= shape['y'] + shape['height']))
    r_x, r_y = (shape['r'], shape['r']) if name == 'circle' else (shape['rx'], shape['ry'])
    theta = shape.get('theta', 0.0)
    dx, dy = x - shape['cx'], y - shape['cy']
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    return (u / r_x) ** 2 + (v / r_y) ** 2 < 1


# One region of each supported shape, inside a 64x48 image; coordinates are not on pixel centres.
VIA_SHAPES = [
    dict(name='polygon', all_points_x=[3.2, 20.7, 14.1, 4.4], all_points_y=[2.3, 5.1, 18.9, 15.2]),
    dict(name='polyline', all_points_x=[30.3, 44.8, 37.6], all_points_y=[3.1, 6.2, 17.7]),
    dict(name='rect', x=50, y=2, width=9, height=14),
    dict(name='circle', cx=12.3, cy=33.6, r=7.2),
    dict(name='ellipse', cx=40.2, cy=34.1, rx=11.3, ry=5.4, theta=0.6),
]


def via_metadata(filename, shapes, version):
    """The per-image VIA dict: ``regions`` a dict for VIA 1, a list for VIA 2."""
    regions = [dict(shape_attributes=dict(shape), region_attributes=dict(type='particle')) for shape in shapes]
    if version == 1:
        regions = {str(i): region for i, region in enumerate(regions)}
    return {f'{filename}1234': dict(filename=filename, size=1234, regions=regions, file_attributes={})}


def via_document(metadata, version):
    """A VIA 1.x file, VIA 2.x export or VIA 2.x project file around ``metadata``."""
    if version == 'project':
        return dict(_via_settings=dict(ui={}), _via_img_metadata=metadata, _via_attributes=dict(region={}),
                    _via_data_format_version='2.0.10', _via_image_id_list=list(metadata))
    return metadata


@pytest.fixture
def via_dir(tmp_path):
    """``tmp_path/images/scene.png`` (64x48, 8-bit) with the VIA_SHAPES drawn bright on a dark background."""
    height, width = VIA_SIZE
    image = np.full((height, width), 30, np.uint8)
    for shape in VIA_SHAPES:
        image[reference_via_mask(shape, height, width)] = 200
    (tmp_path / 'images').mkdir()
    Image.fromarray(image).save(tmp_path / 'images' / 'scene.png')
    return tmp_path


def write_via(path, doc):
    path.write_text(json.dumps(doc))
    return path


def disc_labels(rng, size=64, n_discs=5):
    """A (size, size) uint8 image of bright discs and its uint16 instance labels (1..N)."""
    image, masks = draw_disc_image(rng, size=size, n_discs=n_discs)
    labels = np.zeros(image.shape, np.uint16)
    for k, mask in enumerate(masks, start=1):
        labels[mask] = k
    return image, labels


def ball_stack(rng, shape_zyx=(10, 40, 36), n_balls=4, dtype=np.uint16):
    """A (Z, Y, X) image stack of bright balls and its uint16 instance labels; the top 2 and bottom 2 slices
    hold no particle."""
    z, y, x = np.ogrid[:shape_zyx[0], :shape_zyx[1], :shape_zyx[2]]
    labels = np.zeros(shape_zyx, np.uint16)
    for k in range(1, n_balls + 1):
        radius = rng.uniform(3.5, 5)
        centre = [rng.uniform(4, shape_zyx[0] - 4)] + [rng.uniform(radius + 2, n - radius - 2)
                                                       for n in shape_zyx[1:]]
        ball = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 < radius ** 2
        labels[ball & (labels == 0)] = k
    labels[:2] = 0
    labels[-2:] = 0
    scale = 60000 if dtype == np.uint16 else 1.0
    image = (np.where(labels > 0, 0.8, 0.2) + rng.normal(0, 0.03, shape_zyx)) * scale
    return image.astype(dtype), labels


@pytest.fixture
def stack_files(tmp_path):
    """``image.tif`` (Z, Y, X) uint16 and ``labels.tif`` uint16, as the synthetic generator writes them."""
    image, labels = ball_stack(np.random.default_rng(3))
    tifffile.imwrite(tmp_path / 'image.tif', image)
    tifffile.imwrite(tmp_path / 'labels.tif', labels)
    return tmp_path / 'image.tif', tmp_path / 'labels.tif', image, labels


def load_pipeline(**load_kwargs):
    """LoadTomoImageFromFile + the stock LoadAnnotations (bitmap masks)."""
    return [dict(type='LoadTomoImageFromFile', **load_kwargs),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]


def mask_iou(a, b):
    union = np.logical_or(a, b).sum()
    return np.logical_and(a, b).sum() / union if union else 1.0


# The CPU-tiny config's training pipeline (a list of transform config dicts), loaded from the shipped config.
TINY_TRAIN_PIPELINE = Config.fromfile(str(TINY_CONFIG)).to_dict()['train_pipeline']


def scene_stack(rng, n_slices=4, size=128, dtype=np.uint16):
    """(Z, size, size) image stack of independent disc scenes in ``dtype`` (16-bit: 0-60000; float32: about
    -1..3) and its uint16 labels."""
    images, labels = zip(*(disc_labels(rng, size=size, n_discs=6) for _ in range(n_slices)))
    image = np.stack(images).astype(np.float64)
    image = image * 235 + 500 if dtype == np.uint16 else image / 64.0 - 1.0
    return image.astype(dtype), np.stack(labels)
