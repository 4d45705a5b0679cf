"""TIFF volumes and their voxel size: reading (OME, ImageJ, our JSON description, resolution tags) and atomic
writing (ImageJ-compatible where ImageJ has the dtype and the shape)."""
import math
import numbers
import os
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import tifffile

from .errors import InputError, check_output_file
from .files import atomic_output
from .images import ImageFormatError, check_finite, read_tiff

# Length units found in ImageJ ('unit'), OME ('PhysicalSizeXUnit'), OME-Zarr ('axes' unit) and HDF5 attributes,
# in nm.
_UNIT_NM = {'nm': 1.0, 'nanometer': 1.0, 'nanometers': 1.0, 'um': 1e3, 'µm': 1e3, 'μm': 1e3, '\\u00b5m': 1e3,
            'micron': 1e3, 'microns': 1e3, 'micrometer': 1e3, 'micrometers': 1e3, 'mm': 1e6, 'millimeter': 1e6,
            'cm': 1e7, 'centimeter': 1e7, 'm': 1e9, 'meter': 1e9, 'pm': 1e-3, 'picometer': 1e-3, 'a': 0.1,
            'å': 0.1, 'angstrom': 0.1}


def read_volume(path):
    """Read a 3-D TIFF stack and the voxel size stored in its metadata.

    The voxel size is taken, in this order, from OME metadata (``PhysicalSizeZ/Y/X`` + units), ImageJ metadata
    (``unit``, ``spacing`` for Z, X/YResolution in pixels per unit), the ``voxel_size_nm`` of the JSON description
    of our uint32 and one-slice files, or X/YResolution tags with a centimetre, millimetre or micrometre
    resolution unit. Resolution tags in inches, and a 72 or 96 dpi in any unit, are ignored: they are nearly always a
    print default, not a voxel size. When Z is unknown but X/Y are, the voxels are taken as cubic with the X size.

    Args:
        path (str | os.PathLike): TIFF file.

    Returns:
        tuple: ``(array, voxel_size_nm)`` with ``array`` of shape (Z, Y, X) as stored (a one-slice file that
        records its z axis, as :func:`write_tiff` writes it, is (1, Y, X)) and ``voxel_size_nm`` a float64 array
        ``(sz, sy, sx)`` in nm, or ``None`` when the file does not record a usable one (an unusable one is warned).

    Raises:
        FileNotFoundError: the file does not exist.
        ImageFormatError (a ``ValueError``): the file is not a TIFF, is truncated or corrupt, is not a
            single-channel 3-D stack, or holds NaN/Inf voxels (the message names the file and the z slice).
    """
    array, voxel_size_nm = _read_tiff(path, read_array=True)
    for z, slice_yx in enumerate(array):
        check_finite(slice_yx, path, 'z', z)
    return array, voxel_size_nm


def tiff_voxel_size(path):
    """The voxel size recorded in a TIFF's metadata, as :func:`read_volume` finds it, reading only the header (of a
    2D image too: its pixel size, as (sx, sy, sx)); any format: :func:`~libnet_mmdet.io.read_voxel_size`.

    Returns:
        np.ndarray | None: float64 ``(sz, sy, sx)`` in nm, or None when the file does not record a usable one (an
        unusable one is warned: :func:`recorded_voxel_size`).

    Raises:
        FileNotFoundError / ImageFormatError: as :func:`read_volume`.
    """
    return _read_tiff(path, read_array=False)[1]


def _read_tiff(path, read_array):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: file not found')

    def read(tif, series, shape, is_colour):
        if read_array and (len(shape) != 3 or is_colour):
            raise ImageFormatError(f'{path}: expected a 3-D (Z, Y, X) stack, got shape {shape}')
        array = series.asarray().reshape(shape) if read_array else None
        return array, _recorded_voxel_size(tif, path)

    return read_tiff(path, read)


def _recorded_voxel_size(tif, path):
    return recorded_voxel_size(
        lambda: _ome_voxel_size(tif) or _imagej_voxel_size(tif) or _shaped_voxel_size(tif) or _tag_voxel_size(tif),
        path, 'OME, ImageJ or resolution tags')


def agreed_voxel_size(recorded):
    """The (Z, Y, X) voxel size in nm that several inputs of one scan record: the first recorded, or None when none
    records one.

    Args:
        recorded (dict): input path -> the size it records (one or three nm values) or None; the main input first.

    Raises:
        ValueError: two inputs record different sizes (another scan, or resampled): the message names both and asks
            for ``--voxel-size-nm``.
    """
    sizes = {path: voxel_size_zyx(size, path) for path, size in recorded.items() if size is not None}
    if not sizes:
        return None
    (first, size), *others = sizes.items()
    for path, other in others:
        if not np.allclose(other, size, rtol=1e-3):
            raise ValueError(f"{path}: records voxel size {' x '.join(f'{v:g}' for v in other)} nm, {first} "
                             f"{' x '.join(f'{v:g}' for v in size)} nm (Z x Y x X): not the same scan, or resampled; "
                             'pass --voxel-size-nm to say which')
    return size


