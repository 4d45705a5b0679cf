"""HDF5 and Zarr / OME-Zarr volumes (issue 18, formats): slabs along z, y and x read from the files equal numpy,
voxel sizes kept, the OME-Zarr and TIFF label writers (pyramid, several processes, commit / overwrite / abort),
and one clear error naming the file and the dataset for every bad input."""
import os
import os.path as osp
import threading

import h5py
import numcodecs
import numpy as np
import pytest
import tifffile
import zarr

from libnet_mmdet.io import (ImageFormatError, InputError, LabelVolumeWriter, check_label_output, label_output_format,
                             open_labels, open_volume, read_voxel_size)
from libnet_mmdet.io.ome_zarr import pyramid_shapes

AXES = 'zyx'


def volume(shape=(12, 10, 9), dtype=np.uint16, seed=0):
    return np.random.default_rng(seed).integers(0, 1000, shape).astype(dtype)


def assert_slabs_equal(source, expected):
    """Every axis, a slab in the middle: what the reader gives equals numpy's slice, in native byte order."""
    with open_volume(source) as reader:
        assert reader.shape == expected.shape and reader.streams_any_axis
        for axis in AXES:
            slab = reader.read(axis, 2, 5)
            np.testing.assert_array_equal(slab, np.moveaxis(expected, AXES.index(axis), 0)[2:5])
            assert slab.dtype.isnative
        return reader.name, reader.voxel_size_nm


@pytest.mark.parametrize('layout', [dict(), dict(chunks=(4, 5, 3), compression='gzip')], ids=['contiguous', 'chunked'])
def test_hdf5_slabs_along_every_axis_and_voxel_size(tmp_path, layout):
    expected = volume()
    path = tmp_path / 'scan.h5'
    with h5py.File(path, 'w') as f:
        dataset = f.create_dataset('exchange/data', data=expected.astype('>u2'), **layout)  # big-endian on disk
        dataset.attrs['element_size_um'] = [0.2, 0.1, 0.1]
        f.create_dataset('exchange/theta', data=np.linspace(0, 180, 7))
    for source in (f'{path}:/exchange/data', f'{path}:exchange/data', path):  # one 3D dataset: the path may go
        name, voxel_size_nm = assert_slabs_equal(source, expected)
        assert name == f'{path}:/exchange/data'
        np.testing.assert_allclose(voxel_size_nm, [200, 100, 100])
    with h5py.File(path, 'a') as f:  # the reader closed the file (HDF5 refuses to reopen an open file for writing)
        f['exchange/data'].attrs['voxel_size_nm'] = 50
    assert_slabs_equal(f'{path}:/exchange/data', expected)
    with open_volume(path) as reader:
        np.testing.assert_allclose(reader.voxel_size_nm, [50, 50, 50])  # ours first


def test_zarr_array_and_array_in_group(tmp_path):
    expected = volume(dtype=np.float32)
    zarr.create_array(tmp_path / 'plain.zarr', data=expected, chunks=(4, 4, 4), zarr_format=2)
    group = zarr.open_group(tmp_path / 'group.zarr', mode='w')  # zarr v3
    group.create_array('raw/volume', data=expected, chunks=(3, 10, 9))
    name, voxel_size_nm = assert_slabs_equal(tmp_path / 'plain.zarr', expected)
    assert (name, voxel_size_nm) == (str(tmp_path / 'plain.zarr'), None)
    name, _ = assert_slabs_equal(f'{tmp_path / "group.zarr"}:/raw/volume', expected)
    assert name == f'{tmp_path / "group.zarr"}:/raw/volume'


def ome_image(path, data, axes, scale, multiscale_scale=None, zarr_format=2, leading=()):
    """An OME-Zarr image group (NGFF 0.4 on Zarr v2, 0.5 on v3) with one dataset 's0' and a smaller 's1'."""
    group = zarr.open_group(path, mode='w', zarr_format=zarr_format)
    group.create_array('s0', data=data.reshape(leading + data.shape), chunks=leading + (4, 5, 5))
    group.create_array('s1', data=data[::2, ::2, ::2].reshape(leading + data[::2, ::2, ::2].shape))
    multiscale = dict(axes=axes, datasets=[
        dict(path='s0', coordinateTransformations=[dict(type='scale', scale=scale)]),
        dict(path='s1', coordinateTransformations=[dict(type='scale', scale=[2 * s for s in scale])])])
    if multiscale_scale is not None:
        multiscale['coordinateTransformations'] = [dict(type='scale', scale=multiscale_scale)]
    if zarr_format == 2:
        group.attrs['multiscales'] = [dict(version='0.4', **multiscale)]
    else:
        group.attrs['ome'] = dict(version='0.5', multiscales=[multiscale])


