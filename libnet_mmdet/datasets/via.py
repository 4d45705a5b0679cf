"""VGG Image Annotator (VIA) exports as a particle dataset.

Accepted files (all three are JSON):

* VIA 1.x ``via_region_data.json``: ``{key: {filename, size, regions: {"0": region, ...}, file_attributes}}``;
* VIA 2.x annotation export: the same, with ``regions`` a list;
* VIA 2.x project file: the above under ``_via_img_metadata`` (with ``_via_settings``, ``_via_attributes``).

A region is ``{"shape_attributes": {"name": ..., ...}, "region_attributes": {...}}``; its shape becomes one
particle instance:

=========  ==================================  =================================================
name       attributes                          instance mask
=========  ==================================  =================================================
polygon    all_points_x, all_points_y (>= 3)   inside the closed polygon
polyline   all_points_x, all_points_y (>= 3)   closed: as polygon
rect       x, y, width, height                 inside the rectangle
circle     cx, cy, r                           closer than r to (cx, cy)
ellipse    cx, cy, rx, ry[, theta (radians)]   inside the ellipse with semi-axes rx (along x) and ry
                                               (along y) rotated by theta from +x towards +y
                                               (clockwise on screen, as VIA draws it)
=========  ==================================  =================================================

A pixel (row r, column c) belongs to the instance when its centre (x = c + 0.5, y = r + 0.5) lies inside the
shape (``skimage.draw.polygon`` / ``skimage.draw.ellipse``). Coordinates are VIA's: pixels, origin at the
top-left corner of the image, as VIA displays them. (The seed LIBNet rasterised with
``skimage.draw.polygon(all_points_y, all_points_x)``, which puts pixel centres at integer coordinates: its masks
sit half a pixel down-right of the drawn outline; give ``pixel_centre_offset=0.0`` to read such files as the seed
did.) Masks are exact COCO RLE.
"""
import json
import os
import os.path as osp

import numpy as np
from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS
from skimage import draw

from .coco_checks import check_files_once, is_number
from ..io.images import read_image_info
from ..io import InputError, check_number, check_output_file, write_json
from .instances import AnnotationError, data_list_to_coco, filter_data_list, mask_to_instance

SHAPE_KEYS = {
    'polygon': ('all_points_x', 'all_points_y'),
    'polyline': ('all_points_x', 'all_points_y'),
    'rect': ('x', 'y', 'width', 'height'),
    'circle': ('cx', 'cy', 'r'),
    'ellipse': ('cx', 'cy', 'rx', 'ry'),
}


def _parse_shape(shape, where):
    """Check one VIA ``shape_attributes`` object; return (name, {key: float or np.ndarray})."""
    if not isinstance(shape, dict):
        raise AnnotationError(f'{where}: shape_attributes must be an object, got {type(shape).__name__}')
    name = shape.get('name')
    if not isinstance(name, str) or name not in SHAPE_KEYS:
        raise AnnotationError(f'{where}: unsupported region shape {name!r}; expected one of {sorted(SHAPE_KEYS)} '
                              '(a point cannot be a particle mask)')
    params = {}
    for key in SHAPE_KEYS[name]:
        value = shape.get(key)
        if name in ('polygon', 'polyline'):
            if not isinstance(value, list) or not all(is_number(v) for v in value):
                raise AnnotationError(f'{where}: {name} {key!r} must be a list of finite numbers, got {value!r}')
            params[key] = np.asarray(value, dtype=np.float64)
        elif not is_number(value):
            raise AnnotationError(f'{where}: {name} {key!r} must be a finite number, got {value!r}')
        else:
            params[key] = float(value)
    if name in ('polygon', 'polyline'):
        n_x, n_y = len(params['all_points_x']), len(params['all_points_y'])
        if n_x != n_y:
            raise AnnotationError(f'{where}: {name} has {n_x} x and {n_y} y coordinates')
        if n_x < 3:
            raise AnnotationError(f'{where}: {name} has {n_x} point(s); a particle outline needs at least 3')
    elif name == 'ellipse':
        theta = shape.get('theta', 0.0)
        if not is_number(theta):
            raise AnnotationError(f'{where}: ellipse theta must be a finite number, got {theta!r}')
        params['theta'] = float(theta)
    for key in ('width', 'height', 'r', 'rx', 'ry'):
        if key in params and params[key] <= 0:
            raise AnnotationError(f'{where}: {name} {key} must be > 0, got {params[key]}')
    return name, params


