"""Zarr and OME-Zarr volumes: the (Z, Y, X) array of a Zarr store and its voxel size for reading, and the
multiscale label images we write (OME-NGFF 0.4 on a Zarr v2 store, what napari-ome-zarr, Fiji's N5/Zarr plugins
and dask read).

Reading (:func:`open_zarr_volume`): ``labels.zarr`` is a Zarr array, or an OME-Zarr image group whose first
multiscale's first dataset (full resolution) is read; ``x.zarr:/path`` picks an array (or an OME-Zarr image group)
inside a group; an array that is a level of an OME-Zarr image (``image.zarr:/1``) is read as that level, with its
scale. OME-NGFF 0.4 (attributes ``multiscales``, Zarr v2) and 0.5 (``ome.multiscales``, Zarr v3) are
read, and 0.1–0.3 (axes untyped: known by their names ``t c z y x``, or (T, C, Z, Y, X) where none are named); a
bioformats2raw store (attribute ``bioformats2raw.layout``) is read from its image ``0``. Length-1 axes other than
space axes (``t``, ``c``) are dropped, the three space axes are (Z, Y, X) (an image whose typed axes hold another
number of space axes, a (C, Y, X) colour image, is refused, as are space axes named in another order than z, y,
x). The voxel size is the product of the dataset's and the multiscale's ``scale`` transformations on the space
axes, in the units of ``axes`` (``nanometer``, ``micrometer``, ...), or None when an axis has no unit.

Writing: a group with arrays ``0`` (full resolution), ``1``, ... each half the previous one (every second voxel
along z, y and x: nearest neighbour, so label ids stay ids) while the level's Y and X are both larger than
:data:`MIN_LEVEL_SIZE`, at most :data:`MAX_LEVELS` levels; chunks of ``chunk_z`` z-slices by up to
:data:`CHUNK_YX` along y and x; Blosc-zstd compression, ``/`` dimension separator. The group carries
``multiscales`` (axes z, y, x of type space, unit nanometer when the voxel size is known; a ``scale`` per level)
and ``image-label``, so that napari opens it as a labels layer.
"""
import json
import math
import os
import os.path as osp

import numcodecs
import numpy as np
import zarr

from .images import ImageFormatError
from .tiff import length_unit_nm, recorded_voxel_size, voxel_size_zyx

#: Metadata files that make a folder a Zarr store (v2 array, v2 group, v3 node).
ZARR_METADATA = ('.zarray', '.zgroup', 'zarr.json')
NGFF_VERSION = '0.4'
#: Pyramid: a level is halved again while its Y and X are both larger than this, up to MAX_LEVELS levels in all.
MIN_LEVEL_SIZE = 256
MAX_LEVELS = 4
#: Chunk side along y and x of the written levels (voxels).
CHUNK_YX = 256
LABEL_COMPRESSOR = numcodecs.Blosc(cname='zstd', clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)


def _has_zarr_metadata(path):
    return any(osp.isfile(osp.join(path, name)) for name in ZARR_METADATA)


def is_zarr(path):
    """True for a folder named ``*.zarr`` or holding Zarr metadata (``.zarray``, ``.zgroup``, ``zarr.json``)."""
    path = os.fspath(path)
    return osp.isdir(path) and (path.rstrip('/\\').lower().endswith('.zarr') or _has_zarr_metadata(path))


def _describe(store, array_path):
    return f'{store}:/{array_path}' if array_path else store


def _arrays_in(group):
    """'path (shape)' of every array of a group, for messages."""
    return ', '.join(sorted(f'/{array.path} {array.shape}' for _, array in group.members(max_depth=None)
                            if isinstance(array, zarr.Array))) or 'none'


