"""Volume I/O for streaming segmentation: lazy (Z, Y, X) input read slab by slab, and label volumes written so.

Input (:func:`open_volume`): a TIFF stack, a folder of 2D slices (TIFF/PNG/JPG, sorted by name with numbers in
natural order), an HDF5 dataset (``stack.h5:/exchange/data``; the path may be left out when the file holds one
3D dataset), a Zarr array or OME-Zarr image (``labels.zarr``, ``x.zarr:/path`` for one inside a group; see
:mod:`~libnet_mmdet.io.ome_zarr`) or an array-like with ``shape``, ``dtype`` and slicing (``np.ndarray``,
``np.memmap``, a zarr, dask or h5py array). HDF5 and Zarr arrays are read chunk by chunk (h5py / zarr read only
what a slab touches, along any axis; the HDF5 file stays open until :meth:`VolumeReader.close`).
Uncompressed contiguous TIFF stacks are read through short-lived memory maps of z-ranges (:class:`StoredVolume`),
compressed ones page by page, a folder file by file.
Reading slabs along y or x needs random access: for page-wise inputs the reader first copies the stack, page by
page, into a scratch Zarr array (:class:`~libnet_mmdet.io.chunked.ChunkedVolume`,
:meth:`VolumeReader.random_access`). Memory holds a slab (and at most ``MAP_CHUNK_BYTES`` of mapped file), whatever
the size of the volume. The voxel size an input records:
:attr:`VolumeReader.voxel_size_nm`.

Output (:class:`LabelVolumeWriter`): a (Z, Y, X) label volume written slab by slab, by one or many processes, as
an uncompressed memory-mapped TIFF or an OME-Zarr label image (chosen by the extension), under a temporary name
beside the output that takes the output's name only when complete; :func:`open_labels` reads it back.
"""
import errno
import os
import os.path as osp
import re
import shutil

import h5py
import hdf5plugin  # noqa: F401  (registers the Blosc, Blosc2, bitshuffle, LZ4, Zstd... filters with HDF5)
import numpy as np
import tifffile
import zarr

from .errors import InputError, check_int, check_output_file, check_writable, is_inside
from .images import (IMAGE_SUFFIXES, ImageFormatError, check_finite, check_not_colour, is_tiff, open_stack, read_image,
                     read_image_info, tiff_errors, tiff_memmap)
from .ome_zarr import create_label_image, is_our_label_image, is_zarr, leading_ones, open_zarr_volume, write_pyramid
from .tiff import recorded_voxel_size, tiff_metadata, tiff_voxel_size, voxel_size_zyx

AXES = {'z': 0, 'y': 1, 'x': 2}
HDF5_SUFFIXES = ('.h5', '.hdf5', '.hdf', '.nxs', '.nx5')
#: ``file:dataset``: the dataset path after the last ':' that follows an HDF5 or Zarr file name.
_DATASET_PATH = re.compile(r'(.*\.(?:h5|hdf5|hdf|nxs|nx5|zarr)):(.*)', re.IGNORECASE | re.DOTALL)
#: HDF5 dataset attributes read as the voxel size (one value for cubic voxels, or Z Y X) and their unit in nm:
#: ours, and the ``element_size_um`` of Fiji's HDF5 plugin and ilastik.
HDF5_VOXEL_SIZE_ATTRS = (('voxel_size_nm', 1.0), ('element_size_um', 1e3))
LABEL_SUFFIXES = ('.tif', '.tiff', '.zarr')


def _split_volume_path(path):
    """``(file, dataset)`` of ``'stack.h5:/exchange/data'`` or ``'x.zarr:/0'``; ``dataset`` is None when not given
    (and for a path that exists as it is)."""
    path = os.fspath(path)
    match = _DATASET_PATH.fullmatch(path)
    if match is None or osp.lexists(path):
        return path, None
    return match.group(1), match.group(2)


def _hdf5_datasets(group):
    """``{path: shape}`` of every dataset in an HDF5 group, its subgroups included."""
    found = {}

    def visit(_, node):
        if isinstance(node, h5py.Dataset):
            found[node.name] = node.shape

    group.visititems(visit)
    return found


