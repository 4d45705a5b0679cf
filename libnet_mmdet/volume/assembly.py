"""3D assembly of a volume run, spread over the ranks: from the 2D labels of every view in the work folder to the
3D particle labels.

Every rank assembles its own block of slices (:mod:`~libnet_mmdet.volume.blocks`): one view is linked along its
axis (:func:`~libnet_mmdet.volume.linking.link_slabs` on the block, block-local ids; the links across block faces,
:func:`~libnet_mmdet.volume.linking.block_face_links`, join them as a graph solved once), several are fused along z
(:func:`~libnet_mmdet.volume.fusion.fuse_slabs` with the ranks). Fragments (smaller than ``min_voxels``, or
pieces lying mostly against a much larger particle) are merged into the particle they touch most
(:func:`~libnet_mmdet.volume.labels.merge_small_lut`: each rank counts the contacts and surfaces of its block, the
lookup table is made once from their sum), and each rank writes its own z-block of the output
(:class:`~libnet_mmdet.io.LabelVolumeWriter`). The result equals a single-process run's, voxel for voxel, whatever
the number of ranks (tests/distributed).

Memory per rank holds a few slabs, the tables of its block's sections (totalled over the ranks through files in
the work folder's ``tables/``, :meth:`~libnet_mmdet.volume.blocks.Ranks.sum_tables`) and arrays with one entry
per particle or touching pair, never the volume. Scratch (the work folder's chunked arrays,
:mod:`libnet_mmdet.volume.workdir`): 4 bytes per voxel (linking) or 8 (fusion) before compression, plus 2 per
voxel per view for the 2D labels.
"""
import contextlib
import os.path as osp
from functools import partial

import numpy as np

from ..io.chunked import ChunkedVolume, slab_chunks
from ..io.labels import label_dtype
from ..io.volume import LabelVolumeWriter
from .blocks import Ranks, connected_groups
from .fusion import DEFAULT_GROW_VOXELS, fuse_slabs
from .labels import contact_counts, merge_small_lut, resolve_smooth, smooth_halo, smooth_labels
from .linking import DEFAULT_MIN_OVERLAP, block_face_links, link_slabs
from .views import AXES, VIEW_AXIS


def _scratch(work, name, shape, dtype, slab, axis, ranks):
    """A scratch array of the work folder made by rank 0 and opened by every rank (chunks: ``slab`` slices along
    ``axis`` and z, so each rank writes whole chunks of its block)."""
    path = work.scratch_path(name)
    if ranks.rank == 0:
        ChunkedVolume.create(path, shape, dtype, slab_chunks(shape, slab, ('z', axis)))
    ranks.barrier()
    return ChunkedVolume.open(path)


def _link(view_labels, labels3d, axis, slab, min_overlap, ranks):
    """Link one view along its ``axis`` into ``labels3d``, each rank its block with ids of its own, then join the
    blocks and rewrite each with the particle ids 1..N (in order of first voxel); returns the voxel count of each
    particle (index = id)."""
    length = labels3d.shape[AXES[axis]]
    start, stop = ranks.block(length, slab)
    sizes = link_slabs(partial(view_labels.read, axis), partial(labels3d.write, axis), length, slab, min_overlap,
                       block=(start, stop))
    offsets = ranks.id_offsets(sizes.size - 1)  # also the barrier: every block is linked
    offset = offsets[ranks.rank]
    edges = np.zeros((0, 2), np.int64)
    if 0 < start < stop:
        ids = labels3d.read(axis, start - 1, start + 1).astype(np.int64)
        edges = block_face_links(ids[0], view_labels.read(axis, start, start + 1)[0], ids[1])
        edges = edges + [offsets[ranks.rank_above(length, slab)], offset]
    lut = connected_groups(int(offsets[-1]) + 1, np.concatenate(ranks.gather(edges)))
    local_sizes = np.zeros(int(offsets[-1]) + 1, np.int64)
    for rank, rank_sizes in enumerate(ranks.gather(sizes)):
        local_sizes[offsets[rank] + 1:offsets[rank] + rank_sizes.size] = rank_sizes[1:]
    for z0 in range(start, stop, slab):
        local = labels3d.read(axis, z0, min(z0 + slab, stop)).astype(np.int64)
        labels3d.write(axis, z0, lut[np.where(local > 0, local + offset, 0)])
    ranks.barrier()  # the next pass reads the z-slabs of other blocks
    return np.bincount(lut, weights=local_sizes).astype(np.int64)