def parse_via(via, ann_file):
    """Check a parsed VIA 1.x / 2.x JSON (export or project) and list its images and region shapes.

    Args:
        via: the parsed JSON.
        ann_file (str): its file name, for messages.

    Returns:
        list[dict]: ``dict(key=VIA image key, filename=str, regions=[dict(index=str, name=str, params=dict)])``
        in file order; ``params`` as in :data:`SHAPE_KEYS` (floats, or float arrays for point lists).

    Raises:
        AnnotationError: naming the file, image key and region index of the first problem.
    """
    if not isinstance(via, dict):
        raise AnnotationError(f'{ann_file}: a VIA file must hold a JSON object, got {type(via).__name__}')
    if {'project', 'file', 'metadata'} <= via.keys():
        raise AnnotationError(f'{ann_file}: VIA 3 project files are not supported; export the annotations from '
                              'VIA 2 (Annotation > Export Annotations (as json)) or convert them to COCO')
    if '_via_img_metadata' in via:
        via = via['_via_img_metadata']
        if not isinstance(via, dict):
            raise AnnotationError(f'{ann_file}: _via_img_metadata must be an object')
    images = []
    for key, entry in via.items():
        where = f'{ann_file}: image {key!r}'
        if not isinstance(entry, dict):
            raise AnnotationError(f'{where}: must be an object with filename and regions, got '
                                  f'{type(entry).__name__}')
        filename, regions = entry.get('filename'), entry.get('regions')
        if not isinstance(filename, str) or not filename.strip():
            raise AnnotationError(f'{where}: filename must be a non-empty string, got {filename!r}')
        if 'regions' not in entry:
            raise AnnotationError(f'{where} ({filename}): no "regions" key; an image without particles has '
                                  '"regions": [] (VIA writes it so)')
        if isinstance(regions, dict):  # VIA 1.x: {"0": region, "1": region}
            regions = list(regions.items())
        elif isinstance(regions, list):  # VIA 2.x
            regions = [(str(i), region) for i, region in enumerate(regions)]
        else:
            raise AnnotationError(f'{where}: regions must be a list (VIA 2) or an object (VIA 1), got '
                                  f'{type(regions).__name__}')
        parsed = []
        for index, region in regions:
            region_where = f'{where} ({filename}), region {index}'
            if not isinstance(region, dict):
                raise AnnotationError(f'{region_where}: must be an object with shape_attributes, got '
                                      f'{type(region).__name__}')
            name, params = _parse_shape(region.get('shape_attributes'), region_where)
            parsed.append(dict(index=index, name=name, params=params))
        images.append(dict(key=key, filename=filename, regions=parsed))
    if not images:
        raise AnnotationError(f'{ann_file}: empty dataset: no images in the VIA file')
    check_files_once(((image['key'], image['filename']) for image in images), ann_file)
    return images


def _shape_points(name, params):
    """(x, y) arrays of the points that must lie in the image (polygon vertices, rect corners, centres)."""
    if name in ('polygon', 'polyline'):
        return params['all_points_x'], params['all_points_y']
    if name == 'rect':
        x, y, w, h = (params[k] for k in ('x', 'y', 'width', 'height'))
        return np.array([x, x + w]), np.array([y, y + h])
    return np.array([params['cx']]), np.array([params['cy']])


def rasterize_shape(name, params, height, width):
    """(H, W) bool mask of a VIA shape (rule in the module docstring)."""
    shape_hw = (height, width)
    mask = np.zeros(shape_hw, dtype=bool)
    if name in ('polygon', 'polyline', 'rect'):
        if name == 'rect':
            x, y, w, h = (params[k] for k in ('x', 'y', 'width', 'height'))
            xs, ys = np.array([x, x + w, x + w, x]), np.array([y, y, y + h, y + h])
        else:
            xs, ys = params['all_points_x'], params['all_points_y']
        rows, cols = draw.polygon(ys - 0.5, xs - 0.5, shape=shape_hw)
    else:
        r_x, r_y = (params['r'], params['r']) if name == 'circle' else (params['rx'], params['ry'])
        # skimage's rotation turns the ellipse counter-clockwise in (row, col) axes, i.e. from +x towards +y
        # when rows point down: VIA's theta.
        rows, cols = draw.ellipse(params['cy'] - 0.5, params['cx'] - 0.5, r_y, r_x, shape=shape_hw,
                                  rotation=-params.get('theta', 0.0))
    mask[rows, cols] = True
    return mask


def _to_corner_coordinates(params, pixel_centre_offset):
    """Shape parameters moved so that pixel centres lie at +0.5 (VIA display, COCO), from ``pixel_centre_offset``."""
    shift = 0.5 - pixel_centre_offset
    return {key: value + shift if key in ('all_points_x', 'all_points_y', 'x', 'y', 'cx', 'cy') else value
            for key, value in params.items()}