def _open_node(store, node_path):
    """The array or group ``node_path`` ('' = the root) of the Zarr store ``store``."""
    if not osp.isdir(store):
        raise FileNotFoundError(f'{store}: file not found')
    problem = f'{store}: neither a Zarr array nor an OME-Zarr image'
    if not _has_zarr_metadata(store):
        raise ImageFormatError(f'{problem} (no {", ".join(ZARR_METADATA)} in the folder)')
    try:
        root = zarr.open(store=store, mode='r')
    except Exception as exc:  # zarr raises JSONDecodeError, ValueError, ... for metadata it cannot use
        raise ImageFormatError(f'{problem} ({type(exc).__name__}: {exc})') from exc
    key = node_path.strip('/')
    if not key:
        return root
    if isinstance(root, zarr.Array):
        raise ImageFormatError(f'{store}:/{key}: no such array: the store is itself an array, of shape {root.shape}')
    if key not in root:
        raise ImageFormatError(f'{store}:/{key}: no such array or group in the store (arrays: {_arrays_in(root)})')
    return root[key]


def _dataset_path(dataset):
    """A multiscale dataset's path inside its image group, without leading or trailing '/'."""
    return str(dataset['path']).strip('/')


def _level_paths(group):
    """The dataset paths of an OME-Zarr image group's first multiscale (none for an array, a plain group or
    unusable metadata)."""
    try:
        return {_dataset_path(dataset) for dataset in _multiscale(group)['datasets']}
    except (KeyError, TypeError):
        return set()


def _multiscale(group):
    """The first multiscale of an OME-Zarr image group (NGFF 0.4 ``multiscales``, 0.5 ``ome.multiscales``) or
    None."""
    attrs = group.attrs.asdict()
    multiscales = attrs.get('ome', attrs).get('multiscales')
    return multiscales[0] if isinstance(multiscales, list) and multiscales else None


def _scale(transformations, n_axes):
    scale = np.ones(n_axes)
    for transformation in transformations or ():
        if transformation.get('type') == 'scale':
            scale = scale * np.asarray(transformation['scale'], dtype=np.float64)
    return scale


def _ome_voxel_size(multiscale, dataset, name, axes):
    """(sz, sy, sx) nm of the three space axes (:func:`_axes`), or None when an axis has no known length unit."""
    space = [k for k, axis in enumerate(axes) if axis['type'] == 'space']
    units_nm = [length_unit_nm(axes[k].get('unit')) for k in space]
    if len(space) != 3 or None in units_nm:
        return None
    return recorded_voxel_size(lambda: (_scale(dataset.get('coordinateTransformations'), len(axes))
                                        * _scale(multiscale.get('coordinateTransformations'), len(axes)))[space]
                               * units_nm, name, 'OME-Zarr coordinateTransformations')


#: Axis types by axis name, for NGFF 0.3's untyped axes (a list of names) and 0.4 axes without a type.
AXIS_TYPES = dict(t='time', c='channel', z='space', y='space', x='space')


def _axes(multiscale, ndim):
    """The axes of a multiscale's ``ndim``-D datasets as dicts with a ``name`` (str), a ``type`` ('space', 'time',
    'channel' or None if unknown) and the ``unit`` if any: NGFF 0.4+ typed axes, else typed by name (0.3:
    ``['c', 'z', 'y', 'x']``), and (T, C, Z, Y, X) where the metadata name no axes (NGFF 0.1 / 0.2 images are always
    5D)."""
    axes = multiscale.get('axes') or (list('tczyx') if ndim == 5 else [])
    axes = [dict(axis) if isinstance(axis, dict) else {'name': axis} for axis in axes]
    for axis in axes:
        axis['name'] = str(axis.get('name'))
        axis['type'] = axis.get('type') or AXIS_TYPES.get(axis['name'])
    return axes


