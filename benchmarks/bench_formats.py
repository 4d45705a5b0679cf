"""Benchmark: reading a volume slab by slab from TIFF, HDF5 and Zarr, and writing a label volume as TIFF or
OME-Zarr (issue 18, item 3).

Usage:
    flock /tmp/heavy.lock nice -n 10 python benchmarks/bench_formats.py --out benchmarks/results/formats.json
    python benchmarks/bench_formats.py --depth 32 --size 256 --out /tmp/formats.json   # quick

Inputs (seeded, written before any timing, in a temporary folder): a (depth, size, size) uint16 volume of noise
(tomography does not compress much) stored as an uncompressed contiguous TIFF, an HDF5 dataset contiguous and one
chunked (16, 128, 128) with gzip level 1, and a Zarr v3 array chunked (64, 64, 64) with Blosc-lz4; and a uint32
label volume of the same shape made of 8-voxel cubes with random ids (0-2000: compresses about as real labels do).

Timed (best of ``--repeats``, seconds, one process): one pass over the whole volume in slabs of 16 slices along z,
y and x through :func:`libnet_mmdet.io.open_volume` (MB/s = volume bytes / seconds); writing the labels slab by
slab with :class:`libnet_mmdet.io.LabelVolumeWriter` (create, write, finish with the pyramid, commit) as TIFF and
as OME-Zarr, with the size on disk per voxel. The files were just written, so they are read from the page cache:
the numbers are the formats' CPU cost, not the disk's speed. The 1-minute load average is recorded before and after.
"""
import argparse
import os
import tempfile
import time

import h5py
import numpy as np
import tifffile
import zarr
from zarr.codecs import BloscCodec

from libnet_mmdet.io import LabelVolumeWriter, open_volume, write_json
from run_record import finish_record, run_record  # noqa: E402 (benchmarks/ is sys.path[0])

SLAB = 16


def _load():
    return os.getloadavg()[0]


def _best(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def _read_pass(source, axis):
    with open_volume(source) as reader:
        depth = reader.shape['zyx'.index(axis)]
        for start in range(0, depth, SLAB):
            reader.read(axis, start, min(start + SLAB, depth))


def _write_labels(out, labels_zyx):
    writer = LabelVolumeWriter(out, labels_zyx.shape, labels_zyx.dtype, voxel_size_nm=50, chunk_z=SLAB)
    writer.create()
    for z0 in range(0, len(labels_zyx), SLAB):
        writer.write(z0, labels_zyx[z0:z0 + SLAB])
    writer.finish()
    writer.commit(overwrite=True)


def _disk_bytes(path):
    if os.path.isfile(path):
        return os.stat(path).st_blocks * 512
    return sum(os.stat(os.path.join(folder, name)).st_blocks * 512
               for folder, _, names in os.walk(path) for name in names)


def make_inputs(folder, depth, size, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 65535, (depth, size, size), dtype=np.uint16)
    cubes = rng.integers(0, 2001, (-(-depth // 8), -(-size // 8), -(-size // 8))).astype(np.uint32)
    labels = cubes.repeat(8, 0).repeat(8, 1).repeat(8, 2)[:depth, :size, :size]
    sources = {'tiff': os.path.join(folder, 'image.tif')}
    tifffile.imwrite(sources['tiff'], image, photometric='minisblack')
    with h5py.File(os.path.join(folder, 'image.h5'), 'w') as f:
        f.create_dataset('contiguous', data=image)
        f.create_dataset('chunked', data=image, chunks=(16, 128, 128), compression='gzip', compression_opts=1)
    sources['hdf5 contiguous'] = os.path.join(folder, 'image.h5') + ':/contiguous'
    sources['hdf5 chunked gzip'] = os.path.join(folder, 'image.h5') + ':/chunked'
    sources['zarr blosc 64^3'] = os.path.join(folder, 'image.zarr')
    zarr.create_array(sources['zarr blosc 64^3'], data=image, chunks=(64, 64, 64), zarr_format=3,
                      compressors=BloscCodec(cname='lz4', clevel=1, shuffle='bitshuffle'))
    return image.nbytes, sources, labels


def main():
    run = run_record()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--depth', type=int, default=128)
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--out', required=True)
    args = parser.parse_args()
    load_before = _load()
    results = dict(shape=[args.depth, args.size, args.size], slab=SLAB, load_before=load_before, read={}, write={})
    with tempfile.TemporaryDirectory(prefix='bench_formats_') as folder:
        nbytes, sources, labels = make_inputs(folder, args.depth, args.size)
        for name, source in sources.items():
            results['read'][name] = {}
            for axis in 'zyx':
                seconds = _best(lambda: _read_pass(source, axis), args.repeats)
                results['read'][name][axis] = dict(seconds=round(seconds, 4), mb_per_s=round(nbytes / seconds / 2**20))
                print(f'read {name:18s} along {axis}: {seconds:7.3f} s ({nbytes / seconds / 2**20:6.0f} MB/s)')
        for suffix in ('tif', 'zarr'):
            out = os.path.join(folder, f'labels.{suffix}')
            seconds = _best(lambda: _write_labels(out, labels), args.repeats)
            per_voxel = _disk_bytes(out) / labels.size
            results['write'][suffix] = dict(seconds=round(seconds, 4), disk_bytes_per_voxel=round(per_voxel, 4))
            print(f'write labels.{suffix}: {seconds:7.3f} s, {per_voxel:.3f} bytes per voxel on disk')
    results['load_after'] = _load()
    write_json(args.out, dict(results, run=finish_record(run)), indent=1)
    print(f'load {load_before:.2f} -> {results["load_after"]:.2f}; wrote {args.out}')


if __name__ == '__main__':
    main()