def _listing(shapes):
    """``'/a (2, 3), /b (4,)'`` for messages, at most 10 entries."""
    entries = [f'{path} {shape}' for path, shape in shapes.items()]
    return ', '.join(entries[:10]) + (f', ... ({len(entries)} in all)' if len(entries) > 10 else '') or 'none'


def _hdf5_dataset(h5file, path, dataset_path):
    """The dataset ``dataset_path`` of an open HDF5 file, or its one 3D dataset when ``dataset_path`` is None."""
    if dataset_path is None:
        found = {name: shape for name, shape in _hdf5_datasets(h5file).items()
                 if shape is not None and len(shape[len(leading_ones(shape)):]) == 3}
        if len(found) != 1:
            problem = (f'{len(found)} 3D datasets ({_listing(found)})' if found else
                       f'no 3D dataset (datasets: {_listing(_hdf5_datasets(h5file))})')
            raise ImageFormatError(f'{path}: {problem}; name the one to read as {path}:/path/to/dataset')
        dataset_path = next(iter(found))
    try:
        node = h5file[dataset_path]
    except (KeyError, ValueError) as exc:  # missing, or a link to a missing object or file
        raise ImageFormatError(f'{path}:{dataset_path}: no such dataset in the file (datasets: '
                               f'{_listing(_hdf5_datasets(h5file))})') from exc
    if not isinstance(node, h5py.Dataset):
        raise ImageFormatError(f'{path}:{dataset_path}: is a group, not a dataset (datasets in it: '
                               f'{_listing(_hdf5_datasets(node))})')
    return node


def _check_virtual_sources(dataset, path, name):
    """Refuse a virtual dataset (a volume mapped from part files, as nabu and NeXus writers make) whose part files
    are missing: HDF5 reads their voxels as the fill value, silently. A relative part name is looked for where HDF5
    looks (``HDF5_VDS_PREFIX``, the file's folder, the working folder); patterned names (``%b``) are not checked."""
    if not dataset.is_virtual:
        return
    origin = osp.dirname(osp.abspath(path))
    prefixes = os.environ.get('HDF5_VDS_PREFIX', '').split(os.pathsep)
    folders = [*(prefix.replace('${ORIGIN}', origin) for prefix in prefixes if prefix), origin, os.getcwd()]

    def found(file_name):  # an absolute name as stored, else (a master moved with its parts) its base name
        relative = osp.basename(file_name) if osp.isabs(file_name) else file_name
        return (osp.isabs(file_name) and osp.isfile(file_name)) or any(osp.isfile(osp.join(folder, relative))
                                                                       for folder in folders)
    missing = sorted({source.file_name for source in dataset.virtual_sources()
                      if source.file_name != '.' and '%' not in source.file_name and not found(source.file_name)})
    if missing:
        listed = ', '.join(missing[:3]) + (f' and {len(missing) - 3} more' if len(missing) > 3 else '')
        raise ImageFormatError(f'{name}: a virtual dataset whose part files are missing ({listed}): their voxels '
                               f'would read as zeros; copy them beside {osp.basename(path)}')


def _hdf5_voxel_size(dataset, name):
    """float64 (sz, sy, sx) nm from the first of :data:`HDF5_VOXEL_SIZE_ATTRS` the dataset has, or None (also when
    that attribute gives no usable size: :func:`~libnet_mmdet.io.tiff.recorded_voxel_size` warns)."""
    for attr, unit_nm in HDF5_VOXEL_SIZE_ATTRS:
        if attr in dataset.attrs:
            return recorded_voxel_size(lambda: np.asarray(dataset.attrs[attr], dtype=np.float64) * unit_nm, name,
                                       f'attribute {attr}')
    return None


def _natural_key(name):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', name)]


def list_slice_files(folder):
    """The 2D image files of a folder in natural order (``s2.tif`` before ``s10.tif``); hidden files (macOS's
    ``._s2.tif`` metadata beside each copied file) and folders are not slices.

    Raises:
        ImageFormatError: an image name that is a link to nothing (a slice moved or deleted: the volume would be
            one slice short, silently).
    """
    names = sorted((n for n in os.listdir(folder) if n.lower().endswith(IMAGE_SUFFIXES) and not n.startswith('.')
                    and (osp.isfile(osp.join(folder, n)) or osp.islink(osp.join(folder, n)))), key=_natural_key)
    for name in names:
        if not osp.exists(osp.join(folder, name)):
            raise ImageFormatError(f'{osp.join(folder, name)}: a link to a file that does not exist (a slice '
                                   'moved or deleted?); restore it or remove the link')
    return [osp.join(folder, n) for n in names]