def _image_array(group, store, level=None):
    """(array, voxel_size_nm, leading_index) of an OME-Zarr image group: its full-resolution dataset, or the one
    whose path is ``level`` (a level the user named, with its own scale)."""
    where = _describe(store, group.path)
    multiscale = _multiscale(group)
    if multiscale is None:
        raise ImageFormatError(f'{where}: a Zarr group without OME-Zarr multiscales metadata; give the array as '
                               f'{store}:/<path> (arrays: {_arrays_in(group)})')
    try:
        datasets = multiscale['datasets']
        dataset = datasets[0] if level is None else next(d for d in datasets if _dataset_path(d) == level)
        array = group[dataset['path']]
    except (KeyError, IndexError, TypeError, StopIteration) as exc:
        raise ImageFormatError(f'{where}: OME-Zarr multiscales metadata without a readable first dataset '
                               f'({type(exc).__name__}: {exc})') from exc
    name = _describe(store, array.path)
    if not isinstance(array, zarr.Array):
        raise ImageFormatError(f'{name}: the first OME-Zarr dataset is a group, not an array')
    axes = _axes(multiscale, array.ndim)
    types = [axis['type'] for axis in axes]
    if len(types) == len(array.shape) and all(types) and types.count('space') != 3:
        names = ', '.join(axis['name'] for axis in axes)
        raise ImageFormatError(f'{name}: OME-Zarr axes ({names}) of shape {array.shape} hold '
                               f"{types.count('space')} space axes, not a (Z, Y, X) volume")
    space = [axis['name'].lower() for axis in axes if axis['type'] == 'space']
    if sorted(space) == ['x', 'y', 'z'] and space != ['z', 'y', 'x']:  # NGFF only recommends z, y, x
        raise ImageFormatError(f"{name}: OME-Zarr space axes in the order {', '.join(space)}; expected z, y, x "
                               '(write the image with its axes in that order)')
    index = leading_ones(array.shape)  # length-1 t / c axes of a (T, C, Z, Y, X) image
    if index and not (len(types) == len(array.shape) and types[len(index):] == ['space'] * 3):
        index = ()
    return array, _ome_voxel_size(multiscale, dataset, name, axes), index


def leading_ones(shape):
    """The index ``(0,) * k`` that drops the k length-1 axes before the last three of ``shape`` (a (1, Z, Y, X)
    dataset of a NeXus export, a (T, C, Z, Y, X) image of one time point and channel), or ``()`` when ``shape``
    has no such axes or another leading axis (the caller refuses what is not 3D)."""
    leading = len(shape) - 3
    return (0,) * leading if leading > 0 and all(size == 1 for size in shape[:leading]) else ()


def open_zarr_volume(store, node_path=''):
    """The array of a Zarr store to read as a (Z, Y, X) volume (see the module docstring).

    Args:
        store (str): the ``.zarr`` folder.
        node_path (str): an array or OME-Zarr image group inside it ('' = the store's root).

    Returns:
        tuple: ``(array, name, voxel_size_nm, leading_index)``: the ``zarr.Array``, ``store:/array_path`` for
        messages, float64 ``(sz, sy, sx)`` nm or None, and the index of its length-1 leading axes (``()`` or e.g.
        ``(0, 0)``: read ``array[leading_index + (z, y, x)]``). Its shape is checked by the caller.

    Raises:
        FileNotFoundError: no such folder.
        ImageFormatError: not a Zarr array or OME-Zarr image, a missing ``node_path``, a group without multiscales
            metadata (the message lists its arrays).
    """
    store = os.fspath(store)
    node = _open_node(store, node_path)
    attrs = {} if isinstance(node, zarr.Array) else node.attrs.asdict()
    if _multiscale(node) is None and 'bioformats2raw.layout' in {**attrs, **attrs.get('ome', {})} and '0' in node:
        node = node['0']  # bioformats2raw's store: its (first) image is the group 0
    if isinstance(node, zarr.Array):
        image = _image_of_level(store, node.path)
        if image is None:
            return node, _describe(store, node.path), None, leading_ones(node.shape)
        array, voxel_size_nm, index = _image_array(*image)  # a level named: its scale, its checks
    else:
        array, voxel_size_nm, index = _image_array(node, store)
    return array, _describe(store, array.path), voxel_size_nm, index


def _image_of_level(store, array_path):
    """``(group, store, level)`` of the OME-Zarr image group (the nearest ancestor) whose multiscale lists the array
    at ``array_path`` as a dataset (``level``: its path there, e.g. ``'1'`` or ``'res/1'``), or None."""
    parts = array_path.split('/')
    for depth in range(len(parts) - 1, -1, -1):
        group = _open_node(store, '/'.join(parts[:depth]))
        level = '/'.join(parts[depth:])
        if level in _level_paths(group):
            return group, store, level
    return None


