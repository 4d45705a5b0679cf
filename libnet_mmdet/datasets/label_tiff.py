"""Instance-label images (StarDist / Cellpose convention) and 3D image + label stacks as a particle dataset.

Pairs of an image and an instance-label image of the same shape (0 = background, 1..N = particles, any integer
dtype):

* 2D: a folder of images and a folder of label images with the same file names (StarDist: ``images/`` +
  ``masks/``), or one folder with ``label_suffix`` (Cellpose: ``img.tif`` + ``img_masks.tif``);
* 3D: a (Z, Y, X) image stack and a (Z, Y, X) label stack (what ``libnet_mmdet.synth`` writes:
  ``image.tif`` + ``labels.tif``), given as two files or as two folders of stacks. Every slice along each of
  ``slice_axes`` is one training sample: ``z`` gives (Y, X) slices, ``y`` (Z, X), ``x`` (Z, Y). The sample's
  ``data_info`` carries ``slice_axis`` and ``slice_index``; ``LoadTomoImageFromFile`` reads only that slice.

Cost: building the dataset scans the label stacks once (memory-mapped when uncompressed) and encodes each
instance of each kept slice as an exact COCO RLE (a pass over the columns its box spans, not the whole slice:
:func:`~libnet_mmdet.datasets.instances.instances_from_labels`); the images are only opened for their shape.
"""
import os
import os.path as osp
import shutil

import numpy as np
from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS

from ..io.images import (IMAGE_SUFFIXES, SLICE_AXES, check_finite, check_slicing, open_stack, read_image,
                         read_image_info)
from ..io import atomic_output, check_output_dir, check_outside_inputs, output_folder, write_json, write_tiff
from ..io.volume import list_slice_files
from .instances import AnnotationError, data_list_to_coco, filter_data_list, instances_from_labels


def find_label_pairs(img_source, label_source, label_suffix=''):
    """(image path, label path) pairs.

    Args:
        img_source (str): an image file, or a folder of images.
        label_source (str): the label file, or the folder of label images (may be ``img_source``).
        label_suffix (str): the label of ``name.ext`` is ``<label folder>/name<label_suffix>.<any image ext>``.

    Raises:
        FileNotFoundError: a source or an image's label file is missing.
        AnnotationError: no images, or a label file is ambiguous.
    """
    if osp.isfile(img_source):
        if not osp.isfile(label_source):
            raise FileNotFoundError(f'label file not found: {label_source} (for image {img_source})')
        return [(img_source, label_source)]
    for what, source in (('image', img_source), ('label', label_source)):
        if not osp.isdir(source):
            raise FileNotFoundError(f'{what} file or folder not found: {source}')
    same_folder = osp.samefile(img_source, label_source)
    if same_folder and not label_suffix:
        raise AnnotationError(f'{img_source}: images and labels in one folder need a label_suffix '
                              "(e.g. '_masks')")

    def image_files(folder):  # as a folder of slices is listed: no hidden files (macOS's ._x.tif), no folders
        return [osp.basename(path) for path in list_slice_files(folder)]

    labels_by_stem = {}
    for name in image_files(label_source):
        labels_by_stem.setdefault(osp.splitext(name)[0], []).append(name)
    pairs = []
    for name in image_files(img_source):
        stem = osp.splitext(name)[0]
        if same_folder and stem.endswith(label_suffix):
            continue  # a label file
        candidates = labels_by_stem.get(stem + label_suffix, [])
        if not candidates:
            raise FileNotFoundError(f'label file not found for image {osp.join(img_source, name)}: expected '
                                    f'{osp.join(label_source, stem + label_suffix)}.<tif|png|...>')
        if len(candidates) > 1:
            raise AnnotationError(f'{osp.join(img_source, name)}: several label files match: {candidates}')
        pairs.append((osp.join(img_source, name), osp.join(label_source, candidates[0])))
    if not pairs:
        raise AnnotationError(f'{img_source}: empty dataset: no image files ({", ".join(IMAGE_SUFFIXES)})')
    return pairs


