"""Benchmark: the serial label operations of 3D assembly and tiling (issue 18, item 6), before and after.

Usage:
    python benchmarks/bench_serial_ops.py --out benchmarks/results/serial_ops_after.json
    python benchmarks/bench_serial_ops.py --size 256 --depth 32 --out /tmp/serial_ops.json   # quick
    # the code of another commit (e.g. before a change), with this script:
    mkdir /tmp/before && git archive COMMIT libnet_mmdet | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before python benchmarks/bench_serial_ops.py --out benchmarks/results/serial_ops_before.json

Inputs (seeded, built before any timing): a pair of neighbouring 1024 x 1024 slices of touching round particles
(~1,500 ids each; the first slice holds non-contiguous uint32 3D ids as :func:`link_next_slice` sees them, the
second shuffled uint16 2D ids 1..n as a model writes them, its particles shifted and resized a little), and a
128 x 512 x 512 uint32 label volume of touching particles (~3,000, nearest-seed cells clipped to a sphere).

Timed (best and median of ``--repeats`` runs, milliseconds, one process, the machine's cores):

* ``overlap_pairs`` and ``pairwise_iou`` of the slice pair; ``link_next_slice`` of the pair (renumbering, overlap,
  one-to-one matching, new ids);
* ``remove_small`` of the volume (``min_voxels`` 1,000) and ``compact_labels`` of the volume with its ids
  multiplied by 2**20 (above ``MAX_DIRECT_LABEL``, so it compacts);
* ``contact_counts`` of the volume read in slabs of 16 slices (as 3D assembly reads it);
* ``merge_tiles`` of the second slice cut into 256 px tiles overlapping by 64 px, and ``order_by_score`` of the
  second slice (random scores);
* reference primitives (the same code before and after, to choose between libraries): renumbering the second
  slice with ``np.unique(return_inverse=True)``, a bincount lookup table and ``fastremap.renumber``; uniting
  1,000,000 ids along 1,000,000 random edges with ``scipy.sparse.csgraph.connected_components`` (the hand-written
  union-find that tiling and fusion used took 2.5 s for this: ``results/serial_ops_before.json``; it is gone).

Each timed operation's output is hashed (``sha1``) so that two runs show whether the results are identical. Writes
the numbers as JSON (atomically). Run it alone on the machine (the heavy lock): a busy machine inflates the times;
the 1-minute load average is recorded before and after the timed operations (and by the run record).
"""
import argparse
import hashlib
import os
import time

import fastremap
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

import libnet_mmdet
from libnet_mmdet.evaluation import pairwise_iou
from libnet_mmdet.io import write_json
from libnet_mmdet.io.labels import compact_labels
from libnet_mmdet.volume.labels import contact_counts, overlap_pairs, remove_small
from libnet_mmdet.volume.linking import link_next_slice
from libnet_mmdet.volume.tiling import merge_tiles, order_by_score, tile_windows
from run_record import finish_record, run_record  # noqa: E402 (benchmarks/ is sys.path[0])

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results', 'serial_ops.json')


def particle_labels(shape, centres, radii, chunk=2**20):
    """Labels of touching round particles: each pixel/voxel goes to its nearest centre (ids 1..n in the order of
    ``centres``) when it lies within that centre's radius, else to the background.

    Args:
        shape (tuple): (H, W) or (Z, Y, X).
        centres (np.ndarray): (n, ndim) float coordinates.
        radii (np.ndarray): (n,) float radii, same unit.

    Returns:
        np.ndarray: uint32 labels of ``shape``.
    """
    tree = cKDTree(centres)
    grid = np.indices(shape, dtype=np.float32).reshape(len(shape), -1).T
    labels = np.zeros(grid.shape[0], np.uint32)
    for start in range(0, grid.shape[0], chunk):
        distance, nearest = tree.query(grid[start:start + chunk], distance_upper_bound=float(radii.max()),
                                       workers=-1)
        inside = np.isfinite(distance)
        inside[inside] = distance[inside] <= radii[nearest[inside]]
        labels[start:start + chunk][inside] = nearest[inside] + 1
    return labels.reshape(shape)


def slice_pair(size, n_particles, rng):
    """Two neighbouring (size, size) slices: uint32 non-contiguous 3D ids and shuffled uint16 2D ids 1..n."""
    centres = rng.uniform(0, size, (n_particles, 2))
    radii = rng.uniform(10, 18, n_particles) * size / 1024
    previous = particle_labels((size, size), centres, radii)
    kept = rng.random(n_particles) > 0.02  # a few particles end, a few start
    centres_next = np.concatenate([centres[kept] + rng.normal(0, 1, (kept.sum(), 2)),
                                   rng.uniform(0, size, ((~kept).sum(), 2))])
    radii_next = np.concatenate([radii[kept] + rng.normal(0, 0.5, kept.sum()), radii[~kept]])
    current = particle_labels((size, size), centres_next, radii_next)
    ids_3d = np.concatenate([[0], rng.choice(200_000, n_particles, replace=False) + 1]).astype(np.uint32)
    ids_2d = np.concatenate([[0], rng.permutation(len(centres_next)) + 1]).astype(np.uint16)
    return ids_3d[previous], ids_2d[current]


def particle_volume(shape_zyx, n_particles, rng):
    """A (Z, Y, X) uint32 volume of touching particles (nearest-seed cells clipped to spheres of radius 8-14)."""
    centres = rng.uniform(0, 1, (n_particles, 3)) * shape_zyx
    return particle_labels(shape_zyx, centres, rng.uniform(8, 14, n_particles))