def test_ome_zarr_images_read_their_full_resolution_and_voxel_size(tmp_path):
    expected = volume()
    space = [dict(name=axis, type='space', unit='micrometer') for axis in AXES]
    ome_image(tmp_path / 'v04.zarr', expected, space, [0.3, 0.1, 0.1])
    name, voxel_size_nm = assert_slabs_equal(tmp_path / 'v04.zarr', expected)
    assert name == f'{tmp_path / "v04.zarr"}:/s0'
    np.testing.assert_allclose(voxel_size_nm, [300, 100, 100])
    # NGFF 0.5 (Zarr v3), (T, C, Z, Y, X) with length-1 t and c, a multiscale-wide scale on top of the dataset's
    axes = [dict(name='t', type='time'), dict(name='c', type='channel')] + space
    ome_image(tmp_path / 'v05.zarr', expected, axes, [1, 1, 0.3, 0.1, 0.1], [1, 1, 2, 2, 2], 3, leading=(1, 1))
    _, voxel_size_nm = assert_slabs_equal(tmp_path / 'v05.zarr', expected)
    np.testing.assert_allclose(voxel_size_nm, [600, 200, 200])
    ome_image(tmp_path / 'no_unit.zarr', expected, [dict(name=axis, type='space') for axis in AXES], [3, 1, 1])
    assert assert_slabs_equal(tmp_path / 'no_unit.zarr', expected)[1] is None  # scale without a unit: unknown


def test_read_voxel_size_reads_every_volume_format(tmp_path):
    """README points to read_voxel_size for the voxel size particle_table needs: an HDF5 dataset was 'file not
    found' (its path holds the dataset) and an HDF5 file 'not a TIFF'."""
    path = tmp_path / 'scan.h5'
    with h5py.File(path, 'w') as h5:
        h5.create_dataset('exchange/data', data=volume()).attrs['element_size_um'] = [0.2, 0.1, 0.1]
    ome_image(tmp_path / 'image.zarr', volume(), [dict(name=axis, type='space', unit='nanometer') for axis in AXES],
              [30, 20, 20])
    assert list(read_voxel_size(f'{path}:/exchange/data')) == list(read_voxel_size(path)) == [200, 100, 100]
    assert list(read_voxel_size(tmp_path / 'image.zarr')) == [30, 20, 20]
    with pytest.raises(FileNotFoundError, match='missing.h5: file not found'):
        read_voxel_size(tmp_path / 'missing.h5')


def test_an_ome_zarr_level_named_keeps_its_own_voxel_size(tmp_path):
    """segment.py prints the level it reads (store:/s0); naming that level, or a coarser one, read it as a plain
    array without a voxel size (until 2026-12-08). The NGFF 0.5 case has length-1 t / c axes and a global scale."""
    expected = volume()
    space = [dict(name=axis, type='space', unit='micrometer') for axis in AXES]
    ome_image(tmp_path / 'v04.zarr', expected, space, [0.3, 0.1, 0.1])
    axes = [dict(name='t', type='time'), dict(name='c', type='channel')] + space
    ome_image(tmp_path / 'v05.zarr', expected, axes, [1, 1, 0.3, 0.1, 0.1], [1, 1, 2, 2, 2], 3, leading=(1, 1))
    nested = zarr.open_group(tmp_path / 'nested.zarr', mode='w', zarr_format=2)  # dataset paths 'res/s0', 'res/s1'
    nested.create_array('res/s0', data=expected)
    nested.create_array('res/s1', data=expected[::2, ::2, ::2])
    nested.attrs['multiscales'] = [dict(version='0.4', axes=space, datasets=[
        dict(path=f'res/s{level}', coordinateTransformations=[dict(type='scale', scale=[0.3 * 2**level] * 3)])
        for level in (0, 1)])]
    for store, level, size_nm in (('v04', 's0', [300, 100, 100]), ('v04', 's1', [600, 200, 200]),
                                  ('v05', 's1', [1200, 400, 400]), ('nested', 'res/s1', [600, 600, 600])):
        with open_volume(f'{tmp_path / store}.zarr:/{level}') as reader:
            assert reader.name == f'{tmp_path / store}.zarr:/{level}'
            np.testing.assert_allclose(reader.voxel_size_nm, size_nm)
            np.testing.assert_array_equal(reader.read('z', 0, reader.shape[0]),
                                          expected if level == 's0' else expected[::2, ::2, ::2])


@pytest.mark.parametrize('version, axes, leading', [
    ('0.3', ['c', 'z', 'y', 'x'], (1,)),  # NGFF 0.3: axes are names, untyped
    ('0.3', ['t', 'c', 'z', 'y', 'x'], (1, 1)),
    ('0.2', None, (1, 1)),  # NGFF 0.1 / 0.2: no axes, always (T, C, Z, Y, X)
])
def test_older_ome_zarr_images_with_untyped_axes_are_read(tmp_path, version, axes, leading):
    """bioformats2raw and ome-zarr-py wrote NGFF 0.1-0.3 images for years: (T, C, Z, Y, X) or (C, Z, Y, X) of one
    time point and channel, whose axes carry no type (until 2026-12-07 refused as not 3D)."""
    expected = volume()
    group = zarr.open_group(tmp_path / 'old.zarr', mode='w', zarr_format=2)
    group.create_array('0', data=expected.reshape(leading + expected.shape), chunks=leading + (4, 5, 5))
    group.attrs['multiscales'] = [dict(version=version, datasets=[dict(path='0')],
                                       **({} if axes is None else dict(axes=axes)))]
    name, voxel_size_nm = assert_slabs_equal(tmp_path / 'old.zarr', expected)
    assert (name, voxel_size_nm) == (f'{tmp_path / "old.zarr"}:/0', None)