def _check_pair(img_path, label_path):
    """(shape, is_stack) of a matching image / label pair; raises for mismatched shapes or non-integer labels."""
    if label_path.lower().endswith(('.jpg', '.jpeg')):  # compression artefacts would become instance ids
        raise AnnotationError(f'{label_path}: instance labels in a lossy format (JPEG); save them as TIFF or PNG')
    img_shape, _, img_is_stack = read_image_info(img_path)
    label_shape, label_dtype, label_is_stack = read_image_info(label_path)
    if not np.issubdtype(label_dtype, np.integer):
        raise AnnotationError(f'{label_path}: instance labels must have an integer dtype (0 = background, '
                              f'1..N = particles), got {label_dtype}')
    if len(label_shape) == 3 and not label_is_stack:
        raise AnnotationError(f'{label_path}: instance labels must be single-channel, got shape {label_shape}')
    if (img_shape if img_is_stack else img_shape[:2]) != label_shape:
        raise AnnotationError(f'{img_path} and {label_path}: image and labels differ in shape: '
                              f'{img_shape} vs {label_shape}')
    return label_shape, label_is_stack


def load_label_data_list(img_source, label_source, label_suffix='', slice_axes=('z',), slice_step=1,
                         skip_empty=True):
    """``data_info`` dicts (exact RLE masks; see :mod:`libnet_mmdet.datasets.instances`) from label images.

    Args:
        img_source, label_source, label_suffix: see :func:`find_label_pairs`.
        slice_axes (str | tuple[str]): axes of 3D stacks to slice along, one or more of 'z', 'y', 'x', each once
            (e.g. 'zyx').
        slice_step (int): keep every ``slice_step``-th slice (neighbouring slices are nearly identical).
        skip_empty (bool): leave out slices and images without any particle.

    Raises:
        ValueError: bad ``slice_axes`` or ``slice_step`` (:func:`~libnet_mmdet.io.images.check_slicing`).
        FileNotFoundError, AnnotationError: missing files, mismatched shapes, non-integer or negative labels,
        an empty dataset.
    """
    slice_axes, slice_step = check_slicing(slice_axes, slice_step)
    data_list = []

    def add(img_path, labels_hw, **slice_keys):
        instances = instances_from_labels(labels_hw)
        if instances or not skip_empty:
            data_list.append(dict(img_path=img_path, img_id=len(data_list), height=labels_hw.shape[0],
                                  width=labels_hw.shape[1], instances=instances, **slice_keys))

    pairs = find_label_pairs(img_source, label_source, label_suffix)
    for img_path, label_path in pairs:
        shape, is_stack = _check_pair(img_path, label_path)
        labels = open_stack(label_path)
        if np.issubdtype(labels.dtype, np.signedinteger) and labels.min() < 0:
            raise AnnotationError(f'{label_path}: negative instance labels (min {labels.min()})')
        if not is_stack:
            add(img_path, np.asarray(labels))
            continue
        for slice_axis in slice_axes:
            axis = SLICE_AXES.index(slice_axis)
            for slice_index in range(0, shape[axis], slice_step):
                add(img_path, np.take(labels, slice_index, axis=axis), slice_axis=slice_axis,
                    slice_index=slice_index)
    if not data_list:
        raise AnnotationError(f'{label_source}: empty dataset: no slice or image with a particle '
                              f'({len(pairs)} label file(s), skip_empty={skip_empty})')
    return data_list


@DATASETS.register_module()
class LabelTiffDataset(BaseDetDataset):
    """Particles from instance-label images, or from slices of 3D image + label stacks; one class ``particle``.

    Args:
        data_prefix (dict): ``img``: an image file / stack, or a folder of them; ``label``: the matching label
            file, or folder (see :func:`find_label_pairs`). Both are joined to ``data_root``.
        label_suffix (str): label file stem = image stem + ``label_suffix`` (e.g. Cellpose's ``'_masks'``).
        slice_axes (str | tuple[str]): slice 3D stacks along these axes ('z', 'y', 'x'); default ``('z',)``.
        slice_step (int): keep every n-th slice.
        skip_empty (bool): leave out slices without particles (also in test mode, unlike ``filter_empty_gt``).
        **kwargs: :class:`mmdet.datasets.BaseDetDataset` arguments (``data_root``, ``pipeline``, ``filter_cfg``,
            ``test_mode``, ...). ``ann_file`` is not used. Note that the stock training ``filter_cfg``
            (``min_size=32``) drops the y/x slices of stacks thinner than 32 slices.

    Example (the synthetic generator's output)::

        dict(type='LabelTiffDataset', data_root='data/synth/', data_prefix=dict(img='image.tif',
             label='labels.tif'), slice_axes='zyx', slice_step=2, pipeline=train_pipeline)
    """

    METAINFO = {'classes': ('particle',), 'palette': [(220, 20, 60)]}

    def __init__(self, *args, label_suffix='', slice_axes=('z',), slice_step=1, skip_empty=True, **kwargs):
        self.label_suffix = label_suffix
        self.slice_axes = slice_axes
        self.slice_step = slice_step
        self.skip_empty = skip_empty
        super().__init__(*args, **kwargs)

    def load_data_list(self):
        missing = [key for key in ('img', 'label') if not self.data_prefix.get(key)]
        if missing:
            raise ValueError(f'LabelTiffDataset needs data_prefix with img and label paths; missing {missing}')
        return load_label_data_list(self.data_prefix['img'], self.data_prefix['label'], self.label_suffix,
                                    self.slice_axes, self.slice_step, self.skip_empty)

    def filter_data(self):
        return filter_data_list(self.data_list, self.filter_cfg, self.test_mode, self.data_prefix['label'])


