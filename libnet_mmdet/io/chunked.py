"""Chunked (Z, Y, X) arrays on disk (Zarr, compressed): the scratch arrays of a volume run's work folder, read and
written slab by slab along any axis by any process.

Each process reads only the chunks its slab touches, so memory holds a slab, never the volume. Processes may write
the same array at the same time as long as no two write one chunk: a writer chooses the chunk shape so that its
slabs cover whole chunks along the slab axis (:func:`slab_chunks`).
"""
import os

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from .volume import AXES, slab_index

#: Fast, light compression: label arrays shrink 10-50x, and lz4 costs less than the disk traffic it saves.
SCRATCH_COMPRESSOR = BloscCodec(cname='lz4', clevel=1, shuffle='bitshuffle')
#: Chunk side across the slab axes (voxels).
PLANE_CHUNK = 512


def slab_chunks(shape, slab, slab_axes=('z',)):
    """Chunk shape of a (Z, Y, X) array written or read in slabs of ``slab`` slices along each of ``slab_axes``:
    ``slab`` along those axes, up to :data:`PLANE_CHUNK` along the others."""
    return tuple(min(size, slab if name in slab_axes else PLANE_CHUNK) for name, size in zip(AXES, shape))


class ChunkedVolume:
    """A (Z, Y, X) Zarr array read slab by slab as :class:`~libnet_mmdet.io.volume.StoredVolume` is, and written so.

    Attributes:
        path (str), shape (tuple), dtype (np.dtype).
    """

    def __init__(self, array, path):
        self._array, self.path = array, path
        self.shape, self.dtype = tuple(array.shape), np.dtype(array.dtype)

    @classmethod
    def create(cls, path, shape, dtype, chunks):
        """A new zero-filled array at ``path`` (an existing one is replaced); no chunk is written until data is."""
        path = os.fspath(path)
        array = zarr.create_array(store=path, shape=tuple(shape), chunks=tuple(chunks), dtype=np.dtype(dtype),
                                  fill_value=0, compressors=SCRATCH_COMPRESSOR, overwrite=True)
        return cls(array, path)

    @classmethod
    def open(cls, path):
        """The array at ``path`` (made by :meth:`create`, possibly by another process)."""
        path = os.fspath(path)
        return cls(zarr.open_array(store=path, mode='r+'), path)

    def read(self, axis, start, stop):
        """Slices ``start:stop`` along ``axis`` ('z', 'y', 'x') as an (n, h, w) array."""
        return np.moveaxis(self._array[slab_index(axis, start, stop)], AXES[axis], 0)

    def write(self, axis, start, slab):
        """Write (n, h, w) slices at ``start`` along ``axis``."""
        slab = np.moveaxis(np.asarray(slab, self.dtype), 0, AXES[axis])
        self._array[slab_index(axis, start, start + slab.shape[AXES[axis]])] = slab