def test_a_bioformats2raw_store_is_read_from_its_first_image(tmp_path):
    """bioformats2raw (Bio-Formats to OME-Zarr) puts the image group at /0: the store itself was refused, and its
    message pointed to the array /0/0, which drops the voxel size (until 2026-12-07)."""
    expected = volume()
    space = [dict(name=axis, type='space', unit='micrometer') for axis in AXES]
    ome_image(tmp_path / 'b2r.zarr' / '0', expected, space, [0.3, 0.1, 0.1])
    zarr.open_group(tmp_path / 'b2r.zarr', mode='a', zarr_format=2).attrs['bioformats2raw.layout'] = 3
    name, voxel_size_nm = assert_slabs_equal(tmp_path / 'b2r.zarr', expected)
    assert name == f'{tmp_path / "b2r.zarr"}:/0/s0'
    np.testing.assert_allclose(voxel_size_nm, [300, 100, 100])


def test_axes_named_but_not_typed_give_the_voxel_size_too(tmp_path):
    """NGFF 0.4 makes an axis type optional: axes z, y, x with units and no type are the space axes for the voxel
    size as they are for the shape (the size was None until 2026-12-07)."""
    ome_image(tmp_path / 'untyped.zarr', volume(), [dict(name=axis, unit='micrometer') for axis in AXES],
              [0.3, 0.1, 0.1])
    np.testing.assert_allclose(assert_slabs_equal(tmp_path / 'untyped.zarr', volume())[1], [300, 100, 100])


def test_space_axes_in_another_order_are_refused(tmp_path):
    """NGFF only recommends the order z, y, x: an (X, Y, Z) array was read transposed, its voxel size reversed."""
    space = [dict(name=axis, type='space', unit='micrometer') for axis in 'xyz']
    ome_image(tmp_path / 'xyz.zarr', volume(), space, [0.1, 0.1, 0.3])
    with pytest.raises(ImageFormatError, match=r'xyz\.zarr:/s0: OME-Zarr space axes in the order x, y, z; expected '
                       'z, y, x'):
        open_volume(tmp_path / 'xyz.zarr')


def test_an_ome_zarr_image_of_channels_is_not_read_as_slices(tmp_path):
    """A (C, Y, X) colour image of 3 channels has a 3D shape: its axes, not its shape, say it is not a volume."""
    axes = [dict(name='c', type='channel'), dict(name='y', type='space'), dict(name='x', type='space')]
    ome_image(tmp_path / 'rgb.zarr', volume()[:4], axes, [1, 0.1, 0.1])
    with pytest.raises(ImageFormatError, match=r'rgb\.zarr:/s0: OME-Zarr axes \(c, y, x\) of shape \(4, 10, 9\) hold '
                       r'2 space axes, not a \(Z, Y, X\) volume$'):
        open_volume(tmp_path / 'rgb.zarr')


def test_pyramid_levels_halve_while_y_and_x_exceed_256_up_to_four():
    assert pyramid_shapes((9, 256, 4000)) == [(9, 256, 4000)]
    assert pyramid_shapes((9, 600, 257)) == [(9, 600, 257), (5, 300, 129)]
    assert pyramid_shapes((40, 5000, 3000)) == [(40, 5000, 3000), (20, 2500, 1500), (10, 1250, 750), (5, 625, 375)]


def write_in_two_processes(writer, labels_zyx):
    """What the blockwise assembly does: one process creates, two write alternate chunk rows and build the pyramid
    together (threads standing in for ranks), one commits."""
    writer.create()
    barrier = threading.Barrier(2)
    errors = []

    def rank(r):
        try:
            for z0 in range(r * writer.chunk_z, len(labels_zyx), 2 * writer.chunk_z):
                writer.write(z0, labels_zyx[z0:z0 + writer.chunk_z])
            barrier.wait()
            writer.finish(r, 2, barrier.wait)
        except BaseException as exc:  # noqa: B902  reported in the main thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    writer.commit()