def _first_voxel_order(slabs, start, slab, plane, n_particles, ranks):
    """The renumbering (ids 0..N -> 0..N) of particles 1..N in the order of their first voxel in a (Z, Y, X) scan:
    each rank finds the first voxel of every particle in its block's ``slabs`` (from slice ``start``, ``plane``
    voxels a slice), the earliest over the ranks decides."""
    first = np.full(n_particles + 1, np.iinfo(np.int64).max, np.int64)
    for z0, labels in zip(range(start, 2 ** 62, slab), slabs):
        ids, index = np.unique(labels, return_index=True)
        first[ids] = np.minimum(first[ids], index + z0 * plane)
    first = np.min(ranks.gather(first), axis=0)
    renumber = np.zeros(n_particles + 1, label_dtype(n_particles))
    renumber[1 + np.argsort(first[1:], kind='stable')] = np.arange(1, n_particles + 1)
    return renumber


def _block_slabs(labels3d, lut, start, stop, slab, halo=False, sigma_zyx=None, renumber=None):
    """The z-slabs of ``start:stop`` of ``labels3d`` through ``lut`` (None: as stored), each smoothed with
    ``sigma_zyx`` (:func:`~libnet_mmdet.volume.labels.smooth_labels`, read with the slices around it that it needs:
    the same as the whole volume smoothed), then through ``renumber``; ``halo``: with the slice above the first
    slab (when there is one)."""
    depth = smooth_halo(sigma_zyx) if sigma_zyx is not None else 0
    for z0 in range(start, stop, slab):
        z1 = min(z0 + slab, stop)
        h0 = z0 - 1 if halo and z0 == start and z0 > 0 else z0
        if depth:
            w0, w1 = max(h0 - depth, 0), min(z1 + depth, labels3d.shape[0])
            window = labels3d.read('z', w0, w1)
            labels = smooth_labels(window if lut is None else lut[window], sigma_zyx)[h0 - w0:z1 - w0]
        else:
            labels = labels3d.read('z', h0, z1)
            labels = labels if lut is None else lut[labels]
        yield labels if renumber is None else renumber[labels]