#: Most bytes of a file mapped at once. A slab along y or x touches every z-plane of the file, so such slabs are
#: read through short-lived maps of z-ranges of this size: memory holds one range, not the file.
MAP_CHUNK_BYTES = 32 * 2**20


class StoredVolume:
    """A C-ordered (Z, Y, X) array stored uncompressed in a file at ``offset`` bytes (a contiguous TIFF stack), read
    slab by slab through memory maps of z-ranges only (released after each access, so the pages touched do not stay
    resident)."""

    def __init__(self, path, shape, dtype, offset):
        self.path, self.shape, self.dtype, self.offset = os.fspath(path), tuple(shape), np.dtype(dtype), offset
        self._plane_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize

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

    def _map(self, z0, z1):
        return np.memmap(self.path, self.dtype, 'r', offset=self.offset + z0 * self._plane_bytes,
                         shape=(z1 - z0,) + self.shape[1:])

    def _z_ranges(self, axis, start, stop):
        if axis == 'z':
            return [(start, stop)]
        step = max(1, MAP_CHUNK_BYTES // self._plane_bytes)
        return [(z, min(z + step, self.shape[0])) for z in range(0, self.shape[0], step)]

    def read(self, axis, start, stop):
        """Slices ``start:stop`` along ``axis`` ('z', 'y', 'x') as an (n, h, w) array in native byte order."""
        index = slab_index(axis, start, stop)
        parts = []
        for z0, z1 in self._z_ranges(axis, start, stop):
            mapped = self._map(z0, z1)
            parts.append(np.array(mapped[(slice(None),) + index[1:]] if axis != 'z' else mapped,
                                  dtype=self.dtype.newbyteorder('=')))
            del mapped
        return np.moveaxis(np.concatenate(parts), AXES[axis], 0)


class VolumeReader:
    """A (Z, Y, X) volume read lazily, slab by slab (see the module docstring).

    Attributes:
        shape (tuple): (Z, Y, X).
        dtype (np.dtype): stored dtype.
        name (str): the file, folder or ``<array>``, for messages.
    """

    def __init__(self, source):
        self._array = self._tiff = self._files = self._stored = self._h5file = self._tiff_path = None
        self._voxel_size_nm, self._leading_index = None, ()
        if isinstance(source, (str, os.PathLike)):
            self.name = os.fspath(source)
            self._open_path()
        else:
            self.name = '<array>'
            if not all(hasattr(source, attr) for attr in ('shape', 'dtype', '__getitem__')):
                raise TypeError(f'volume: expected a path or an array-like, got {type(source).__name__}')
            self._array, self.shape, self.dtype = source, tuple(source.shape), np.dtype(source.dtype)
        try:
            self._check_layout()
        except ImageFormatError:
            self.close()
            raise

    def _open_path(self):
        path, dataset_path = _split_volume_path(self.name)
        if not osp.exists(path):
            raise FileNotFoundError(f'{path}: file not found')
        if is_zarr(path):
            self._open_zarr(path, dataset_path or '')
        elif path.lower().endswith(HDF5_SUFFIXES):
            self._open_hdf5(path, dataset_path)
        elif osp.isdir(path):
            self._open_folder()
        elif is_tiff(path):
            self._open_tiff()
        else:
            raise ImageFormatError(f'{self.name}: not a TIFF stack, an HDF5 file ({", ".join(HDF5_SUFFIXES)}), a '
                                   'Zarr store or a folder of slices')

    def _open_hdf5(self, path, dataset_path):
        try:
            self._h5file = h5py.File(path, 'r')
        except OSError as exc:
            if 'unable to lock file' in str(exc):  # HDF5's file locking: a writer (a beamline's) has it open
                held = exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK)  # else a filesystem without locks (NFS)
                problem = ('held open for writing by another program' if held else
                           'its filesystem does not support the file locks HDF5 takes')
                advice = 'wait until it is written, or read it anyway' if held else 'read it'
                raise ImageFormatError(f'{path}: {problem} ({exc}); {advice} with HDF5_USE_FILE_LOCKING=FALSE') from exc
            raise ImageFormatError(f'{path}: not a readable HDF5 file ({exc})') from exc
        try:
            dataset = _hdf5_dataset(self._h5file, path, dataset_path)
            self.name = f'{path}:{dataset.name}'
            _check_virtual_sources(dataset, path, self.name)
            self._voxel_size_nm = _hdf5_voxel_size(dataset, self.name)
        except ImageFormatError:
            self.close()
            raise
        shape = tuple(dataset.shape or ())
        self._leading_index = leading_ones(shape)  # a (1, Z, Y, X) dataset is read as (Z, Y, X)
        self._array, self.shape, self.dtype = dataset, shape[len(self._leading_index):], np.dtype(dataset.dtype)

    def _open_zarr(self, path, array_path):
        self._array, self.name, self._voxel_size_nm, self._leading_index = open_zarr_volume(path, array_path)
        self.shape, self.dtype = self._array.shape[len(self._leading_index):], np.dtype(self._array.dtype)

    def _check_layout(self):
        if len(self.shape) != 3:
            hint = '; use segment_image for a single slice' if len(self.shape) == 2 else ''
            raise ImageFormatError(f'{self.name}: expected a 3D (Z, Y, X) volume, got {len(self.shape)}D shape '
                                   f'{self.shape}{hint}')
        check_not_colour(self.shape, self.name)
        if 0 in self.shape:
            raise ImageFormatError(f'{self.name}: empty volume of shape (Z, Y, X) = {self.shape}')
        if not (np.issubdtype(self.dtype, np.integer) or np.issubdtype(self.dtype, np.floating)):
            raise ImageFormatError(f'{self.name}: unsupported dtype {self.dtype}; expected uint8/uint16/float32')

    def _open_tiff(self):
        self._tiff_path = self.name
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
    def voxel_size_nm(self):
        """The voxel size the input records, float64 (sz, sy, sx) in nm, or None: a TIFF's metadata
        (:func:`~libnet_mmdet.io.tiff.tiff_voxel_size`), an OME-Zarr image's scale and axis units, an HDF5
        dataset's attributes (:data:`HDF5_VOXEL_SIZE_ATTRS`); None for folders, array-likes and files without it."""
        return tiff_voxel_size(self._tiff_path) if self._tiff_path is not None else self._voxel_size_nm

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
        index = slab_index(axis, start, stop)
        slab = self._read_z(start, stop) if axis == 'z' else None
        if slab is None:
            if not self.streams_any_axis:
                raise RuntimeError(f'{self.name}: call random_access() before reading along {axis}')
            if self._stored is not None:
                slab = self._stored.read(axis, start, stop)
            else:
                try:  # HDF5 (a missing filter, a corrupt chunk) and Zarr (a corrupt chunk) fail only here
                    stored = self._array[self._leading_index + tuple(index)]
                except MemoryError:
                    raise
                except Exception as exc:  # noqa: B902  codecs raise their own types (zlib.error, ...)
                    raise ImageFormatError(f'{self.describe(axis, start)}: cannot read its voxels ({exc})') from exc
                slab = np.moveaxis(np.asarray(stored, dtype=self.dtype.newbyteorder('=')), AXES[axis], 0)
        for k, slice_2d in enumerate(slab):
            check_finite(slice_2d, self.describe(axis, start + k))
        return slab

    def copy_to(self, copy, start, stop, slab=16):
        """Copy z-slices ``start:stop`` into ``copy`` (a :class:`~libnet_mmdet.io.chunked.ChunkedVolume` of the
        same shape and dtype), slab by slab: the random-access copy of a page-wise input (compressed TIFF,
        folder), which processes may make together, each copying its own z-range."""
        if copy.shape != self.shape or copy.dtype != self.dtype:
            raise ValueError(f'{copy.path}: a copy of shape {copy.shape} and dtype {copy.dtype}, not of '
                             f'{self.name} ({self.shape}, {self.dtype})')
        for z0 in range(start, stop, slab):
            copy.write('z', z0, self.read('z', z0, min(z0 + slab, stop)))

    def random_access(self, copy):
        """Read from ``copy`` (made by :meth:`copy_to`) from now on; returns self. No-op when the input already
        streams along any axis."""
        if self.streams_any_axis:
            return self
        self.close()
        self._stored = copy
        return self

    def close(self):
        if self._tiff is not None:
            self._tiff.close()
        if self._h5file is not None:
            self._h5file.close()
        self._tiff = self._files = self._h5file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_volume(source):
    """A :class:`VolumeReader` over a TIFF stack, a folder of slices, an HDF5 dataset (``'stack.h5:/exchange/data'``),
    a Zarr array or OME-Zarr image (``'labels.zarr'``, ``'x.zarr:/path'``) or an array-like.

    Raises:
        FileNotFoundError: missing path.
        ImageFormatError (a ``ValueError``, naming the file, and the dataset of an HDF5 or Zarr file): not a TIFF,
            a truncated or corrupt TIFF, mixed slice shapes in a folder, not a readable HDF5 file, a missing HDF5
            dataset or Zarr array, a group where a dataset is expected, an HDF5 file without exactly one 3D dataset
            and no dataset path, a ``.zarr`` folder that is neither a Zarr array nor an OME-Zarr image, an
            unsupported layout or dtype, not 3D (a 2D image, a 4D array), or empty (a zero-length axis, a folder
            without images). NaN/Inf voxels raise when their slab is read.
        TypeError: ``source`` is neither a path nor an array-like with ``shape``, ``dtype`` and indexing.
    """
    return VolumeReader(source)