def test_ome_zarr_labels_written_by_two_processes(tmp_path):
    labels_zyx = volume((21, 600, 300), np.uint32, seed=1)
    out = tmp_path / 'labels.zarr'
    write_in_two_processes(LabelVolumeWriter(out, labels_zyx.shape, np.uint32, (60, 50, 50), chunk_z=4), labels_zyx)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['labels.zarr']  # nothing temporary left
    group = zarr.open_group(out, mode='r')
    assert group.metadata.zarr_format == 2
    multiscale = group.attrs['multiscales'][0]
    assert multiscale['version'] == '0.4' and 'image-label' in group.attrs
    assert multiscale['axes'] == [dict(name=axis, type='space', unit='nanometer') for axis in AXES]
    levels = [dataset['path'] for dataset in multiscale['datasets']]
    assert [group[level].shape for level in levels] == pyramid_shapes(labels_zyx.shape) == [(21, 600, 300),
                                                                                            (11, 300, 150)]
    for k, (level, dataset) in enumerate(zip(levels, multiscale['datasets'])):
        np.testing.assert_array_equal(group[level][:], labels_zyx[::2**k, ::2**k, ::2**k])
        assert dataset['coordinateTransformations'] == [dict(type='scale', scale=[60. * 2**k, 50. * 2**k, 50. * 2**k])]
    name, voxel_size_nm = assert_slabs_equal(out, labels_zyx)
    np.testing.assert_allclose(voxel_size_nm, [60, 50, 50])
    assert name == f'{out}:/0'
    read_back = open_labels(out)
    assert isinstance(read_back, zarr.Array) and read_back.read_only
    np.testing.assert_array_equal(read_back[:], labels_zyx)


def test_ome_zarr_labels_without_voxel_size(tmp_path):
    labels_zyx = volume((5, 8, 7), np.uint16)
    writer = LabelVolumeWriter(tmp_path / 'labels.zarr', labels_zyx.shape, np.uint16, chunk_z=16)
    writer.create()
    writer.write(0, labels_zyx)
    writer.finish()
    writer.commit()
    multiscale = zarr.open_group(tmp_path / 'labels.zarr', mode='r').attrs['multiscales'][0]
    assert multiscale['axes'] == [dict(name=axis, type='space') for axis in AXES]
    assert multiscale['datasets'][0]['coordinateTransformations'] == [dict(type='scale', scale=[1., 1., 1.])]
    assert assert_slabs_equal(tmp_path / 'labels.zarr', labels_zyx)[1] is None


@pytest.mark.parametrize('dtype', [np.uint16, np.uint32])  # ImageJ, and tifffile's JSON description
def test_tiff_labels_are_a_memory_map_with_the_voxel_size(tmp_path, dtype):
    labels_zyx = volume((10, 7, 6), dtype)
    out = tmp_path / 'labels.tif'
    write_in_two_processes(LabelVolumeWriter(out, labels_zyx.shape, dtype, (60, 50, 40), chunk_z=4), labels_zyx)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['labels.tif']
    read_back = open_labels(out)
    assert isinstance(read_back, np.memmap) and read_back.dtype == dtype
    np.testing.assert_array_equal(read_back, labels_zyx)
    np.testing.assert_allclose(read_voxel_size(out), [60, 50, 40])
    with tifffile.TiffFile(out) as tif:
        assert tif.is_imagej == (dtype == np.uint16) and tif.pages[0].compression == 1


@pytest.mark.parametrize('name', ['labels.tif', 'labels.zarr'])
def test_commit_replaces_an_existing_output_only_with_overwrite(tmp_path, name):
    out = tmp_path / name
    first, second = volume((4, 5, 6), np.uint16, seed=1), volume((4, 5, 6), np.uint16, seed=2)
    for labels_zyx, overwrite in ((first, False), (second, True)):
        writer = LabelVolumeWriter(out, labels_zyx.shape, np.uint16)
        writer.create()
        writer.write(0, labels_zyx)
        writer.finish()
        if overwrite:  # refused without overwrite: the old output and the finished temporary both stay
            with pytest.raises(InputError, match=f'{out}: exists; pass --overwrite'):
                writer.commit()
            np.testing.assert_array_equal(open_labels(out)[:], first)
        writer.commit(overwrite=overwrite)
        np.testing.assert_array_equal(open_labels(out)[:], labels_zyx)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # neither temporary nor old copy left
    with pytest.raises(FileNotFoundError, match='create'):
        writer.commit(overwrite=True)


@pytest.mark.parametrize('name', ['labels.tif', 'labels.zarr'])
def test_a_run_stopped_before_commit_leaves_no_output_and_abort_cleans_up(tmp_path, name):
    out = tmp_path / name
    labels_zyx = volume((8, 5, 6), np.uint16)
    killed = LabelVolumeWriter(out, labels_zyx.shape, np.uint16, chunk_z=4)
    killed.create()
    killed.write(0, labels_zyx[:4])  # ... and the process is killed: nothing at out, only the temporary
    assert [p.name for p in tmp_path.iterdir()] == [f'.{name}.partial']
    rerun = LabelVolumeWriter(out, labels_zyx.shape, np.uint16, chunk_z=4)
    rerun.create()  # replaces the leftover temporary
    rerun.write(4, labels_zyx[4:])
    rerun.finish()
    rerun.commit()
    np.testing.assert_array_equal(open_labels(out)[:4], 0)  # nothing of the killed run's writes
    np.testing.assert_array_equal(open_labels(out)[4:], labels_zyx[4:])
    aborted = LabelVolumeWriter(tmp_path / f'other_{name}', labels_zyx.shape, np.uint16)
    aborted.create()
    aborted.abort()
    aborted.abort()  # nothing left to remove: no error
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_writes_must_cover_whole_chunk_rows(tmp_path):
    writer = LabelVolumeWriter(tmp_path / 'labels.zarr', (10, 4, 4), np.uint16, chunk_z=4)
    writer.create()
    for z0, n in ((2, 4), (0, 3), (8, 3), (0, 0)):
        with pytest.raises(ValueError, match='cannot write labels of shape'):
            writer.write(z0, np.ones((n, 4, 4), np.uint16))
    with pytest.raises(ValueError, match='cannot write labels of shape'):
        writer.write(0, np.ones((4, 4, 5), np.uint16))
    writer.write(8, np.ones((2, 4, 4), np.uint16))  # the last, shorter chunk row
    writer.abort()