def recorded_voxel_size(read_sizes, name, what):
    """The voxel size an input's metadata record, float64 ``(sz, sy, sx)`` nm, or None: none recorded
    (``read_sizes()`` returns None), or metadata that give no usable one (text, zero, negative, not finite, two
    values), which is warned naming ``name`` and ``what``: the voxels are sound, and a voxel size the user gives
    needs none from the file.

    Args:
        read_sizes (callable): returns one or three (Z, Y, X) sizes in nm, or None; may raise ValueError,
            TypeError or KeyError on malformed metadata.
        name (str): the file (and dataset), for the warning.
        what (str): where in the metadata, for the warning (e.g. ``attribute element_size_um``).
    """
    try:
        sizes = read_sizes()
        if sizes is None:
            return None
        return voxel_size_zyx(sizes, what)
    except (ValueError, TypeError, KeyError) as exc:
        detail = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        problem = detail if detail.startswith(f'{what}: ') else f'{what}: {detail}'
    warnings.warn(f'{name}: unusable voxel size in its metadata ({problem}); read as not recorded')
    return None


def length_unit_nm(unit):
    """One ``unit`` (a length unit's name or symbol: 'nm', 'µm', 'micrometer', ...) in nm, or None if unknown."""
    return _UNIT_NM.get(str(unit).strip().lower())


def _ome_voxel_size(tif):
    if not tif.is_ome:
        return None
    root = ET.fromstring(tif.ome_metadata)
    pixels = next((el for el in root.iter() if el.tag.endswith('Pixels')), None)
    if pixels is None or 'PhysicalSizeX' not in pixels.attrib:
        return None
    sizes = {}
    for axis in 'XYZ':
        value = pixels.attrib.get(f'PhysicalSize{axis}')
        scale = length_unit_nm(pixels.attrib.get(f'PhysicalSize{axis}Unit', 'µm'))
        if value is not None and scale is not None:
            sizes[axis] = float(value) * scale
    if 'X' not in sizes:
        return None
    return sizes.get('Z', sizes['X']), sizes.get('Y', sizes['X']), sizes['X']


def _shaped_voxel_size(tif):
    """``voxel_size_nm`` (Z, Y, X) of the JSON description our uint32 label TIFFs carry (no ImageJ metadata)."""
    metadata = tif.shaped_metadata[0] if tif.is_shaped and tif.shaped_metadata else {}
    sizes = metadata.get('voxel_size_nm')
    return tuple(float(size) for size in sizes) if isinstance(sizes, list) and len(sizes) == 3 else None


def _resolution_size(page, tag_name, scale):
    tag = page.tags.get(tag_name)
    if tag is None:
        return None
    numerator, denominator = tag.value
    if numerator == 0:
        return None
    return denominator / numerator * scale  # resolution is pixels per unit


def _imagej_voxel_size(tif):
    metadata = tif.imagej_metadata
    if not metadata or 'unit' not in metadata:
        return None
    scale = length_unit_nm(metadata['unit'])
    page = tif.pages[0]
    sx = _resolution_size(page, 'XResolution', scale) if scale else None
    if sx is None or _is_print_default(sx):
        return None
    sy = _resolution_size(page, 'YResolution', scale) or sx
    sz = float(metadata['spacing']) * scale if 'spacing' in metadata else sx
    return sz, sy, sx


#: The resolution units of the X/YResolution tags read as a voxel size (inches are not: nearly always a print
#: default); ``PRINT_DEFAULT_NM`` are those defaults (72 and 96 dpi) however stored (ImageJ's unit too), also read as
#: not recorded.
RESOLUTION_UNITS = {tifffile.RESUNIT.CENTIMETER: 'cm', tifffile.RESUNIT.MILLIMETER: 'mm',
                    tifffile.RESUNIT.MICROMETER: 'um'}
PRINT_DEFAULT_NM = (25.4e6 / 72, 25.4e6 / 96)


def _tag_voxel_size(tif):
    page = tif.pages[0]
    unit = page.tags.get('ResolutionUnit')
    unit_nm = length_unit_nm(RESOLUTION_UNITS.get(unit.value)) if unit is not None else None
    sx = _resolution_size(page, 'XResolution', unit_nm) if unit_nm else None
    if sx is None or _is_print_default(sx):
        return None
    return sx, _resolution_size(page, 'YResolution', unit_nm) or sx, sx


def _is_print_default(size_nm):
    """Whether a pixel size read from resolution tags is a print resolution's (:data:`PRINT_DEFAULT_NM`)."""
    return any(math.isclose(size_nm, size, rel_tol=1e-3) for size in PRINT_DEFAULT_NM)


