"""Volume I/O for streaming segmentation: lazy (Z, Y, X) input and uncompressed (Z, Y, X) arrays on disk read and
written slab by slab (the work folder of a run, :mod:`libnet_mmdet.volume.workdir`, keeps its arrays so).

Input (:func:`open_volume`): a TIFF stack, a folder of 2D slices (TIFF/PNG/JPG, sorted by name with numbers in
natural order) or an array-like with ``shape``, ``dtype`` and slicing (``np.ndarray``, ``np.memmap``, a zarr,
dask or h5py array). Uncompressed contiguous TIFF stacks (and the ``.npy`` scratch arrays) are read through
short-lived memory maps of z-ranges (:class:`StoredVolume`), compressed ones page by page, a folder file by file.
Reading slabs along y or x needs random access: for page-wise inputs the reader first copies the stack, page by
page, into an uncompressed scratch file (:meth:`VolumeReader.random_access`). Memory holds a slab (and at most
``MAP_CHUNK_BYTES`` of mapped file), whatever the size of the volume.
"""
import os
import os.path as osp
import re

import numpy as np
import tifffile

from .images import (IMAGE_SUFFIXES, ImageFormatError, check_finite, is_tiff, read_image, read_image_info, tiff_errors,
                     tiff_memmap)

AXES = {'z': 0, 'y': 1, 'x': 2}


def _natural_key(name):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', name)]


def list_slice_files(folder):
    """The 2D image files of a folder in natural order (``s2.tif`` before ``s10.tif``)."""
    names = sorted((n for n in os.listdir(folder) if n.lower().endswith(IMAGE_SUFFIXES)), key=_natural_key)
    return [osp.join(folder, n) for n in names]


#: Most bytes of a file mapped at once. A slab along y or x touches every z-plane of the file, so such slabs are
#: read and written through short-lived maps of z-ranges of this size: memory holds one range, not the file.
MAP_CHUNK_BYTES = 32 * 2**20