def test_label_output_paths(tmp_path):
    assert [label_output_format(name) for name in ('a.tif', 'a.TIFF', 'a.zarr', 'a.zarr/')] == ['tiff', 'tiff',
                                                                                                'zarr', 'zarr']
    for name in ('labels.nii', 'labels.h5', 'labels'):
        with pytest.raises(InputError, match=f'{name}: unknown label volume format'):
            label_output_format(name)
        with pytest.raises(InputError, match='use .tif or .tiff'):
            LabelVolumeWriter(tmp_path / name, (1, 2, 2), np.uint16)
    existing = tmp_path / 'old.zarr'
    existing.mkdir()
    with pytest.raises(InputError, match=f'{existing}: exists; pass --overwrite'):
        check_label_output(existing)
    assert check_label_output(existing, overwrite=True) == str(existing)
    with pytest.raises(InputError, match='the output would overwrite the input'):
        check_label_output(existing, overwrite=True, inputs=(f'{existing}:/0',))
    folder_tif = tmp_path / 'folder.tif'
    folder_tif.mkdir()
    with pytest.raises(InputError, match=f'{folder_tif}: is a folder'):  # TIFF: the rules of check_output_file
        check_label_output(folder_tif, overwrite=True)
    slices = tmp_path / 'slices'  # a folder input (slices, a Zarr store): nothing is written inside it
    slices.mkdir()
    for name in ('labels.tif', 'labels.zarr', 'sub/labels.tif'):
        with pytest.raises(InputError, match=f'{slices / name}: lies inside the input folder {slices}'):
            check_label_output(slices / name, inputs=(str(slices),))
    with pytest.raises(InputError, match='lies inside the input folder'):
        check_label_output(existing / 'labels.tif', inputs=(f'{existing}:/0',))
    assert check_label_output(tmp_path / 'labels.tif', inputs=(str(slices), f'{existing}:/0')) == str(
        tmp_path / 'labels.tif')


def bad_hdf5(tmp_path):
    path = tmp_path / 'scan.h5'
    with h5py.File(path, 'w') as f:
        f.create_dataset('exchange/data', data=volume())
        f.create_dataset('exchange/dark', data=volume(seed=1))
        f.create_dataset('slice', data=np.zeros((4, 5), np.uint16))
        f.create_dataset('flags', data=np.zeros((2, 3, 4), bool))
    with h5py.File(tmp_path / 'no3d.h5', 'w') as f:
        f.create_dataset('theta', data=np.zeros(7))
    (tmp_path / 'text.h5').write_text('not HDF5')
    return path


def bad_zarr(tmp_path):
    zarr.create_array(tmp_path / 'four.zarr', data=np.zeros((2, 3, 4, 5), np.uint16), chunks=(1, 3, 4, 5))
    group = zarr.open_group(tmp_path / 'group.zarr', mode='w', zarr_format=2)
    group.create_array('raw/volume', data=volume())
    group.create_array('complex', data=np.zeros((2, 3, 4), np.complex64))
    (tmp_path / 'empty.zarr').mkdir()


BAD_INPUTS = [  # (source, exception, what the message says after the file and dataset it names)
    ('scan.h5:/exchange/missing', ImageFormatError, r'scan\.h5:/exchange/missing: no such dataset in the file '
     r'\(datasets: /exchange/dark \(12, 10, 9\), /exchange/data'),
    ('scan.h5:/exchange', ImageFormatError, r'scan\.h5:/exchange: is a group, not a dataset'),
    ('scan.h5:/slice', ImageFormatError, r'scan\.h5:/slice: expected a 3D \(Z, Y, X\) volume, got 2D'),
    ('scan.h5:/flags', ImageFormatError, r'scan\.h5:/flags: unsupported dtype bool'),
    ('scan.h5', ImageFormatError, r'scan\.h5: 3 3D datasets \(/exchange/dark \(12, 10, 9\), /exchange/data '
     r'\(12, 10, 9\), /flags \(2, 3, 4\)\); name the one to read as .*scan\.h5:/path/to/dataset$'),
    ('no3d.h5', ImageFormatError, r'no3d\.h5: no 3D dataset \(datasets: /theta \(7,\)\); name the one to read'),
    ('text.h5:/data', ImageFormatError, r'text\.h5: not a readable HDF5 file'),
    ('missing.h5:/exchange/data', FileNotFoundError, r'missing\.h5: file not found'),
    ('four.zarr', ImageFormatError, r'four\.zarr: expected a 3D \(Z, Y, X\) volume, got 4D shape \(2, 3, 4, 5\)'),
    ('group.zarr:/complex', ImageFormatError, r'group\.zarr:/complex: unsupported dtype complex64'),
    ('group.zarr:/raw/missing', ImageFormatError, r'group\.zarr:/raw/missing: no such array or group in the store '
     r'\(arrays: /complex \(2, 3, 4\), /raw/volume \(12, 10, 9\)\)'),
    ('four.zarr:/0', ImageFormatError, r'four\.zarr:/0: no such array: the store is itself an array'),
    ('group.zarr', ImageFormatError, r'group\.zarr: a Zarr group without OME-Zarr multiscales metadata; give the '
     r'array as .*group\.zarr:/<path>'),
    ('group.zarr:/raw', ImageFormatError, r'group\.zarr:/raw: a Zarr group without OME-Zarr multiscales'),
    ('empty.zarr', ImageFormatError, r'empty\.zarr: neither a Zarr array nor an OME-Zarr image'),
    ('missing.zarr', FileNotFoundError, r'missing\.zarr: file not found'),
]


