"""Write a synthetic volume (TIFF stacks, ground-truth CSV, parameters) and 2D training slices (COCO, VIA).

Folder layout written by :func:`write_dataset`::

    image.tif  labels.tif  phases.tif  particles.csv  params.json
    coco/annotations.json  coco/images/<axis><index>.tif     (one 2D slice image per exported slice)
    via/via_region_data.json                                  (same images, VIA 2.x project export)

Every file is written atomically (temporary file + rename) and holds no time stamp, so the same seed and
parameters give byte-identical files. TIFF stacks carry the voxel size (:func:`libnet_mmdet.io.write_tiff`).
"""
import dataclasses
import os

import numpy as np
from pycocotools import mask as mask_utils
from scipy import ndimage
from skimage.measure import find_contours

from ..io import InputError, atomic_output, check_int, output_folder, write_json, write_tiff
from ..io.images import SLICE_AXES, check_slicing
from ..version import __version__
from .generate import SyntheticVolume


def slice_2d(array_zyx, axis, index):
    """The 2D (H, W) slice of a (Z, Y, X) array: z -> (Y, X), y -> (Z, X), x -> (Z, Y)."""
    return array_zyx[(slice(None),) * SLICE_AXES.index(axis) + (index,)]


def select_slices(labels_zyx, axes=('z',), every=1, skip_empty=True):
    """Slices to export: ``(axis, index)`` pairs, every ``every``-th index along each axis.

    Args:
        labels_zyx (np.ndarray): (Z, Y, X) instance labels.
        axes (sequence[str]): one or more of ``'z'``, ``'y'``, ``'x'``, each once.
        every (int): keep indices 0, every, 2 * every, ...
        skip_empty (bool): drop slices without any particle.

    Raises:
        ValueError: an unknown or repeated axis, none, or ``every`` not an integer >= 1
            (:func:`~libnet_mmdet.io.images.check_slicing`).
    """
    axes, every = check_slicing(axes, every, names=('axes', 'every'))
    chosen = []
    for axis in axes:
        for index in range(0, labels_zyx.shape[SLICE_AXES.index(axis)], every):
            if not skip_empty or slice_2d(labels_zyx, axis, index).any():
                chosen.append((axis, index))
    return chosen


def slice_file_name(axis, index, shape_zyx):
    """File name of an exported slice image, e.g. ``z0012.tif`` (zero-padded to at least 4 digits)."""
    width = max(4, len(str(shape_zyx[SLICE_AXES.index(axis)] - 1)))
    return f'{axis}{index:0{width}d}.tif'


def coco_annotations(labels_zyx, slices, file_names, info=None, min_area_px=0):
    """COCO instance-segmentation dict for slices of a label volume, masks as exact RLE.

    Each (slice, particle id) pair with at least ``min_area_px`` pixels becomes one annotation (all its pieces in
    one mask), category 1 ``particle``, ``iscrowd`` 0, plus ``instance_id`` (the 3D label). Images carry
    ``volume_axis`` and ``slice_index``.

    Args:
        labels_zyx (np.ndarray): (Z, Y, X) instance labels.
        slices (list[tuple[str, int]]): from :func:`select_slices`.
        file_names (list[str]): image file name of each slice.
        info (dict, optional): the COCO ``info`` block.
        min_area_px (int): smaller slice sections are left out.

    Returns:
        dict: ``info``, ``licenses``, ``images``, ``annotations``, ``categories``.
    """
    images, annotations = [], []
    for image_id, ((axis, index), file_name) in enumerate(zip(slices, file_names), start=1):
        labels_hw = slice_2d(labels_zyx, axis, index)
        images.append({'id': image_id, 'file_name': file_name, 'height': int(labels_hw.shape[0]),
                       'width': int(labels_hw.shape[1]), 'volume_axis': axis, 'slice_index': int(index)})
        for instance_id, box in enumerate(ndimage.find_objects(labels_hw), start=1):
            if box is None:
                continue
            mask = np.zeros(labels_hw.shape, dtype=np.uint8, order='F')
            mask[box] = labels_hw[box] == instance_id
            area = int(np.count_nonzero(mask[box]))
            if area < max(min_area_px, 1):
                continue
            rle = mask_utils.encode(mask)
            annotations.append({
                'id': len(annotations) + 1, 'image_id': image_id, 'category_id': 1,
                'segmentation': {'size': rle['size'], 'counts': rle['counts'].decode('ascii')}, 'area': area,
                'bbox': [float(v) for v in mask_utils.toBbox(rle)], 'iscrowd': 0, 'instance_id': instance_id})
    return {'info': dict(info or {}), 'licenses': [], 'images': images, 'annotations': annotations,
            'categories': [{'id': 1, 'name': 'particle', 'supercategory': 'particle'}]}


