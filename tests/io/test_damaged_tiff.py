"""Truncated, corrupt and random TIFF files: every reader of the io stage either returns the stored data or raises
one ImageFormatError naming the file (issue 17, defect 5: "truncated or corrupt", not "cannot stream this
layout"); never another exception."""
import itertools
import logging

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from libnet_mmdet.io import ImageFormatError, InputError, max_label, open_volume, read_volume, read_voxel_size
from libnet_mmdet.io import write_tiff
from libnet_mmdet.io.chunked import ChunkedVolume, slab_chunks
from libnet_mmdet.io.images import read_image, read_image_info

STACK = np.arange(6 * 20 * 24, dtype=np.uint16).reshape(6, 20, 24)


def cut(path, n_bytes):
    """Keep the first ``n_bytes`` of ``path`` (a copy broken off, a full disk)."""
    data = path.read_bytes()
    path.write_bytes(data[:n_bytes])
    return len(data)


@pytest.mark.parametrize('layout', ['uncompressed', 'zlib'])
def test_a_truncated_stack_is_reported_as_truncated(tmp_path, layout):
    path = tmp_path / 'stack.tif'
    tifffile.imwrite(path, STACK, photometric='minisblack', compression='zlib' if layout == 'zlib' else None)
    size = cut(path, path.stat().st_size // 2)
    readers = [open_volume, read_volume, read_image_info, lambda p: read_image(p, 'z', 1), max_label]
    for reader in readers:
        with pytest.raises(ImageFormatError, match=r'stack\.tif: not a readable TIFF file: truncated or corrupt'):
            reader(path)
    assert size > path.stat().st_size


@pytest.mark.parametrize('compression', ['lzw', 'zstd', 'jpeg2000'])
def test_an_intact_compressed_stack_reads_as_stored(tmp_path, compression):
    """LZW (GIMP, Photoshop, libtiff tools, Amira and Bio-Formats exports) and other codecs tifffile decodes
    through imagecodecs (a runtime requirement since 2026-12-07): an LZW stack was "truncated or corrupt"."""
    path = tmp_path / 'stack.tif'
    tifffile.imwrite(path, STACK, photometric='minisblack', compression=compression)
    with open_volume(path) as reader:
        np.testing.assert_array_equal(reader.read('z', 0, 6), STACK)
    np.testing.assert_array_equal(read_volume(path)[0], STACK)  # (volume, voxel size)
    np.testing.assert_array_equal(read_image(path, 'z', 1), STACK[1])


def test_a_damaged_page_of_a_streamed_stack_names_the_slice(tmp_path):
    """The header is intact (the file opens), one compressed page is garbage: reading it names file and slice."""
    path = tmp_path / 'stack.tif'
    tifffile.imwrite(path, STACK, photometric='minisblack', compression='zlib')
    with tifffile.TiffFile(path) as tif:
        offset, count = tif.pages[4].dataoffsets[0], tif.pages[4].databytecounts[0]
    data = bytearray(path.read_bytes())
    data[offset:offset + count] = b'\xff' * count
    path.write_bytes(bytes(data))
    with open_volume(path) as reader:
        np.testing.assert_array_equal(reader.read('z', 0, 4), STACK[:4])
        with pytest.raises(ImageFormatError, match=r'stack\.tif \[z=4\]: not a readable TIFF file: truncated or '
                                                   r'corrupt'):
            reader.read('z', 2, 6)


def test_not_a_tiff_and_tifffile_log_noise(tmp_path, caplog):
    path = tmp_path / 'notes.tif'
    path.write_text('these are notes, not an image')
    with pytest.raises(ImageFormatError, match=r"notes\.tif: cannot read as TIFF: not a TIFF file \(it starts "
                                               r"with b'thes'\)"):
        open_volume(path)
    tifffile.imwrite(path, STACK, photometric='minisblack')
    cut(path, path.stat().st_size - 40)  # the last page's tags: tifffile only logs the damage
    with caplog.at_level(logging.WARNING, logger='tifffile'):
        with pytest.raises(ImageFormatError, match='truncated or corrupt'):
            read_volume(path)
    assert not caplog.records  # reported once, in our error, not also as tifffile log lines


# --- fuzzing: random files, and small stacks of every layout written, then cut short or with bytes changed ---

LAYOUTS = {  # name: (dtypes, shapes, write(path, array))
    'write_tiff': ([np.uint8, np.uint16, np.uint32, np.float32, np.float64, np.int16],
                   [(5, 7), (1, 5, 7), (3, 5, 7)], lambda path, array: write_tiff(path, array, voxel_size_nm=50)),
    'zlib': ([np.uint8, np.uint16, np.float32], [(5, 7), (3, 5, 7), (2, 2, 5, 7)],
             lambda path, array: tifffile.imwrite(path, array, photometric='minisblack', compression='zlib')),
    'tiled': ([np.uint16], [(3, 32, 16)],
              lambda path, array: tifffile.imwrite(path, array, photometric='minisblack', tile=(16, 16))),
    'rgb': ([np.uint8], [(5, 7, 3)], lambda path, array: tifffile.imwrite(path, array, photometric='rgb')),
    'big-endian': ([np.uint16, np.float32], [(3, 5, 7)],
                   lambda path, array: tifffile.imwrite(path, array, byteorder='>', photometric='minisblack')),
}


@st.composite
def tiff_cases(draw):
    """``dict(layout, dtype, shape, damage)`` of a small TIFF to write and damage, or ``dict(data=bytes)``."""
    if draw(st.integers(0, 3)) == 0:
        return dict(data=draw(st.binary(max_size=300) | st.binary(max_size=200).map(lambda b: b'II*\x00' + b)))
    layout = draw(st.sampled_from(sorted(LAYOUTS)))
    dtypes, shapes, _ = LAYOUTS[layout]
    damage = draw(st.sampled_from(['none', 'cut', 'bytes']))
    changes = draw(st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1,
                            max_size=4))  # (where in the file, new byte); 'cut' keeps the first fraction
    event(f'{layout} {damage}')
    return dict(layout=layout, dtype=draw(st.sampled_from(dtypes)), shape=draw(st.sampled_from(shapes)),
                damage=damage, changes=changes)