def read_voxel_size(path):
    """The voxel size an input file records, reading only its metadata: a TIFF's header (of a 2D image too: its pixel
    size, as (sx, sy, sx); :func:`~libnet_mmdet.io.tiff.tiff_voxel_size`), or what :func:`open_volume` reads of an
    HDF5 dataset, a Zarr array or OME-Zarr image, or a folder of slices.

    Returns:
        np.ndarray | None: float64 ``(sz, sy, sx)`` in nm, or None when the file does not record a usable one (an
        unusable one is warned) or is a PNG / JPEG image (none is read from them).

    Raises:
        FileNotFoundError / ImageFormatError: as :func:`~libnet_mmdet.io.read_volume` (for a TIFF) or
            :func:`open_volume`.
    """
    name = os.fspath(path).lower()
    if name.endswith(IMAGE_SUFFIXES) and not is_tiff(name):
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{path}: file not found')
        return None
    if is_tiff(name) or (os.path.isfile(path) and not name.endswith(HDF5_SUFFIXES)):
        return tiff_voxel_size(path)
    with open_volume(path) as reader:  # HDF5 ('scan.h5:/exchange/data'), Zarr, a folder of slices
        return reader.voxel_size_nm


def read_whole_volume(source):
    """``(volume_zyx, voxel_size_nm)``: the whole (Z, Y, X) array of anything :func:`open_volume` reads (TIFF, folder
    of slices, HDF5, Zarr / OME-Zarr; of an array in memory a view, not a copy) and the voxel size it records
    ((3,) nm, or None). Raises as :func:`open_volume`."""
    with open_volume(source) as reader:
        return reader.read('z', 0, reader.shape[0]), reader.voxel_size_nm


