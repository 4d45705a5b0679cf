"""Atomic output files: nothing is ever left half-written where a user (or a resumed run) would read it."""
import contextlib
import io
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
    try:
        with os.fdopen(handle, mode, **({} if 'b' in mode else {'encoding': 'utf-8', 'newline': ''})) as stream:
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


def write_tiff(path, array, voxel_size_nm=None):
    """Write a (H, W) or (Z, Y, X) array atomically as TIFF, with its voxel size when given.

    uint8/uint16/float32 arrays are ImageJ hyperstacks (``unit`` = um, X/YResolution in pixels per um,
    ``spacing`` = Z step in um: Fiji shows the voxel size); other dtypes (uint32 labels) are plain TIFFs with the
    resolution in pixels per cm and ``voxel_size_nm`` in the description metadata. No time stamps: the same
    array gives the same bytes.
    """
    array = np.asarray(array)
    buffer = io.BytesIO()  # tifffile needs a named or in-memory file
    axes = 'ZYX'[-array.ndim:]
    if voxel_size_nm is None:
        tifffile.imwrite(buffer, array, metadata={'axes': axes})
    elif array.dtype in (np.uint8, np.uint16, np.float32):
        voxel_um = voxel_size_nm / 1000
        metadata = {'unit': 'um', 'axes': axes}
        if array.ndim == 3:
            metadata['spacing'] = voxel_um
        tifffile.imwrite(buffer, array, imagej=True, resolution=(1 / voxel_um, 1 / voxel_um), metadata=metadata)
    else:
        per_cm = 1e7 / voxel_size_nm
        tifffile.imwrite(buffer, array, resolution=(per_cm, per_cm), resolutionunit='CENTIMETER',
                         metadata={'axes': axes, 'voxel_size_nm': voxel_size_nm})
    with atomic_output(path, 'wb') as stream:
        stream.write(buffer.getvalue())