def instance_polygons(mask_hw):
    """Outline polygons of a binary mask, one per 4-connected piece (holes filled), as (rows, cols) arrays.

    The contours are traced at level 0.5 (half-way between pixel centres) and only their collinear vertices are
    dropped, so rasterising them with :func:`skimage.draw.polygon` gives the filled pieces back.
    """
    pieces, _ = ndimage.label(mask_hw)
    polygons = []
    for index, box in enumerate(ndimage.find_objects(pieces), start=1):
        piece = np.pad(ndimage.binary_fill_holes(pieces[box] == index), 1).astype(np.float32)
        contour = max(find_contours(piece, 0.5), key=len)[:-1]  # closed: drop the repeated last point
        step = np.diff(contour, axis=0, append=contour[:1])
        turns = np.any(step != np.roll(step, 1, axis=0), axis=1)  # direction changes at this vertex
        contour = contour[turns]
        polygons.append((contour[:, 0] + box[0].start - 1, contour[:, 1] + box[1].start - 1))
    return polygons


def via_regions(labels_zyx, slices, file_names, file_sizes, min_area_px=0):
    """VIA 2.x project export (``via_region_data.json`` content) for slices of a label volume.

    Keys are ``file_name + str(size_in_bytes)``; each particle piece in a slice is one polygon region (VIA has no
    multi-part or holed polygons) with empty ``region_attributes``; ``file_attributes`` hold ``volume_axis`` and
    ``slice_index``. Coordinates follow VIA's display and COCO: the centre of pixel (row r, col c) is at
    (x, y) = (c + 0.5, r + 0.5).

    Returns:
        dict: the VIA JSON object.
    """
    regions_by_file = {}
    for (axis, index), file_name, size in zip(slices, file_names, file_sizes):
        labels_hw = slice_2d(labels_zyx, axis, index)
        regions = []
        for instance_id, box in enumerate(ndimage.find_objects(labels_hw), start=1):
            if box is None:
                continue
            own = labels_hw[box] == instance_id
            if np.count_nonzero(own) < max(min_area_px, 1):
                continue
            for rows, cols in instance_polygons(own):
                regions.append({'shape_attributes': {  # VIA/COCO coordinates: pixel centres at +0.5
                    'name': 'polygon', 'all_points_x': [float(c) + box[1].start + 0.5 for c in cols],
                    'all_points_y': [float(r) + box[0].start + 0.5 for r in rows]}, 'region_attributes': {}})
        regions_by_file[f'{file_name}{size}'] = {
            'filename': file_name, 'size': int(size), 'regions': regions,
            'file_attributes': {'volume_axis': axis, 'slice_index': str(index)}}
    return regions_by_file


def check_export_options(axes, every, skip_empty, min_area_px, coco, via):
    """The slice export options of :func:`export_slices`, checked: ``(axes, every, min_area_px)`` as a tuple of axis
    names and two ints.

    Raises:
        ValueError: bad ``axes`` or ``every`` (:func:`~libnet_mmdet.io.images.check_slicing`).
        InputError: ``min_area_px`` is not an integer >= 0, or ``skip_empty``, ``coco`` or ``via`` is not a bool.
    """
    axes, every = check_slicing(axes, every, names=('axes', 'every'))
    for name, flag in (('skip_empty', skip_empty), ('coco', coco), ('via', via)):
        if not isinstance(flag, (bool, np.bool_)):
            raise InputError(f'{name} must be True or False, got {flag!r}')
    return axes, every, check_int(min_area_px, 'min_area_px', 0)


def export_slices(out_dir, image_zyx, labels_zyx, voxel_size_nm, axes=('z',), every=1, skip_empty=True,
                  min_area_px=0, coco=True, via=True, info=None):
    """Write 2D training slices of a labelled volume as COCO and/or VIA datasets.

    Slice images go to ``out_dir/coco/images/`` (same dtype as ``image_zyx``), the COCO file to
    ``out_dir/coco/annotations.json`` and the VIA file to ``out_dir/via/via_region_data.json`` (its file names
    refer to ``coco/images/``).

    Args:
        out_dir (str | os.PathLike): dataset folder (created if missing).
        image_zyx, labels_zyx (np.ndarray): (Z, Y, X) image and instance labels.
        voxel_size_nm (float): pixel size written to the slice TIFFs.
        axes, every, skip_empty: slice selection, see :func:`select_slices`.
        min_area_px (int): slice sections smaller than this are not annotated.
        coco, via (bool): which annotation files to write.
        info (dict, optional): COCO ``info`` block.

    Returns:
        dict: paths written, keys ``images_dir``, ``coco``, ``via`` (when written); empty, and nothing written,
        with neither ``coco`` nor ``via`` (slice images without annotations train nothing).

    Raises:
        ValueError / InputError: the two arrays differ in shape, or bad options (:func:`check_export_options`);
            before anything is written.
    """
    if image_zyx.shape != labels_zyx.shape:
        raise ValueError(f'image_zyx shape {image_zyx.shape} does not match labels_zyx shape {labels_zyx.shape}')
    axes, every, min_area_px = check_export_options(axes, every, skip_empty, min_area_px, coco, via)
    if not (coco or via):
        return {}
    slices = select_slices(labels_zyx, axes, every, skip_empty)
    images_dir = os.path.join(out_dir, 'coco', 'images')
    os.makedirs(images_dir, exist_ok=True)
    file_names = [slice_file_name(axis, index, labels_zyx.shape) for axis, index in slices]
    for (axis, index), file_name in zip(slices, file_names):
        write_tiff(os.path.join(images_dir, file_name), np.ascontiguousarray(slice_2d(image_zyx, axis, index)),
                   voxel_size_nm)
    written = {'images_dir': images_dir}
    if coco:
        written['coco'] = os.path.join(out_dir, 'coco', 'annotations.json')
        write_json(written['coco'], coco_annotations(labels_zyx, slices, file_names, info, min_area_px))
    if via:
        written['via'] = os.path.join(out_dir, 'via', 'via_region_data.json')
        sizes = [os.path.getsize(os.path.join(images_dir, name)) for name in file_names]
        write_json(written['via'], via_regions(labels_zyx, slices, file_names, sizes, min_area_px))
    return written