def max_label(path, slab=16):
    """The largest value of a label TIFF (its particle count, for the files
    :func:`~libnet_mmdet.io.tiff.write_tiff_pages` writes), read slab by slab so that memory holds one slab. A 2D file
    (a one-slice volume written before one-slice files recorded their z axis) counts as one slice. ``slab``: z
    slices read at a time.

    Raises:
        FileNotFoundError / ImageFormatError: as :func:`open_volume`.
    """
    path = os.fspath(path)
    if osp.isfile(path) and not read_image_info(path)[2]:
        return int(check_finite(read_image(path), path).max())
    with open_volume(path) as reader:
        depth = reader.shape[0]
        return max(int(reader.read('z', start, min(start + slab, depth)).max()) for start in range(0, depth, slab))


def slab_index(axis, start, stop):
    """The index of slices ``start:stop`` along ``axis`` ('z', 'y', 'x') of a (Z, Y, X) array: a tuple of 3 slices."""
    index = [slice(None)] * 3
    index[AXES[axis]] = slice(start, stop)
    return tuple(index)


def label_output_format(path):
    """``'tiff'`` or ``'zarr'``: the format of a label volume written to ``path``, by its extension.

    Raises:
        InputError: any other extension.
    """
    suffix = osp.splitext(os.fspath(path).rstrip('/\\'))[1].lower()
    if suffix not in LABEL_SUFFIXES:
        raise InputError(f'{path}: unknown label volume format {suffix or "(no extension)"!r}; use .tif or .tiff '
                         '(TIFF) or .zarr (OME-Zarr)')
    return 'zarr' if suffix == '.zarr' else 'tiff'


