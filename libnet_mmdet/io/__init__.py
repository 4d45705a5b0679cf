"""Files in and out: images and slices, lazily read (Z, Y, X) volumes, TIFF with voxel size, atomic writes, and the
checks of instance label arrays.

>>> labels_zyx, voxel_size_nm = read_volume('labels.tif')         # (Z, Y, X) and (sz, sy, sx) nm or None
>>> with open_volume('stack.h5:/exchange/data') as reader:         # TIFF, folder, HDF5, Zarr/OME-Zarr, array-like
...     slab = reader.read('x', 0, 16)                             # (16, Z, Y), never the whole volume; a folder or
...     # a compressed TIFF streams z slabs only (reader.copy_to + random_access give y / x slabs)
...     voxel_size_nm = reader.voxel_size_nm                       # (sz, sy, sx) nm or None
>>> write_tiff('labels.tif', labels_zyx, voxel_size_nm=50)         # atomic; ImageJ/Fiji read the voxel size
>>> writer = LabelVolumeWriter('labels.zarr', shape, 'uint32', 50)  # slab by slab, many processes: OME-Zarr or TIFF
"""
from .errors import (InputError, check_int, check_min_voxels, check_number, check_output_dir, check_output_file,
                     check_writable, is_inside, is_number_in, prepare_output_dir)
from .files import as_json, atomic_output, json_safe, output_folder, write_json
from .images import ImageFormatError, check_slicing, is_2d_image_file, read_image
from .labels import check_labels
from .tiff import agreed_voxel_size, read_volume, voxel_size_zyx, write_tiff
from .volume import (LabelVolumeWriter, check_label_output, check_outside_inputs, label_output_format, max_label,
                     open_labels, open_volume, read_voxel_size, read_whole_volume)

__all__ = [
    'read_image', 'is_2d_image_file', 'open_volume', 'read_volume', 'read_whole_volume', 'read_voxel_size',
    'max_label', 'write_tiff',
    'write_json', 'as_json', 'json_safe', 'atomic_output', 'check_labels', 'voxel_size_zyx', 'agreed_voxel_size',
    'ImageFormatError',
    'InputError', 'check_output_file', 'check_output_dir', 'check_writable', 'prepare_output_dir', 'output_folder',
    'is_inside',
    'LabelVolumeWriter',
    'open_labels',
    'check_label_output', 'check_outside_inputs', 'label_output_format', 'check_slicing',
    'check_int', 'check_min_voxels', 'check_number', 'is_number_in'
]