def load_via_data_list(ann_file, img_dir, tolerance=1.0, pixel_centre_offset=0.5):
    """``data_info`` dicts (see :mod:`libnet_mmdet.datasets.instances`) for the images of a VIA file.

    Args:
        ann_file (str): VIA JSON file.
        img_dir (str): folder the VIA ``filename`` entries are relative to.
        tolerance (float): how far (pixels) polygon vertices, rect corners and circle/ellipse centres may lie
            outside the image before the region is rejected.
        pixel_centre_offset (float): VIA coordinate of the centre of pixel 0: 0.5 for VIA's own display and COCO
            (default), 0.0 for files made for the seed LIBNet's ``skimage.draw.polygon(all_points_y,
            all_points_x)`` rasterisation.

    Raises:
        FileNotFoundError: the VIA file or an image is missing.
        AnnotationError: malformed JSON or regions (< 3 points, outside the image, empty mask, ...).
        ValueError: a tolerance that is not a finite number >= 0, a ``pixel_centre_offset`` not in [0, 1).
    """
    check_number(tolerance, 'tolerance (--tolerance)', unit='pixels')
    check_number(pixel_centre_offset, 'pixel_centre_offset', high=1, high_open=True, unit='pixels')
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'VIA annotation file not found: {ann_file}')
    try:
        with open(ann_file) as f:
            via = json.load(f)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, too deep, too many digits
        raise AnnotationError(f'{ann_file}: malformed JSON ({type(exc).__name__}: {exc})') from exc
    data_list = []
    for img_id, image in enumerate(parse_via(via, ann_file)):
        img_path = osp.join(img_dir, image['filename'])
        if not osp.isfile(img_path):
            raise FileNotFoundError(f'image file not found: {img_path} (listed in {ann_file} as '
                                    f'{image["key"]!r})')
        shape, _, is_stack = read_image_info(img_path)
        if is_stack:
            raise AnnotationError(f'{img_path}: VIA annotates 2D images, but this is a 3D stack of shape {shape}')
        height, width = shape[:2]
        instances = []
        for region in image['regions']:
            where = f'{ann_file}: image {image["key"]!r} ({image["filename"]}), region {region["index"]}'
            params = _to_corner_coordinates(region['params'], pixel_centre_offset)
            xs, ys = _shape_points(region['name'], params)
            if (xs.min() < -tolerance or xs.max() > width + tolerance or ys.min() < -tolerance
                    or ys.max() > height + tolerance):
                raise AnnotationError(
                    f'{where}: {region["name"]} lies outside the {width}x{height} image (x in [{xs.min():g}, '
                    f'{xs.max():g}], y in [{ys.min():g}, {ys.max():g}])')
            mask = rasterize_shape(region['name'], params, height, width)
            if not mask.any():
                raise AnnotationError(f'{where}: {region["name"]} covers no pixel centre (degenerate shape)')
            instances.append(mask_to_instance(mask))
        data_list.append(dict(img_path=img_path, img_id=img_id, height=height, width=width,
                              instances=instances))
    return data_list


@DATASETS.register_module()
class ViaParticleDataset(BaseDetDataset):
    """Particles annotated in VGG Image Annotator (VIA 1.x / 2.x JSON), one class: ``particle``.

    Args:
        ann_file (str): the VIA JSON (``via_region_data.json``, a VIA 2 export or project file).
        data_prefix (dict): ``img``: the folder the VIA ``filename`` entries are relative to.
        tolerance (float): pixels a region may stick out of its image (see :func:`load_via_data_list`).
        pixel_centre_offset (float): 0.5 (default: VIA's display, COCO) or 0.0 (annotations made for the seed
            LIBNet, which rasterised with pixel centres at integer coordinates).
        **kwargs: :class:`mmdet.datasets.BaseDetDataset` arguments (``data_root``, ``pipeline``, ``filter_cfg``
            with ``filter_empty_gt`` / ``min_size`` as in ``CocoDataset``, ``test_mode``, ...).

    Each image gives one ``data_info`` with exact RLE masks; see :mod:`libnet_mmdet.datasets.instances`.
    """

    METAINFO = {'classes': ('particle',), 'palette': [(220, 20, 60)]}

    def __init__(self, *args, tolerance=1.0, pixel_centre_offset=0.5, **kwargs):
        self.tolerance = tolerance
        self.pixel_centre_offset = pixel_centre_offset
        super().__init__(*args, **kwargs)

    def load_data_list(self):
        return load_via_data_list(self.ann_file, self.data_prefix.get('img', ''), self.tolerance,
                                  self.pixel_centre_offset)

    def filter_data(self):
        return filter_data_list(self.data_list, self.filter_cfg, self.test_mode, self.ann_file)


def via_to_coco(ann_file, img_dir, out_file, tolerance=1.0, pixel_centre_offset=0.5, overwrite=False):
    """Convert a VIA file to COCO JSON (exact RLE masks, ``file_name`` relative to ``img_dir``), atomically.

    Arguments as :func:`load_via_data_list`; an existing ``out_file`` is replaced only with ``overwrite`` (never
    the VIA file itself), and only once every input has been checked.

    Returns:
        dict: the COCO dict written to ``out_file``.

    Raises:
        FileNotFoundError, AnnotationError: as :func:`load_via_data_list`.
        InputError: ``out_file`` is not a ``.json`` file, is the VIA file, a folder, or exists and ``overwrite`` is
            False.
    """
    if not os.fspath(out_file).lower().endswith('.json'):
        raise InputError(f'{out_file}: the COCO output must be a .json file')
    check_output_file(out_file, overwrite, inputs=(ann_file,))
    coco = data_list_to_coco(load_via_data_list(ann_file, img_dir, tolerance, pixel_centre_offset), img_dir)
    write_json(out_file, coco)
    return coco