def write_particles_csv(path, particles):
    """Write a ground-truth table (:func:`~libnet_mmdet.synth.groundtruth.ground_truth_table`) as CSV, atomically,
    floats with 6 significant digits."""
    with atomic_output(path, 'w') as stream:
        particles.to_csv(stream, index=False, float_format='%.6g', lineterminator='\n')


def write_dataset(out_dir, volume, axes=('z',), every=1, skip_empty=True, min_area_px=0, coco=True, via=True,
                  overwrite=False):
    """Write a :class:`~libnet_mmdet.synth.generate.SyntheticVolume` and its 2D training exports to one folder.

    Files: ``image.tif``, ``labels.tif``, ``phases.tif`` (Z, Y, X stacks with the voxel size), ``particles.csv``
    (ground-truth table), ``params.json`` (parameters, seed, versions, summary) and the slice exports of
    :func:`export_slices`.

    ``out_dir`` holds one dataset only: it must be new or empty, or, with ``overwrite``, an output folder of an
    earlier run, which the new dataset replaces whole once it is written (:func:`~libnet_mmdet.io.output_folder`),
    so that no slice image of another export stays next to the new annotation files and an interrupted run leaves
    the earlier dataset as it was.

    Args:
        out_dir (str | os.PathLike): output folder; created if missing.
        volume (SyntheticVolume): what to write (:func:`~libnet_mmdet.synth.generate.generate_volume`).
        axes, every, skip_empty, min_area_px, coco, via: slice export options (:func:`export_slices`).
        overwrite (bool): empty ``out_dir`` when it holds an earlier run's output.

    Returns:
        dict: paths written, keys ``image``, ``labels``, ``phases``, ``particles``, ``params`` and those of
        :func:`export_slices`.

    Raises:
        TypeError: ``volume`` is not a SyntheticVolume.
        ValueError / InputError: bad export options (:func:`check_export_options`).
        InputError: ``out_dir`` is not a folder, or is not empty (without ``overwrite``, or not written by
            libnet-mmdet).
        All before anything is written.
    """
    if not isinstance(volume, SyntheticVolume):
        raise TypeError(f'volume: expected a SyntheticVolume (generate_volume), got {type(volume).__name__}')
    check_export_options(axes, every, skip_empty, min_area_px, coco, via)
    with output_folder(out_dir, overwrite) as folder:
        voxel_size_nm = volume.params.voxel_size_nm
        written = {name: os.path.join(folder, f'{name}.tif') for name in ('image', 'labels', 'phases')}
        arrays = dict(image=volume.image_zyx, labels=volume.labels_zyx, phases=volume.phases_zyx)
        for name, array in arrays.items():
            write_tiff(written[name], array, voxel_size_nm)
        written['particles'] = os.path.join(folder, 'particles.csv')
        write_particles_csv(written['particles'], volume.particles)
        written['params'] = os.path.join(folder, 'params.json')
        params_record = {'generator': 'libnet_mmdet.synth', 'libnet_mmdet_version': __version__,
                         'seed': volume.seed, 'params': dataclasses.asdict(volume.params), 'voxel_size_unit': 'nm',
                         'summary': volume.summary}
        write_json(written['params'], params_record, indent=2)
        info = {'description': 'libnet_mmdet synthetic NMC nano-CT slices', 'version': __version__,
                'seed': volume.seed, 'voxel_size_nm': voxel_size_nm, 'shape_zyx': list(volume.labels_zyx.shape)}
        written.update(export_slices(folder, volume.image_zyx, volume.labels_zyx, voxel_size_nm, axes, every,
                                     skip_empty, min_area_px, coco, via, info))
    return {key: os.path.join(os.fspath(out_dir), os.path.relpath(path, folder)) for key, path in written.items()}