def _check_finite_images(data_list):
    """Raise :class:`~libnet_mmdet.io.ImageFormatError` naming the file (and z slice) when an image of
    ``data_list`` has NaN/Inf pixels; each image file is read once (stacks slice by slice)."""
    stacks = {info['img_path'] for info in data_list if 'slice_axis' in info}
    for img_path in dict.fromkeys(info['img_path'] for info in data_list):
        image = open_stack(img_path)
        if img_path in stacks:
            for z, slice_yx in enumerate(image):
                check_finite(slice_yx, img_path, 'z', z)
        else:
            check_finite(image, img_path)


def _exported_names(data_list):
    """The file name each sample of ``data_list`` gets in ``images/``: a 2D image its own, a stack's slice
    ``<stem>_<axis><index>.tif``; raises :class:`AnnotationError` naming both inputs when two samples would get one
    name (stacks ``a.tif`` and ``a.tiff``, or an image named like a stack's slice)."""
    names, first_input = [], {}
    for info in data_list:
        stem, ext = osp.splitext(osp.basename(info['img_path']))
        name = f'{stem}_{info["slice_axis"]}{info["slice_index"]:04d}.tif' if 'slice_axis' in info else stem + ext
        other = first_input.setdefault(name, info['img_path'])
        if other != info['img_path']:
            raise AnnotationError(f'{other} and {info["img_path"]}: both would be written as images/{name}; rename '
                                  'one of them')
        names.append(name)
    return names


def labels_to_coco(img_source, label_source, out_dir, label_suffix='', slice_axes=('z',), slice_step=1,
                   skip_empty=True, overwrite=False):
    """Convert label images / stacks to a COCO dataset in ``out_dir``: ``images/`` + ``annotations.json``.

    2D images are copied to ``out_dir/images/`` under their own names; each kept slice of a stack is written
    there as ``<stem>_<axis><index>.tif`` in the stack's dtype. Masks are exact RLE; every file is written
    atomically. Arguments as :func:`load_label_data_list`.

    Every input is checked (labels, shapes, NaN/Inf pixels of the images) before anything is written. ``out_dir``
    must be new or empty; with ``overwrite`` an earlier output folder of ours is replaced whole once the new one is
    written (see :func:`~libnet_mmdet.io.output_folder`), so that it never mixes the images of two runs.

    Returns:
        dict: the COCO dict written to ``out_dir/annotations.json``.

    Raises:
        FileNotFoundError, AnnotationError, ImageFormatError: as :func:`load_label_data_list`, NaN/Inf pixels, and
            two inputs whose images would get one name (stacks ``a.tif`` and ``a.tiff``).
        InputError: ``out_dir`` holds an input or lies in an input folder, or is in use (not empty, and not ours or
            no ``overwrite``).
    """
    out_dir = os.fspath(out_dir)
    check_output_dir(out_dir, overwrite, inputs=(img_source, label_source))
    check_outside_inputs(out_dir, (img_source, label_source))
    data_list = load_label_data_list(img_source, label_source, label_suffix, slice_axes, slice_step, skip_empty)
    _check_finite_images(data_list)
    names = _exported_names(data_list)
    with output_folder(out_dir, overwrite, inputs=(img_source, label_source)) as folder:
        img_dir = osp.join(folder, 'images')
        exported = []
        for info, name in zip(data_list, names):
            out_path = osp.join(img_dir, name)
            if 'slice_axis' in info:
                slice_hw = read_image(info['img_path'], info['slice_axis'], info['slice_index'])
                write_tiff(out_path, slice_hw)
            else:
                with atomic_output(out_path, 'wb') as f, open(info['img_path'], 'rb') as source:
                    shutil.copyfileobj(source, f)
            exported.append(dict(info, img_path=out_path))
        coco = data_list_to_coco(exported, img_dir)
        write_json(osp.join(folder, 'annotations.json'), coco)
    return coco