def check_outside_inputs(path, inputs=()):
    """Raise :class:`InputError` when ``path`` (an output or work folder) lies inside the folder of one of
    ``inputs`` (volume paths as :func:`open_volume` takes them: a folder of slices, a Zarr store,
    ``'stack.zarr:/path'``; other items are ignored), or holds one of them (a work folder is emptied and deleted,
    an output folder may be emptied): a tool never writes into its input, nor removes it."""
    for source in inputs:
        if isinstance(source, (str, os.PathLike)):
            folder = _split_volume_path(source)[0]
            if osp.isdir(folder) and is_inside(path, folder):
                raise InputError(f'{path}: lies inside the input folder {folder}; choose a place outside it')
            if is_inside(folder, path):
                raise InputError(f'{path}: holds the input {folder}, which it must never remove; choose another '
                                 'place (or move the input out of it)')


def check_label_output(path, overwrite=False, inputs=()):
    """Raise :class:`InputError` unless a label volume can be written to ``path`` (see :class:`LabelVolumeWriter`):
    its extension names the format (:func:`label_output_format`); it must not lie inside an input folder (a folder
    of slices, a Zarr store); a TIFF follows :func:`~libnet_mmdet.io.errors.check_output_file`; a ``.zarr`` folder
    must not exist unless ``overwrite``, and then must be empty or a label image of ours
    (:func:`~libnet_mmdet.io.ome_zarr.is_our_label_image`), and must neither be nor hold one of ``inputs`` (paths
    such as ``'stack.h5:/data'``; other items are ignored).
    Nothing is written or removed.

    Returns:
        str: ``path``.
    """
    path = os.fspath(path)
    files = [_split_volume_path(source)[0] for source in inputs if isinstance(source, (str, os.PathLike))]
    if label_output_format(path) == 'tiff':
        check_output_file(path, overwrite, inputs=files)
    else:
        for source in files:
            if is_inside(source, path):
                raise InputError(f'{path}: the output would overwrite the input {source}')
        if osp.lexists(path) and not overwrite:
            raise InputError(f'{path}: exists; pass --overwrite (overwrite=True) to replace it')
        if osp.lexists(path):
            _check_replaceable(path)
        check_writable(path)
    check_outside_inputs(path, inputs)
    return path


def _check_replaceable(path):
    """Raise :class:`InputError` unless the existing ``.zarr`` output ``path`` may be replaced (``overwrite``): an
    empty folder or a label image of ours (:func:`~libnet_mmdet.io.ome_zarr.is_our_label_image`), never a file or a
    folder of other data."""
    if not (osp.isdir(path) and (not os.listdir(path) or is_our_label_image(path))):
        raise InputError(f'{path}: exists and was not written by libnet-mmdet (not an OME-Zarr label image of ours): '
                         '--overwrite only replaces label volumes of ours; choose a new output')