class StoredVolume:
    """A C-ordered (Z, Y, X) array stored uncompressed in a file at ``offset`` bytes (a ``.npy`` scratch array or
    a contiguous TIFF stack), read and written slab by slab through memory maps of z-ranges only (released after
    each access, so the pages touched do not stay resident)."""

    def __init__(self, path, shape, dtype, offset):
        self.path, self.shape, self.dtype, self.offset = os.fspath(path), tuple(shape), np.dtype(dtype), offset
        self._plane_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize

    @classmethod
    def npy(cls, path):
        """The array of a ``.npy`` file."""
        mapped = np.load(path, mmap_mode='r')
        stored = cls(path, mapped.shape, mapped.dtype, mapped.offset)
        del mapped
        return stored

    @classmethod
    def create(cls, path, shape, dtype):
        """A new zero-filled ``.npy`` array (a sparse file: no data written)."""
        created = np.lib.format.open_memmap(path, mode='w+', dtype=dtype, shape=tuple(shape))
        del created  # closes the map; the file keeps its header and holes
        return cls.npy(path)

    @classmethod
    def tiff(cls, path, shape=None):
        """The stack of an uncompressed contiguous TIFF file (``shape`` forces e.g. (1, Y, X) for one page), or
        None when the file cannot be memory-mapped (compressed, tiled, not contiguous)."""
        mapped = tiff_memmap(path, shape)
        if mapped is None:
            return None
        stored = cls(path, mapped.shape, mapped.dtype, mapped.offset)
        del mapped
        return stored

    def _map(self, z0, z1, mode):
        return np.memmap(self.path, self.dtype, mode, offset=self.offset + z0 * self._plane_bytes,
                         shape=(z1 - z0,) + self.shape[1:])

    def _z_ranges(self, axis, start, stop):
        if axis == 'z':
            return [(start, stop)]
        step = max(1, MAP_CHUNK_BYTES // self._plane_bytes)
        return [(z, min(z + step, self.shape[0])) for z in range(0, self.shape[0], step)]

    def read(self, axis, start, stop):
        """Slices ``start:stop`` along ``axis`` ('z', 'y', 'x') as an (n, h, w) array in native byte order."""
        index = _slab_index(axis, start, stop)
        parts = []
        for z0, z1 in self._z_ranges(axis, start, stop):
            mapped = self._map(z0, z1, 'r')
            parts.append(np.array(mapped[(slice(None),) + index[1:]] if axis != 'z' else mapped,
                                  dtype=self.dtype.newbyteorder('=')))
            del mapped
        return np.moveaxis(np.concatenate(parts), AXES[axis], 0)

    def write(self, axis, start, slab):
        """Write (n, h, w) slices at ``start`` along ``axis`` and flush them to the file."""
        data = np.moveaxis(np.asarray(slab), 0, AXES[axis])
        index = _slab_index(axis, start, start + len(slab))
        for z0, z1 in self._z_ranges(axis, start, start + len(slab)):
            mapped = self._map(z0, z1, 'r+')
            mapped[(slice(None),) + index[1:]] = data if axis == 'z' else data[z0:z1]
            mapped.flush()
            del mapped


class VolumeReader:
    """A (Z, Y, X) volume read lazily, slab by slab (see the module docstring).

    Attributes:
        shape (tuple): (Z, Y, X).
        dtype (np.dtype): stored dtype.
        name (str): the file, folder or ``<array>``, for messages.
    """

    def __init__(self, source):
        self._array = self._tiff = self._files = self._stored = None
        if isinstance(source, (str, os.PathLike)):
            self.name = os.fspath(source)
            if osp.isdir(self.name):
                self._open_folder()
            elif not osp.exists(self.name):
                raise FileNotFoundError(f'volume not found: {self.name}')
            elif is_tiff(self.name):
                self._open_tiff()
            else:
                raise ImageFormatError(f'{self.name}: not a TIFF stack or a folder of slices')
        else:
            self.name = '<array>'
            if not all(hasattr(source, attr) for attr in ('shape', 'dtype', '__getitem__')):
                raise TypeError(f'volume: expected a path or an array-like, got {type(source).__name__}')
            self._array, self.shape, self.dtype = source, tuple(source.shape), np.dtype(source.dtype)
        if len(self.shape) != 3:
            hint = '; use segment_image for a single slice' if len(self.shape) == 2 else ''
            raise ImageFormatError(f'{self.name}: expected a 3D (Z, Y, X) volume, got {len(self.shape)}D shape '
                                   f'{self.shape}{hint}')
        if 0 in self.shape:
            raise ImageFormatError(f'{self.name}: empty volume of shape (Z, Y, X) = {self.shape}')
        if not (np.issubdtype(self.dtype, np.integer) or np.issubdtype(self.dtype, np.floating)):
            raise ImageFormatError(f'{self.name}: unsupported dtype {self.dtype}; expected uint8/uint16/float32')

    def _open_tiff(self):
        shape, dtype, is_stack = read_image_info(self.name)  # raises ImageFormatError for unreadable / 4D files
        if not is_stack:
            raise ImageFormatError(f'{self.name}: expected a 3D (Z, Y, X) stack, got a single 2D image of shape '
                                   f'{shape}; use segment_image for a single slice')
        self.shape, self.dtype = shape, dtype
        self._stored = StoredVolume.tiff(self.name, shape)
        if self._stored is None:  # compressed or not contiguous: read page by page
            try:
                with tiff_errors(self.name):
                    self._tiff = tifffile.TiffFile(self.name)
                    n_pages = len(self._tiff.series[0].pages)
            except ImageFormatError:
                self.close()
                raise
            if n_pages != shape[0]:
                self._tiff.close()
                raise ImageFormatError(f'{self.name}: cannot stream this TIFF layout (not one page per z slice '
                                       'and not memory-mappable); save it uncompressed or as one page per slice')

    def _open_folder(self):
        self._files = list_slice_files(self.name)
        if not self._files:
            raise ImageFormatError(f'{self.name}: empty volume: no image files ({", ".join(IMAGE_SUFFIXES)}) in '
                                   'the folder')
        shape, self.dtype, is_stack = read_image_info(self._files[0])
        for path in self._files:
            other_shape, other_dtype, is_stack = read_image_info(path)
            if is_stack or len(other_shape) != 2:
                raise ImageFormatError(f'{path}: expected a 2D grayscale slice, got shape {other_shape}')
            if (other_shape, other_dtype) != (shape, self.dtype):
                raise ImageFormatError(f'{path}: slice of shape {other_shape} and dtype {other_dtype} differs from '
                                       f'the first slice {self._files[0]} ({shape}, {self.dtype})')
        self.shape = (len(self._files),) + tuple(shape)

    @property
    def streams_any_axis(self):
        """True when slabs along y and x can be read without a scratch copy."""
        return self._tiff is None and self._files is None

    def describe(self, axis, index):
        """Where slice ``index`` along ``axis`` ('z', 'y', 'x') comes from, for messages."""
        if self._files is not None and axis == 'z':
            return self._files[index]
        return f'{self.name} [{axis}={index}]'

    def _read_z(self, start, stop):
        if self._files is not None:
            return np.stack([read_image(path) for path in self._files[start:stop]])
        if self._tiff is not None:
            return np.stack([self._read_page(z) for z in range(start, stop)])
        return None

    def _read_page(self, z):
        with tiff_errors(self.name, self.describe('z', z)):
            return self._tiff.series[0].pages[z].asarray().reshape(self.shape[1:])

    def read(self, axis, start, stop):
        """Slices ``start:stop`` along ``axis`` ('z', 'y' or 'x') as an (n, h, w) array, each slice (Y, X) for z,
        (Z, X) for y, (Z, Y) for x, finite (NaN/Inf raise an ImageFormatError naming the slice)."""
        index = _slab_index(axis, start, stop)
        slab = self._read_z(start, stop) if axis == 'z' else None
        if slab is None:
            if not self.streams_any_axis:
                raise RuntimeError(f'{self.name}: call random_access() before reading along {axis}')
            if self._stored is not None:
                slab = self._stored.read(axis, start, stop)
            else:
                slab = np.moveaxis(np.asarray(self._array[tuple(index)]), AXES[axis], 0)
        for k, slice_2d in enumerate(slab):
            check_finite(slice_2d, self.describe(axis, start + k))
        return slab

    def random_access(self, scratch_path, slab=16, copy=True):
        """Copy a page-wise input (compressed TIFF, folder) into an uncompressed ``.npy`` scratch file, slab by
        slab, and read from that from now on; returns self. No-op when the input already allows it.
        ``copy=False`` reads a copy another process has made (distributed runs: rank 0 copies)."""
        if self.streams_any_axis:
            return self
        if copy:
            stored = StoredVolume.create(scratch_path, self.shape, self.dtype)
        else:
            stored = StoredVolume.npy(scratch_path)
        if stored.shape != self.shape or stored.dtype != self.dtype:
            raise ValueError(f'{scratch_path}: a copy of shape {stored.shape} and dtype {stored.dtype}, not of '
                             f'{self.name} ({self.shape}, {self.dtype})')
        for start in range(0, self.shape[0], slab) if copy else ():
            stored.write('z', start, self.read('z', start, min(start + slab, self.shape[0])))
        self.close()
        self._stored = stored
        return self

    def close(self):
        if self._tiff is not None:
            self._tiff.close()
        self._tiff = self._files = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_volume(source):
    """A :class:`VolumeReader` over a TIFF stack, a folder of slices or an array-like.

    Raises:
        FileNotFoundError: missing path.
        ImageFormatError (a ``ValueError``, naming the file): not a TIFF, a truncated or corrupt TIFF, mixed slice
            shapes in a folder, an unsupported layout or dtype, not 3D (a 2D image, a 4D array), or empty (a
            zero-length axis, a folder without images). NaN/Inf voxels raise when their slab is read.
    """
    return VolumeReader(source)


def max_label(path, slab=16):
    """The largest value of a label TIFF (its particle count, for the files
    :func:`~libnet_mmdet.io.tiff.write_tiff_pages` writes), read slab by slab so that memory holds one slab. A 2D file
    (a one-slice volume written before one-slice files recorded their z axis) counts as one slice.

    Raises:
        FileNotFoundError / ImageFormatError: as :func:`open_volume`.
    """
    path = os.fspath(path)
    if osp.isfile(path) and not read_image_info(path)[2]:
        return int(read_image(path).max())
    with open_volume(path) as reader:
        depth = reader.shape[0]
        return max(int(reader.read('z', start, min(start + slab, depth)).max()) for start in range(0, depth, slab))


def _slab_index(axis, start, stop):
    index = [slice(None)] * 3
    index[AXES[axis]] = slice(start, stop)
    return tuple(index)