def voxel_size_zyx(voxel_size_nm, name='voxel_size_nm'):
    """Return the voxel size as a float64 array ``(sz, sy, sx)`` in nm.

    Args:
        voxel_size_nm (float | sequence[float]): one edge length for cubic voxels (a number or a one-element
            sequence), or three (Z, Y, X) lengths, in nm.
        name (str): the argument or file the messages name.

    Raises:
        ValueError: not numbers (bools included), not one or three values, or a size that is not finite and > 0.
    """
    values = np.atleast_1d(np.asarray(voxel_size_nm, dtype=object)).ravel()
    if not all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in values):
        raise ValueError(f'{name}: voxel sizes must be numbers (nm), got {voxel_size_nm!r}')
    if isinstance(voxel_size_nm, numbers.Real):
        sizes = np.full(3, float(voxel_size_nm))
    else:
        sizes = np.asarray(voxel_size_nm, dtype=np.float64).ravel()
        if sizes.size == 1:
            sizes = np.repeat(sizes, 3)
        elif sizes.size != 3:
            raise ValueError(f'{name}: expected one value or three (Z, Y, X) values in nm, got {voxel_size_nm!r}')
    if not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
        raise ValueError(f'{name}: voxel sizes must be finite and > 0 nm, got {voxel_size_nm!r}')
    return sizes


def tiff_metadata(dtype, voxel_size_nm, shape):
    """Keyword arguments for ``tifffile`` that record ``voxel_size_nm`` (None, a number or (Z, Y, X) nm) of an array
    of ``shape`` ((H, W) or (Z, Y, X)) and ``dtype``.

    uint8/uint16/float32 are written as ImageJ files (``unit`` um, ``spacing`` = z size for stacks, X/YResolution
    in pixels per um), what ImageJ/Fiji and :func:`read_volume` read. ImageJ has no uint32, cannot tell a
    one-slice stack from a 2D image, and loses a Y or X axis of length 1 (a (Z, 1, X) stack reads back as a 2D
    (Z, X) image, a (Z, Y, 1) one as a damaged file): those files are written with tifffile's JSON description
    instead, which records the shape with its axes (tifffile and :func:`read_volume` read a (1, Y, X) or (Z, 1, X)
    volume back as it was), the resolution in pixels per cm and ``voxel_size_nm`` (Z, Y, X).
    """
    axes = 'ZYX'[-len(shape):]
    imagej = (np.dtype(dtype) in (np.uint8, np.uint16, np.float32) and tuple(shape[:-2]) != (1,)
              and 1 not in tuple(shape[-2:]))
    kwargs = dict(imagej=imagej, photometric='minisblack', metadata={'axes': axes})
    if voxel_size_nm is None:
        return kwargs
    sz, sy, sx = voxel_size_zyx(voxel_size_nm) / 1000  # um
    if imagej:
        metadata = {'axes': axes, 'unit': 'um', **({'spacing': sz} if len(shape) == 3 else {})}
        kwargs.update(resolution=(1 / sx, 1 / sy), metadata=metadata)
    else:
        kwargs.update(resolution=(1e4 / sx, 1e4 / sy), resolutionunit='CENTIMETER',
                      metadata={'axes': axes, 'voxel_size_nm': [sz * 1000, sy * 1000, sx * 1000]})
    return kwargs


def write_tiff_pages(path, shape, dtype, pages, voxel_size_nm=None):
    """Write a (Z, Y, X) stack from an iterator of (Y, X) pages (or a (H, W) / (Z, Y, X) array), atomically.

    The file is uncompressed and contiguous (memory-mappable), with the shape and voxel size as
    :func:`tiff_metadata` records them; BigTIFF when it exceeds 4 GB and is not ImageJ. No time stamps: the same
    data give the same bytes.
    """
    kwargs = tiff_metadata(dtype, voxel_size_nm, shape)
    bigtiff = not kwargs['imagej'] and int(np.prod(shape)) * np.dtype(dtype).itemsize > 2**32 - 2**25
    with atomic_output(path, 'wb') as stream:
        with tifffile.TiffWriter(stream, bigtiff=bigtiff, imagej=kwargs.pop('imagej')) as writer:
            writer.write(pages, shape=tuple(shape), dtype=dtype, **kwargs)


def write_tiff(path, array, voxel_size_nm=None, overwrite=False):
    """Write a (H, W) or (Z, Y, X) array atomically as TIFF, with its voxel size when given (see
    :func:`tiff_metadata`).

    Raises:
        InputError: ``path`` exists (unless ``overwrite``), is a folder or cannot be written
            (:func:`~libnet_mmdet.io.errors.check_output_file`); ``array`` is not a non-empty 2D or 3D array.
        ValueError: ``voxel_size_nm`` not one or three finite sizes > 0 nm (:func:`voxel_size_zyx`).
    """
    array = np.asarray(array)
    if array.ndim not in (2, 3) or array.size == 0:
        raise InputError(f'{path}: expected a non-empty (H, W) or (Z, Y, X) array to write, got shape {array.shape}')
    check_output_file(path, overwrite)
    write_tiff_pages(path, array.shape, array.dtype, array, voxel_size_nm)