def tile_results(labels_hw, tile_size, overlap, rng):
    """What a predictor gives for each tile of ``labels_hw``: labels 1..n of the tile and random scores."""
    windows = tile_windows(labels_hw.shape, tile_size, overlap)
    results = []
    for window in windows:
        ids, compact = np.unique(labels_hw[window], return_inverse=True)
        compact = compact.reshape(labels_hw[window].shape) + int(ids[0] != 0)  # 0 stays the background
        results.append((compact, rng.random(int((ids > 0).sum()))))
    return windows, results


def csgraph_components(n_ids, edges):
    """Component of ids 0..n_ids through ``scipy.sparse.csgraph.connected_components`` on the edges."""
    graph = coo_matrix((np.ones(len(edges), np.int8), (edges[:, 0], edges[:, 1])), shape=(n_ids, n_ids))
    return connected_components(graph, directed=False)[1]


def bincount_renumber(labels):
    """Ids of ``labels`` numbered 1..n in increasing order through a lookup table (0 stays 0)."""
    present = np.bincount(labels.ravel()) > 0
    present[0] = False
    lut = np.zeros(present.size, np.uint32)
    lut[present] = np.arange(1, present.sum() + 1)
    return lut[labels]


def digest(output):
    """sha1 of an operation's output (arrays, tuples and dicts of them), to compare runs."""
    sha = hashlib.sha1()
    stack = [output]
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
        else:
            array = np.ascontiguousarray(item)
            sha.update(f'{array.dtype.str}{array.shape}'.encode())
            sha.update(array.tobytes())
    return sha.hexdigest()[:12]


def timed(function, repeats):
    """``(best_ms, median_ms, output)`` of ``repeats`` calls of ``function()``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        output = function()
        times.append(1e3 * (time.perf_counter() - start))
    return min(times), float(np.median(times)), output


def main():
    run = run_record()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=int, default=1024, help='slice edge, pixels (default 1024)')
    parser.add_argument('--particles', type=int, default=1600, help='particles per slice (default 1600)')
    parser.add_argument('--depth', type=int, default=128, help='volume depth; the volume is depth x size/2 x '
                        'size/2 (default 128)')
    parser.add_argument('--volume-particles', type=int, default=3000, help='particles in the volume')
    parser.add_argument('--repeats', type=int, default=5, help='timed runs of each operation (default 5)')
    parser.add_argument('--out', default=RESULTS, help=f'JSON output (default {RESULTS})')
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    previous_hw, current_hw = slice_pair(args.size, args.particles, rng)
    shape_zyx = (args.depth, args.size // 2, args.size // 2)
    volume_zyx = particle_volume(shape_zyx, args.volume_particles, rng)
    large_ids_zyx = volume_zyx.astype(np.uint64) << 20
    windows, tiles = tile_results(current_hw, 256, 64, rng)
    scores = rng.random(int(current_hw.max()))
    n_ids = 1_000_000
    edges = rng.integers(1, n_ids, (n_ids, 2))
    slab = 16

    operations = {
        'overlap_pairs': lambda: overlap_pairs(previous_hw, current_hw),
        'pairwise_iou': lambda: pairwise_iou(previous_hw, current_hw),
        'link_next_slice': lambda: link_next_slice(previous_hw, current_hw, 200_001),
        'remove_small': lambda: remove_small(volume_zyx, 1000),
        'compact_labels': lambda: compact_labels(large_ids_zyx),
        'contact_counts': lambda: contact_counts(volume_zyx[z:z + slab] for z in range(0, shape_zyx[0], slab)),
        'merge_tiles': lambda: merge_tiles(current_hw.shape, windows, tiles, 256, 64),
        'order_by_score': lambda: order_by_score(current_hw, scores),
        'ref_renumber_np_unique': lambda: np.unique(current_hw, return_inverse=True)[1],
        'ref_renumber_bincount_lut': lambda: bincount_renumber(current_hw),
        'ref_renumber_fastremap': lambda: fastremap.renumber(current_hw, preserve_zero=True)[0],
        'ref_csgraph_1M': lambda: csgraph_components(n_ids, edges),
    }
    load_before = os.getloadavg()[0]
    timings = {}
    for name, function in operations.items():
        repeats = args.repeats
        best, median, output = timed(function, repeats)
        timings[name] = {'best_ms': round(best, 2), 'median_ms': round(median, 2), 'repeats': repeats,
                         'output_sha1': digest(output)}
        print(f'{name:<28} best {best:10.2f} ms   median {median:10.2f} ms   {timings[name]["output_sha1"]}')
    result = {
        'load_average_1min_timed_before': round(load_before, 2),  # around the timed operations alone
        'load_average_1min_timed_after': round(os.getloadavg()[0], 2),
        'library': os.path.dirname(libnet_mmdet.__file__),
        'slice_shape': list(current_hw.shape),
        'ids_previous_slice': int(np.unique(previous_hw).size - 1),
        'ids_current_slice': int(np.unique(current_hw).size - 1),
        'volume_shape': list(shape_zyx),
        'volume_particles': int(np.unique(volume_zyx).size - 1),
        'contact_slab': slab,
        'timings': timings,
    }
    write_json(args.out, dict(result, run=finish_record(run)), indent=2)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