@pytest.mark.parametrize('source, exception, message', BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_gets_one_error_naming_file_and_dataset(tmp_path, source, exception, message):
    bad_hdf5(tmp_path)
    bad_zarr(tmp_path)
    with pytest.raises(exception, match=message) as error:
        open_volume(f'{tmp_path}/{source}')
    assert str(error.value).startswith(str(tmp_path)) and '\n' not in str(error.value)
    with h5py.File(tmp_path / 'scan.h5', 'a'):  # a failed open leaves the HDF5 file closed
        pass


@pytest.mark.parametrize('value, detail', [
    ([0.1, 0.1], r'attribute element_size_um: expected one value or three'),
    ('0.1 um', r'attribute element_size_um: .*could not convert string to float'),
    ([0.1, 0.0, 0.1], r'attribute element_size_um: voxel sizes must be finite and > 0 nm'),
], ids=['two-values', 'text', 'zero'])
def test_voxel_size_attributes_that_cannot_be_used_are_warned_and_read_as_none(tmp_path, value, detail):
    """The voxels are sound and ``--voxel-size-nm`` needs no size from the file: an unusable attribute (its dataset
    named) is warned, not a refusal of the volume (until 2026-12-07 it could not be opened at all)."""
    path = tmp_path / 'scan.h5'
    with h5py.File(path, 'w') as f:
        f.create_dataset('data', data=volume()).attrs['element_size_um'] = value
    with pytest.warns(UserWarning, match=rf'^{path}:/data: unusable voxel size in its metadata \({detail}'):
        with open_volume(path) as reader:
            assert reader.voxel_size_nm is None
            np.testing.assert_array_equal(reader.read('z', 0, 2), volume()[:2])
    ome = tmp_path / 'image.zarr'
    ome_image(ome, volume(), [dict(name=a, type='space', unit='micrometer') for a in 'zyx'], [0.1, 0.0, 0.1])
    with pytest.warns(UserWarning, match=rf'^{ome}:/s0: unusable voxel size in its metadata \(OME-Zarr '
                      'coordinateTransformations: voxel sizes must be finite and > 0 nm'):
        assert open_volume(ome).voxel_size_nm is None


@pytest.mark.parametrize('compressor', [None, numcodecs.Zlib()])  # zarr's default (Blosc / Zstd); zlib.error
def test_a_chunk_that_cannot_be_decoded_is_one_line_naming_the_slab(tmp_path, compressor):
    """A damaged compressed chunk is found only when its slab is read: one ImageFormatError naming the array and
    where the slab starts, not the codec's bare message (or a traceback for an error type tools do not expect: a
    zlib-compressed chunk's zlib.error until 2026-12-07)."""
    path = tmp_path / 'scan.zarr'
    zarr.create_array(path, data=volume(), chunks=(4, 10, 9), zarr_format=2,
                      **({} if compressor is None else dict(compressors=compressor)))  # chunks 0.0.0 ... 2.0.0
    (path / '1.0.0').write_bytes(b'not a compressed chunk')
    with open_volume(path) as reader:
        np.testing.assert_array_equal(reader.read('z', 0, 4), volume()[:4])
        with pytest.raises(ImageFormatError, match=rf'^{path} \[z=4\]: cannot read its voxels \(') as error:
            reader.read('z', 4, 8)
    assert '\n' not in str(error.value)


def test_hdf5_compressed_with_the_filters_of_synchrotron_files_is_read(tmp_path):
    """Blosc, bitshuffle-LZ4 (detector and beamline files) or Zstd: h5py alone reads only gzip / lzf / szip, so
    these stopped with HDF5's 'can't open directory (/usr/local/lib/plugin)'. Written and read in processes of their
    own: reading in a process that imported hdf5plugin to write would pass without our import."""
    import subprocess
    import sys
    filters = ('Blosc', 'Bitshuffle', 'LZ4', 'Zstd')
    paths = [str(tmp_path / f'{name}.h5') for name in filters]
    write = ('import h5py, hdf5plugin, numpy as np\n'
             f'for name, path in zip({filters}, {paths}):\n'
             '    h5py.File(path, "w").create_dataset("exchange/data", data=np.arange(2880, dtype="u2").reshape('
             '6, 20, 24), chunks=(2, 20, 24), **getattr(hdf5plugin, name)())')
    read = ('import numpy as np; from libnet_mmdet.io import open_volume\n'
            f'for path in {paths}:\n'
            '    assert (open_volume(path).read("z", 0, 6) == np.arange(2880).reshape(6, 20, 24)).all(), path\n'
            'print("read")')
    for code in (write, read):
        done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == 'read'


def test_an_hdf5_file_a_writer_holds_open_is_named_as_such(tmp_path, monkeypatch):
    """A scan still being written (a beamline's writer holds it open): HDF5's lock error read 'not a readable HDF5
    file', as if it were damaged. File locking on, whatever the site sets (HPC sites often turn it off)."""
    import subprocess
    import sys
    monkeypatch.delenv('HDF5_USE_FILE_LOCKING', raising=False)  # read by HDF5 at each open
    path = tmp_path / 'scan.h5'
    h5py.File(path, 'w').create_dataset('data', data=volume()).file.close()
    writer = subprocess.Popen([sys.executable, '-c', f'import h5py, time; f = h5py.File({str(path)!r}, "a"); '
                               'print("open", flush=True); time.sleep(60)'], stdout=subprocess.PIPE, text=True,
                              env={k: v for k, v in os.environ.items() if k != 'HDF5_USE_FILE_LOCKING'})
    try:
        assert writer.stdout.readline().strip() == 'open'
        with pytest.raises(ImageFormatError, match=rf'^{path}: held open for writing by another program \(.*unable '
                           r'to lock file.*\); wait until it is written, or read it anyway with '
                           r'HDF5_USE_FILE_LOCKING=FALSE$'):
            open_volume(path)
    finally:
        writer.kill()
        writer.wait()


def test_an_hdf5_file_on_a_filesystem_without_locks_is_not_called_held_open(tmp_path, monkeypatch):
    """NFS without lockd: flock fails with ENOLCK, and no other program is involved."""
    import errno
    path = tmp_path / 'scan.h5'
    h5py.File(path, 'w').create_dataset('data', data=volume()).file.close()

    def no_locks(*args, **kwargs):
        raise OSError(errno.ENOLCK, 'Unable to synchronously open file (unable to lock file, errno = 37, error '
                      "message = 'No locks available')")
    monkeypatch.setattr(h5py, 'File', no_locks)
    with pytest.raises(ImageFormatError, match=rf'^{path}: its filesystem does not support the file locks HDF5 takes '
                       r'\(.*\); read it with HDF5_USE_FILE_LOCKING=FALSE$'):
        open_volume(path)


def test_a_virtual_dataset_without_its_part_files_is_refused(tmp_path, monkeypatch):
    """A master HDF5 whose volume maps part files (nabu, NeXus writers), copied without them: HDF5 reads the missing
    parts as zeros, and the volume was segmented half blank without a word (until 2026-12-07)."""
    expected = volume(dtype=np.float32)
    layout = h5py.VirtualLayout(shape=expected.shape, dtype=expected.dtype)
    for k, z0 in enumerate((0, 6)):
        with h5py.File(tmp_path / f'part_{k}.h5', 'w') as f:
            f['data'] = expected[z0:z0 + 6]
        layout[z0:z0 + 6] = h5py.VirtualSource(f'part_{k}.h5', 'data', shape=(6,) + expected.shape[1:])
    with h5py.File(tmp_path / 'rec.h5', 'w') as f:
        f.create_virtual_dataset('entry/data', layout, fillvalue=0)
    monkeypatch.chdir(tmp_path.parent)  # the part files are found beside the master, not in the working folder
    assert_slabs_equal(tmp_path / 'rec.h5', expected)
    moved = tmp_path / 'moved'  # parts named by absolute paths (nabu), master and parts moved together: HDF5 reads
    moved.mkdir()                # each part's base name beside the master
    layout = h5py.VirtualLayout(shape=expected.shape, dtype=expected.dtype)
    for k, z0 in enumerate((0, 6)):
        layout[z0:z0 + 6] = h5py.VirtualSource(str(tmp_path / f'part_{k}.h5'), 'data', shape=(6,) + expected.shape[1:])
        (tmp_path / f'part_{k}.h5').rename(moved / f'part_{k}.h5')
    with h5py.File(moved / 'rec.h5', 'w') as f:
        f.create_virtual_dataset('entry/data', layout, fillvalue=0)
    assert_slabs_equal(moved / 'rec.h5', expected)
    for k in range(2):
        (moved / f'part_{k}.h5').rename(tmp_path / f'part_{k}.h5')
    (tmp_path / 'part_1.h5').unlink()
    with pytest.raises(ImageFormatError, match=rf'^{tmp_path / "rec.h5"}:/entry/data: a virtual dataset whose part '
                       r'files are missing \(part_1\.h5\): their voxels would read as zeros; copy them beside '
                       r'rec\.h5$'):
        open_volume(tmp_path / 'rec.h5')


def test_a_length_1_leading_axis_is_dropped_as_tiff_and_ome_zarr_drop_it(tmp_path):
    """A (1, Z, Y, X) dataset (NeXus exports write one) is the (Z, Y, X) volume, in HDF5 found without naming it;
    a leading axis longer than 1 is still refused."""
    expected = volume()
    with h5py.File(tmp_path / 'scan.h5', 'w') as f:
        f.create_dataset('entry/data/data', data=expected[None])
        f.create_dataset('entry/theta', data=np.arange(7.0))
    zarr.create_array(tmp_path / 'plain.zarr', data=expected[None, None], chunks=(1, 1, 4, 4, 4), zarr_format=2)
    assert assert_slabs_equal(tmp_path / 'scan.h5', expected)[0] == f'{tmp_path / "scan.h5"}:/entry/data/data'
    assert_slabs_equal(tmp_path / 'plain.zarr', expected)
    zarr.create_array(tmp_path / 'two.zarr', data=np.stack([expected, expected]), zarr_format=2)
    with pytest.raises(ImageFormatError, match=r'two\.zarr: expected a 3D \(Z, Y, X\) volume, got 4D shape \(2, 12'):
        open_volume(tmp_path / 'two.zarr')


def write_labels(out, labels_zyx, overwrite=False):
    """One process writes ``labels_zyx`` to ``out`` through a :class:`LabelVolumeWriter` and commits it."""
    writer = LabelVolumeWriter(out, labels_zyx.shape, labels_zyx.dtype, chunk_z=4)
    writer.create()
    writer.write(0, labels_zyx)
    writer.finish()
    writer.commit(overwrite)
    return writer


def contents(path):
    """``{relative path: bytes}`` of every file under a folder (of the file itself)."""
    if not path.is_dir():
        return path.read_bytes()
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob('*') if p.is_file()}


