"""Atomic output files: nothing is ever left half-written where a user (or a resumed run) would read it."""
import contextlib
import json
import os
import tempfile

import numpy as np
import tifffile


@contextlib.contextmanager
def atomic_output(path, mode='w'):
    """Open a temporary file next to ``path`` and move it onto ``path`` only when the block succeeds.

    Args:
        path (str | os.PathLike): final file path; its folder is created if missing.
        mode (str): ``'w'`` for text (UTF-8) or ``'wb'`` for bytes.

    Yields:
        file: the open temporary file.
    """
    path = os.fspath(path)
    folder, base = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp_path = tempfile.mkstemp(prefix=f'.{base}.', suffix='.tmp', dir=folder)
    os.close(handle)  # reopened by name: writers such as tifffile need the file's name
    try:
        with open(tmp_path, mode, **({} if 'b' in mode else {'encoding': 'utf-8', 'newline': ''})) as stream:
            yield stream
        umask = os.umask(0)  # mkstemp creates 0600 files: give the usual permissions of a new file
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
        raise


def write_json(path, obj, indent=None):
    """Write ``obj`` as JSON to ``path`` atomically."""
    with atomic_output(path) as f:
        json.dump(obj, f, indent=indent)


def tiff_metadata(dtype, voxel_size_nm, ndim=3):
    """Keyword arguments for ``tifffile`` that record ``voxel_size_nm`` (None, a number or (Z, Y, X) nm).

    uint8/uint16/float32 are written as ImageJ files (``unit`` um, ``spacing`` = z size for stacks, X/YResolution
    in pixels per um), what ImageJ/Fiji and :func:`libnet_mmdet.analysis.io.read_volume` read. ImageJ has no
    uint32: those files carry the resolution in pixels per cm and ``voxel_size_nm`` (Z, Y, X) in the description.
    """
    from .analysis.checks import voxel_size_zyx  # lazy: the analysis package imports this module
    axes = 'ZYX'[-ndim:]
    imagej = np.dtype(dtype) in (np.uint8, np.uint16, np.float32)
    kwargs = dict(imagej=imagej, photometric='minisblack', metadata={'axes': axes})
    if voxel_size_nm is None:
        return kwargs
    sz, sy, sx = voxel_size_zyx(voxel_size_nm) / 1000  # um
    if imagej:
        metadata = {'axes': axes, 'unit': 'um', **({'spacing': sz} if ndim == 3 else {})}
        kwargs.update(resolution=(1 / sx, 1 / sy), metadata=metadata)
    else:
        kwargs.update(resolution=(1e4 / sx, 1e4 / sy), resolutionunit='CENTIMETER',
                      metadata={'axes': axes, 'voxel_size_nm': [sz * 1000, sy * 1000, sx * 1000]})
    return kwargs


def write_tiff_pages(path, shape, dtype, pages, voxel_size_nm=None):
    """Write a (Z, Y, X) stack from an iterator of (Y, X) pages (or a (H, W) / (Z, Y, X) array), atomically.

    The file is uncompressed and contiguous (memory-mappable), with the voxel size as :func:`tiff_metadata`
    records it; BigTIFF when it exceeds 4 GB and is not ImageJ. No time stamps: the same data give the same bytes.
    """
    kwargs = tiff_metadata(dtype, voxel_size_nm, ndim=len(shape))
    bigtiff = not kwargs['imagej'] and int(np.prod(shape)) * np.dtype(dtype).itemsize > 2**32 - 2**25
    with atomic_output(path, 'wb') as stream:
        with tifffile.TiffWriter(stream, bigtiff=bigtiff, imagej=kwargs.pop('imagej')) as writer:
            writer.write(pages, shape=tuple(shape), dtype=dtype, **kwargs)


def write_tiff(path, array, voxel_size_nm=None):
    """Write a (H, W) or (Z, Y, X) array atomically as TIFF, with its voxel size when given (see
    :func:`tiff_metadata`)."""
    array = np.asarray(array)
    write_tiff_pages(path, array.shape, array.dtype, array, voxel_size_nm)