def make_file(folder, case, name):
    """Write ``case`` to ``folder / name``; returns (path, the stored array, or None when damaged or random)."""
    path = folder / name
    if 'data' in case:
        path.write_bytes(case['data'])
        return path, None
    shape = case['shape']
    array = (np.arange(int(np.prod(shape))) % 251 + 1).reshape(shape).astype(case['dtype'])
    LAYOUTS[case['layout']][2](path, array)
    data = bytearray(path.read_bytes())
    if case['damage'] == 'cut':
        data = data[:int(case['changes'][0][0] * len(data))]
    elif case['damage'] == 'bytes':
        for where, value in case['changes']:
            data[int(where * len(data))] = value
    path.write_bytes(bytes(data))
    return path, (array if case['damage'] == 'none' else None)


def declared_size(path):
    """Bytes tifffile would allocate for the largest series, or 0 if it cannot tell (changed tags can declare a
    gigapixel image that decompresses from a few bytes; such examples are left out to keep the test small)."""
    logging.disable(logging.CRITICAL)
    try:
        with tifffile.TiffFile(path) as tif:
            return max((series.nbytes for series in tif.series), default=0)
    except Exception:
        return 0
    finally:
        logging.disable(logging.NOTSET)


def readers(path):
    """Every io reader of a TIFF file, by name."""
    def volume(axis):
        with open_volume(path) as reader:
            if not reader.streams_any_axis:
                copy = ChunkedVolume.create(path.with_suffix('.zarr'), reader.shape, reader.dtype,
                                            slab_chunks(reader.shape, 2))
                reader.copy_to(copy, 0, reader.shape[0], 2)
                reader.random_access(copy)
            n = reader.shape['zyx'.index(axis)]
            slabs = np.concatenate([reader.read(axis, start, min(start + 2, n)) for start in range(0, n, 2)])
            return np.moveaxis(slabs, 0, 'zyx'.index(axis))
    return {
        'read_image_info': lambda: read_image_info(path)[0],
        'read_image': lambda: read_image(path, allow_stack=True),
        'read_image z=0': lambda: read_image(path, 'z', 0),
        'read_image x=1': lambda: read_image(path, 'x', 1),
        'read_volume': lambda: read_volume(path)[0],
        'read_voxel_size': lambda: read_voxel_size(path),
        'open_volume z': lambda: volume('z'),
        'open_volume y': lambda: volume('y'),
        'max_label': lambda: max_label(path),
    }


ANY = object()
_counter = itertools.count()  # a new file name per example: no reader's cache holds an earlier file


def expected_result(reader, array, layout):
    """What ``reader`` gives for a sound file holding ``array``: a value, ANY, or None (it must raise)."""
    if array.ndim == 4:
        return None
    is_stack = array.ndim == 3 and layout != 'rgb'
    if reader in ('read_image_info', 'read_image', 'read_voxel_size', 'max_label'):
        return {'read_image_info': array.shape, 'read_image': array, 'read_voxel_size': ANY,
                'max_label': array.max()}[reader]
    if not is_stack:
        return None
    return {'read_image z=0': array[0], 'read_image x=1': array[:, :, 1]}.get(reader, array)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=tiff_cases())
def test_fuzzed_tiff_files_read_correctly_or_raise_one_named_error(tmp_path, case):
    path, array = make_file(tmp_path, case, f'fuzz_{next(_counter)}.tif')
    assume(declared_size(path) < 2**22)
    for reader, read in readers(path).items():
        expected = ANY if array is None else expected_result(reader, array, case['layout'])
        try:
            result = read()
        except InputError as exc:
            assert str(path) in str(exc), (reader, str(exc))
            assert expected is None or array is None, (reader, str(exc))
            continue
        assert expected is not None, (reader, 'accepted a file it must refuse')
        assert not isinstance(result, np.ndarray) or result.dtype.isnative, (reader, result.dtype)
        if expected is not ANY:
            np.testing.assert_array_equal(result, expected, err_msg=reader)