def assemble_volume(work, shape, views, slab=16, min_overlap=DEFAULT_MIN_OVERLAP, grow_voxels=DEFAULT_GROW_VOXELS,
                    min_votes=None, min_voxels=0, out=None, voxel_size_nm=None, overwrite=False, ranks=None,
                    smooth=None):
    """3D particle labels from the 2D labels of every view of a volume run (see the module docstring). Every rank
    calls it; each assembles and writes its own block.

    Args:
        work (WorkFolder): the run's work folder, holding the view arrays of ``views``, every slab finished.
        shape (tuple): (Z, Y, X) of the volume.
        views (tuple): the segmented views; one is linked, several are fused.
        slab (int): slices per slab, as the view arrays were chunked.
        min_overlap (float): least overlap coefficient for 2D instances of consecutive slices to continue each
            other (linking; fusion's continuity).
        grow_voxels (int), min_votes (int | None): fusion: growth of the consensus core into the majority
            foreground, and the views needed for a foreground voxel.
        min_voxels (int): particles with fewer voxels, and pieces of larger particles, are merged into the particle
            they share the most faces with, or removed when they touch none
            (:func:`~libnet_mmdet.volume.labels.merge_small_lut`; 0 or 1: nothing merged).
        out (str | None): output label file, TIFF or OME-Zarr by its extension, written block by block to a
            temporary beside it and moved into place at the end; None returns the labels in memory (one process).
        voxel_size_nm (float | tuple | None): written into the output.
        overwrite (bool): replace an existing ``out``.
        ranks (Ranks | None): the processes of the run; None: this process alone.
        smooth (float | 'auto' | None): the particles' masks smoothed last
            (:func:`~libnet_mmdet.volume.labels.resolve_smooth`, :func:`~libnet_mmdet.volume.labels.smooth_labels`);
            None: as assembled.

    Returns:
        np.ndarray | str | None: (Z, Y, X) labels 1..N, uint16 (uint32 above 65535 particles), or ``out`` when
        given; None on ranks other than 0.
    """
    ranks = (ranks or Ranks()).sharing(osp.join(work.path, 'tables'))
    view_arrays = {view: work.view(view) for view in views}
    axis = VIEW_AXIS[views[0]]
    if len(views) == 1:
        view_labels = view_arrays[views[0]]
        labels3d = _scratch(work, 'labels3d', shape, np.uint32, slab, axis, ranks)
        sizes = _link(view_labels, labels3d, axis, slab, min_overlap, ranks)
    else:
        labels3d = _scratch(work, 'labels3d', shape, np.uint32, slab, 'z', ranks)
        core = _scratch(work, 'core', shape, np.uint32, slab, 'z', ranks)
        sizes = fuse_slabs(
            read_views=lambda z0, z1: {view: array.read('z', z0, z1) for view, array in view_arrays.items()},
            shape=shape, write_core=partial(core.write, 'z'), read_core=partial(core.read, 'z'),
            write_fused=partial(labels3d.write, 'z'), read_fused=partial(labels3d.read, 'z'), slab=slab,
            grow_voxels=grow_voxels, min_votes=min_votes, min_overlap=min_overlap, ranks=ranks)
    z_start, z_stop = ranks.block(shape[0], slab)
    contacts = None
    if min_voxels > 1:  # the fragment merge: contacts and surfaces of every instance
        block_contacts = contact_counts(_block_slabs(labels3d, None, z_start, z_stop, slab, halo=True),
                                        first_is_halo=z_start > 0, background=True)
        contacts = tuple(np.concatenate(column) for column in zip(*ranks.gather(block_contacts)))
    lut, n_particles = merge_small_lut(sizes, None, min_voxels, contacts=contacts)
    sigma_zyx = resolve_smooth(smooth, views, voxel_size_nm)
    final = partial(_block_slabs, labels3d, lut, slab=slab, sigma_zyx=sigma_zyx)
    renumber = None
    # fusion's growth reaches above a first seed; y or x linking scans its own way; smoothing moves first voxels
    if len(views) > 1 or axis != 0 or sigma_zyx is not None:
        renumber = _first_voxel_order(final(z_start, z_stop), z_start, slab, shape[1] * shape[2], n_particles, ranks)
    final = partial(final, renumber=renumber)
    if out is None:
        return np.concatenate(list(final(0, shape[0])))
    writer = LabelVolumeWriter(out, shape, label_dtype(n_particles), voxel_size_nm, chunk_z=slab)
    try:
        if ranks.rank == 0:
            writer.create()
        ranks.barrier()
        for z0, labels in zip(range(z_start, z_stop, slab), final(z_start, z_stop)):
            writer.write(z0, labels)
        ranks.barrier()
        writer.finish(ranks.rank, ranks.world_size, ranks.barrier)
        ranks.barrier()  # every rank's share of the pyramid is written
        if ranks.rank > 0:
            return None
        writer.commit(overwrite)
    except BaseException:  # a full disk, Ctrl-C: no hidden temporary as large as the output is left behind
        if ranks.rank == 0:
            with contextlib.suppress(OSError):  # the error that stopped the run is the one to report
                writer.abort()
        raise
    return out