def pyramid_shapes(shape):
    """(Z, Y, X) of every level: level 0 is ``shape``; each further level takes every second voxel of the
    previous one along z, y and x while that one's Y and X are both > :data:`MIN_LEVEL_SIZE`, at most
    :data:`MAX_LEVELS` levels."""
    shapes = [tuple(shape)]
    while len(shapes) < MAX_LEVELS and min(shapes[-1][1:]) > MIN_LEVEL_SIZE:
        shapes.append(tuple(math.ceil(size / 2) for size in shapes[-1]))
    return shapes


def multiscales_metadata(name, n_levels, voxel_size_nm=None):
    """The OME-NGFF 0.4 ``multiscales`` attribute of a (Z, Y, X) pyramid of ``n_levels`` levels named '0', '1',
    ...: space axes z, y, x (unit nanometer when ``voxel_size_nm`` is given) and each level's scale (the voxel
    size times 2**level, or 2**level voxels when unknown)."""
    sizes = np.ones(3) if voxel_size_nm is None else voxel_size_zyx(voxel_size_nm)
    unit = {} if voxel_size_nm is None else {'unit': 'nanometer'}
    return [{
        'version': NGFF_VERSION, 'name': name,
        'axes': [{'name': axis, 'type': 'space', **unit} for axis in 'zyx'],
        'datasets': [{'path': str(level), 'coordinateTransformations': [
            {'type': 'scale', 'scale': [float(size) * 2**level for size in sizes]}]} for level in range(n_levels)],
        'type': 'nearest',
    }]


def create_label_image(path, name, shape, dtype, voxel_size_nm=None, chunk_z=16):
    """Create an empty OME-Zarr label image called ``name`` (all its pyramid levels, zero-filled, no chunk
    written) at ``path`` (the folder must not exist)."""
    group = zarr.open_group(store=os.fspath(path), mode='w-', zarr_format=2)
    shapes = pyramid_shapes(shape)
    for level, level_shape in enumerate(shapes):
        group.create_array(str(level), shape=level_shape, dtype=dtype, fill_value=0, compressors=LABEL_COMPRESSOR,
                           chunks=(min(chunk_z, level_shape[0]),) + tuple(min(CHUNK_YX, n) for n in level_shape[1:]),
                           chunk_key_encoding={'name': 'v2', 'separator': '/'})
    group.attrs.update(multiscales=multiscales_metadata(name, len(shapes), voxel_size_nm),
                       **{'image-label': {'version': NGFF_VERSION}})


def is_our_label_image(path):
    """True when the folder ``path`` holds what :func:`create_label_image` and :func:`write_pyramid` write, and
    nothing else: ``.zgroup``, ``.zattrs`` with only the ``multiscales`` and ``image-label`` attributes, and the
    level arrays its multiscales name (a label writer's ``overwrite`` replaces no other ``.zarr``)."""
    try:
        with open(osp.join(path, '.zattrs'), encoding='utf-8') as stream:
            attrs = json.load(stream)
        levels = {dataset['path'] for dataset in attrs['multiscales'][0]['datasets']}
        entries = set(os.listdir(path))
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return False
    return (set(attrs) == {'multiscales', 'image-label'} and '.zgroup' in entries
            and entries <= {'.zgroup', '.zattrs'} | levels)


def write_pyramid(path, rank=0, world_size=1, barrier=lambda: None):
    """Fill levels 1, 2, ... of the label image at ``path`` from level 0, each from the one before (every second
    voxel): rank ``rank`` of ``world_size`` writes chunk rows (z-chunks) ``rank, rank + world_size, ...`` of each
    level, after ``barrier()`` has waited for every process to finish the level before (level 0: the writes of
    every process). Call it in every process; the last level is complete once every process has returned."""
    group = zarr.open_group(store=os.fspath(path), mode='r+')
    for level in range(1, len(group.attrs['multiscales'][0]['datasets'])):
        barrier()
        source, target = group[str(level - 1)], group[str(level)]
        chunk_z = target.chunks[0]
        for z0 in range(rank * chunk_z, target.shape[0], world_size * chunk_z):
            z1 = min(z0 + chunk_z, target.shape[0])
            target[z0:z1] = source[2 * z0:2 * z1:2, ::2, ::2]