def test_overwrite_replaces_a_zarr_only_when_it_is_a_label_image_of_ours(tmp_path):
    """``overwrite`` onto an existing ``.zarr`` removed it whatever it held; now only an empty folder or a label
    image this writer made is replaced, anything else is refused by the check and by commit, nothing removed."""
    first, second = volume((6, 5, 4), np.uint16, seed=1), volume((6, 5, 4), np.uint16, seed=2)
    notes = tmp_path / 'results.zarr'  # a folder of other files
    (notes / 'notes').mkdir(parents=True)
    (notes / 'notes' / 'important.txt').write_text('keep me')
    data = tmp_path / 'scan.zarr'  # someone's Zarr array
    zarr.create_array(data, data=first, chunks=(2, 5, 4), zarr_format=2)
    extended = tmp_path / 'extended.zarr'  # a label image of ours that holds other files too
    write_labels(extended, first)
    (extended / 'analysis.csv').write_text('id,volume')
    a_file = tmp_path / 'file.zarr'
    a_file.write_bytes(b'not a folder')
    for out in (notes, data, extended, a_file):
        before = contents(out)
        message = f'^{out}: exists and was not written by libnet-mmdet'
        with pytest.raises(InputError, match=message):
            check_label_output(out, overwrite=True)
        with pytest.raises(InputError, match=message):
            write_labels(out, second, overwrite=True)
        assert contents(out) == before
        assert osp.exists(LabelVolumeWriter(out, second.shape, np.uint16).partial_path)  # kept for abort()
    ours, empty = tmp_path / 'labels.zarr', tmp_path / 'empty.zarr'
    write_labels(ours, first)
    empty.mkdir()
    for out in (ours, empty):
        assert check_label_output(out, overwrite=True) == str(out)
        write_labels(out, second, overwrite=True)
        np.testing.assert_array_equal(open_labels(out)[:], second)


@pytest.mark.skipif(not osp.isdir('/proc/self/fd'), reason='names an open file through /proc')
def test_commit_puts_every_file_of_a_zarr_on_disk_before_renaming_it(tmp_path, monkeypatch):
    """The TIFF was fsync'ed before its rename, the ``.zarr`` folder not: a crash could leave a complete-looking
    output of empty or missing chunks."""
    synced = []
    fsync = os.fsync

    def recording_fsync(descriptor):
        synced.append(os.readlink(f'/proc/self/fd/{descriptor}'))
        fsync(descriptor)

    monkeypatch.setattr(os, 'fsync', recording_fsync)
    out = tmp_path / 'labels.zarr'
    writer = write_labels(out, volume((9, 300, 280), np.uint32))  # two pyramid levels, several chunks each
    partial = osp.realpath(writer.partial_path)
    written = [osp.relpath(osp.join(root, name), out) for root, folders, files in os.walk(out)
               for name in folders + files] + ['.']
    assert len(written) > 10 and {osp.normpath(osp.join(partial, name)) for name in written} <= set(synced)