def _fsync_tree(folder):
    """Flush every file under ``folder`` to disk, then each folder (its entries), deepest first."""
    for root, _, names in os.walk(folder, topdown=False):
        for name in names:
            with open(osp.join(root, name), 'rb') as stream:
                os.fsync(stream.fileno())
        descriptor = os.open(root, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _remove(path):
    """Remove a file or a folder tree, if there."""
    if osp.isdir(path) and not osp.islink(path):
        shutil.rmtree(path)
    elif osp.lexists(path):
        os.remove(path)


class LabelVolumeWriter:
    """A (Z, Y, X) label volume written slab by slab by one or many processes sharing a filesystem, then moved
    into place at ``out`` in one step, so that ``out`` never holds a half-written volume.

    ``out``'s extension picks the format: ``.tif``/``.tiff`` an uncompressed contiguous (memory-mappable) TIFF
    with the voxel size as :func:`~libnet_mmdet.io.tiff.tiff_metadata` records it (ImageJ for uint16); ``.zarr``
    an OME-Zarr label image (NGFF 0.4, Zarr v2: :mod:`~libnet_mmdet.io.ome_zarr`) with its pyramid. The volume is
    written to ``.<name>.partial`` beside ``out``. Protocol (no communication inside; ``barrier`` is the
    caller's)::

        writer = LabelVolumeWriter(out, shape, dtype, voxel_size_nm, chunk_z=16)  # any process, cheap
        writer.create()                  # one process, before any write
        writer.write(z0, labels_nyx)     # any process: z0 and n multiples of chunk_z (n: up to the end)
        writer.finish(rank, world_size, barrier)  # every process, after all writes: the OME-Zarr pyramid
        writer.commit(overwrite)         # one process, after every process has finished
        writer.abort()                   # instead of commit: remove the temporary

    Attributes:
        out (str), shape (tuple), dtype (np.dtype), voxel_size_nm (np.ndarray | None), chunk_z (int),
        format (str): ``'tiff'`` or ``'zarr'``, partial_path (str): the temporary.

    Raises (on construction, before anything is written):
        InputError: ``shape`` is not three sizes >= 1, ``dtype`` not an unsigned integer type, ``chunk_z`` not an
            integer >= 1; ``out`` of another format (:func:`label_output_format`).
        ValueError: ``voxel_size_nm`` not one or three finite sizes > 0 nm.
        TypeError: ``dtype`` is not a numpy dtype.
    """

    def __init__(self, out, shape, dtype, voxel_size_nm=None, chunk_z=16):
        self.out = os.fspath(out)
        self.format = label_output_format(self.out)
        if len(shape) != 3:
            raise InputError(f'{self.out}: shape must be (Z, Y, X), got {tuple(shape)!r}')
        self.shape = tuple(check_int(size, f'{self.out}: each size of the shape', 1) for size in shape)
        self.dtype, self.chunk_z = np.dtype(dtype), check_int(chunk_z, 'chunk_z', 1)
        if not np.issubdtype(self.dtype, np.unsignedinteger):
            raise InputError(f'{self.out}: labels need an unsigned integer dtype (uint16, uint32), got {self.dtype}')
        self.voxel_size_nm = None if voxel_size_nm is None else voxel_size_zyx(voxel_size_nm)
        folder, name = osp.split(osp.abspath(self.out.rstrip('/\\')))
        self._folder, self._name = folder, name
        self.partial_path = osp.join(folder, f'.{name}.partial')
        self._target = None  # the temporary, opened by this process's first write

    def create(self):
        """Create the empty temporary volume, replacing one an earlier (killed) run left."""
        os.makedirs(self._folder, exist_ok=True)
        _remove(self.partial_path)
        if self.format == 'tiff':
            tifffile.memmap(self.partial_path, shape=self.shape, dtype=self.dtype,
                            **tiff_metadata(self.dtype, self.voxel_size_nm, self.shape))  # header, (sparse) zeros
        else:
            create_label_image(self.partial_path, osp.splitext(self._name)[0], self.shape, self.dtype,
                               self.voxel_size_nm, self.chunk_z)

    def write(self, z0, labels_nyx):
        """Write (n, Y, X) labels at z-slices ``z0:z0 + n``: ``z0`` a multiple of ``chunk_z``, ``n`` too unless the
        slab ends the volume (so that no two processes write one chunk). Ids must fit the writer's dtype (no
        wrapping): integer labels from 0 to its maximum."""
        labels_nyx = np.asarray(labels_nyx)
        if labels_nyx.size and (labels_nyx.dtype == bool or not np.issubdtype(labels_nyx.dtype, np.integer)
                                or labels_nyx.min() < 0 or labels_nyx.max() > np.iinfo(self.dtype).max):
            raise ValueError(f'{self.out}: labels to write must be integers from 0 to {np.iinfo(self.dtype).max} '
                             f'({self.dtype}), got {labels_nyx.dtype} values from {labels_nyx.min()} to '
                             f'{labels_nyx.max()}')
        labels_nyx = labels_nyx.astype(self.dtype, copy=False)
        z1 = z0 + len(labels_nyx)
        if (labels_nyx.ndim != 3 or labels_nyx.shape[1:] != self.shape[1:] or not 0 <= z0 < z1 <= self.shape[0]
                or z0 % self.chunk_z or (z1 % self.chunk_z and z1 != self.shape[0])):
            raise ValueError(f'{self.out}: cannot write labels of shape {labels_nyx.shape} at z={z0} into a volume '
                             f'of shape {self.shape} in chunks of {self.chunk_z} slices')
        if self._target is None:
            self._target = (StoredVolume.tiff(self.partial_path, self.shape) if self.format == 'tiff' else
                            zarr.open_array(store=self.partial_path, path='0', mode='r+'))
        if self.format == 'tiff':  # pwrite of the slab's bytes only (a memory map writes back whole pages, which
            # on a network filesystem could overwrite the neighbouring block another node wrote)
            plane_bytes = labels_nyx[0].nbytes
            with open(self.partial_path, 'r+b') as stream:
                os.pwrite(stream.fileno(), labels_nyx.astype(self._target.dtype, copy=False).tobytes(),
                          self._target.offset + z0 * plane_bytes)
        else:
            self._target[z0:z1] = labels_nyx

    def finish(self, rank=0, world_size=1, barrier=lambda: None):
        """OME-Zarr: write the pyramid levels (:func:`~libnet_mmdet.io.ome_zarr.write_pyramid`; every process, its
        share of each level, ``barrier()`` before each); TIFF: nothing."""
        if self.format == 'zarr':
            write_pyramid(self.partial_path, rank, world_size, barrier)

    def commit(self, overwrite=False):
        """Move the finished temporary to ``out``, its data on disk first (``fsync`` of the TIFF, of every file
        and folder of the ``.zarr``). An existing ``out`` is replaced only with ``overwrite``: a TIFF in one rename;
        a ``.zarr`` folder (only an empty one or a label image of ours) is renamed away (``.<name>.old``), the new
        one renamed in, the old one deleted (a kill in between leaves no ``out``, never a mixed one).

        Raises:
            InputError: ``out`` exists and not ``overwrite``; ``out`` is a ``.zarr`` that is not a label image of
                ours (:func:`check_label_output`); the temporary is kept.
            FileNotFoundError: no temporary (not created, or already committed or aborted).
        """
        if not osp.lexists(self.partial_path):
            raise FileNotFoundError(f'{self.partial_path}: no label volume to commit (create() it first)')
        if osp.lexists(self.out) and not overwrite:
            raise InputError(f'{self.out}: exists; pass --overwrite (overwrite=True) to replace it')
        if self.format == 'zarr' and osp.lexists(self.out):
            _check_replaceable(self.out)
        self._target = None
        if self.format == 'tiff':
            with open(self.partial_path, 'rb+') as stream:
                os.fsync(stream.fileno())  # the data are on disk before the file takes its final name
            os.replace(self.partial_path, self.out)
            return
        _fsync_tree(self.partial_path)  # the data are on disk before the folder takes its final name
        old = osp.join(self._folder, f'.{self._name}.old')
        if osp.lexists(self.out):
            _remove(old)
            os.rename(self.out, old)
        os.rename(self.partial_path, self.out)
        _remove(old)

    def abort(self):
        """Remove the temporary (a no-op when there is none)."""
        self._target = None
        _remove(self.partial_path)


def open_labels(path):
    """A (Z, Y, X) label volume as a read-only array-like, its voxels read only when indexed: the ``np.memmap`` of
    an uncompressed TIFF (a compressed one is read whole), the full-resolution ``zarr.Array`` of a ``.zarr``.

    Raises:
        FileNotFoundError / ImageFormatError: as :func:`open_volume`; a volume that is not 3D.
    """
    path = os.fspath(path)
    labels = open_zarr_volume(path)[0] if is_zarr(path) else open_stack(path)
    if labels.ndim != 3:
        raise ImageFormatError(f'{path}: expected a 3D (Z, Y, X) label volume, got shape {labels.shape}')
    return labels
