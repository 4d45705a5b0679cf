"""3D particle segmentation of a (Z, Y, X) volume: 2D instance segmentation of slices, then linking or view
fusion, streamed slab by slab and resumable.

>>> labels_zyx = segment_volume(model, 'stack.tif', out='labels.tif', views=('xy',))             # link xy slices
>>> labels_zyx = segment_volume(model, 'stack.tif', out='labels.tif', views=('xy', 'xz', 'yz'))  # fuse 3 views

Which to use:

* ``views=('xy',)`` — **linking** (:mod:`libnet_mmdet.volume.linking`), the default: one model pass over the
  volume (three times faster than fusion), any voxel aspect. Touching particles side by side in the slices stay
  apart; particles stacked along z that touch at their poles are merged, and a particle missed in one slice is cut.
* ``views=('xy', 'xz', 'yz')`` — **fusion** (:mod:`libnet_mmdet.volume.fusion`): three model passes, needs
  (near-)isotropic voxels. Separates touching particles in every direction and tolerates a particle split in
  one slice of one view (a section one view misses still cuts it); the most accurate on data like the training
  data (BENCHMARKS.md). Use it for the final analysis.

``min_voxels`` (about the volume of the smallest real particle) merges the fragments either leaves (a duplicate
2D detection left unlinked, a sliver where the views disagree) into the particle they touch most.

Streaming: slices are read lazily (memory-mapped TIFF, page by page, or one file of a folder at a time) in slabs
of ``slab`` slices; each view's 2D labels go to an on-disk scratch array in the work folder, linking/fusion run
slab by slab carrying one slice, and the output TIFF is written page by page to a temporary file that replaces
``out`` at the end. Peak memory is the model plus a few slabs, whatever the number of slices.

Resume: the work folder (default ``<out>.work``) holds ``manifest.json`` (input shape and dtype, the inference
parameters, a fingerprint of the model) and one part file per finished slab (``parts/<view>_<start>.npz``: its
2D labels and the checksum of its input). A rerun with the same identity re-reads each slab and skips the
inference of those whose part has the same checksum; a slab whose input changed is segmented again (2D results
depend on their own slice only). Gathering the parts, linking/fusion and writing (cheap) always rerun, so changing
``min_voxels``, ``min_overlap`` or ``grow_voxels`` reuses all the inference. The work folder is removed after
success unless ``keep_work=True``. Scratch space: 4 bytes per voxel per view (parts and the gathered view), plus
4 (linking) or 8 (fusion) bytes per voxel.

Distributed (torchrun, ``tools/dist_segment.sh``): when a ``torch.distributed`` process group is initialised,
rank ``r`` of ``N`` segments slabs ``r, r + N, r + 2N, ...`` of the list of every view's slabs, each into its own
part file in the shared work folder (no two ranks write one file); after a barrier rank 0 alone gathers, links
or fuses and writes ``out``. The parts are the same whatever the number of ranks, so the output is identical to
a single-process run, and an interrupted job resumes with any number of ranks. ``out`` and the work folder must
be on a filesystem every rank sees.
"""
import os
import os.path as osp
import shutil
import tempfile
import warnings

import numpy as np
import tifffile
from mmengine.dist import barrier, get_dist_info
from tqdm import tqdm

from ..fileio import atomic_output, write_tiff_pages
from ..volume.fusion import DEFAULT_GROW_VOXELS, VIEWS, fuse_slabs
from ..volume.io import (AXES, PARTS_DIR, create_scratch, open_volume, open_work_dir, read_scratch, slab_checksum,
                         write_scratch)
from ..volume.labels import merge_small_lut
from ..volume.linking import DEFAULT_MIN_OVERLAP, link_next_slice
from ..volume.tiling import DEFAULT_MERGE_IOU
from .inference import (DEFAULT_SCORE_THR, default_batch_size, model_fingerprint, resolve_tiling,
                        slice_segmenter)

#: The axis each view slices along: xy slices are z = const, xz slices y = const, yz slices x = const.
VIEW_AXIS = {'xy': 'z', 'xz': 'y', 'yz': 'x'}
VIEW_LABEL_DTYPE = np.uint16  # 2D ids per slice in the scratch arrays
VIEW_MAX_ID = np.iinfo(VIEW_LABEL_DTYPE).max


def check_view_names(views):
    """Tuple of distinct view names from ``VIEWS`` (a single string is one view)."""
    views = (views,) if isinstance(views, str) else tuple(views)
    if not views or len(set(views)) != len(views) or not set(views) <= set(VIEWS):
        raise ValueError(f'views must be distinct names from {VIEWS}, got {views!r}')
    return views


def _slab_units(shape, views, slab):
    """Every (view, start, stop) slab of the run, view by view: the unit of inference, resume and rank split."""
    units = []
    for view in views:
        length = shape[AXES[VIEW_AXIS[view]]]
        units += [(view, start, min(start + slab, length)) for start in range(0, length, slab)]
    return units


def _part_path(work_dir, view, start):
    return osp.join(work_dir, PARTS_DIR, f'{view}_{start:06d}.npz')


def _stored_checksum(part_path):
    """The input checksum a finished slab's part file was made from, or None if there is no part."""
    if not osp.isfile(part_path):
        return None
    with np.load(part_path) as part:
        return str(part['checksum'])


def _segment_slabs(reader, segment, units, work_dir, progress_bar):
    """Run the 2D model over ``units`` (see :func:`_slab_units`), each into its own part file
    ``parts/<view>_<start>.npz`` (2D labels and the checksum of the input slab), skipping finished slabs whose
    input is unchanged."""
    for view, start, stop in units:
        axis = VIEW_AXIS[view]
        raw = reader.read(axis, start, stop)
        checksum, path = slab_checksum(raw), _part_path(work_dir, view, start)
        stored = _stored_checksum(path)
        if stored == checksum:
            progress_bar.update()
            continue
        if stored is not None:
            warnings.warn(f'{reader.describe(axis, start)}: the input changed since the interrupted run; '
                          'segmenting this slab again')
        labels = [labels_hw for labels_hw, _ in segment(list(raw))]
        too_many = [k for k, labels_hw in enumerate(labels) if labels_hw.max(initial=0) > VIEW_MAX_ID]
        if too_many:
            raise ValueError(f'{reader.describe(axis, start + too_many[0])}: more than {VIEW_MAX_ID} instances in '
                             'one slice')
        with atomic_output(path, 'wb') as f:
            np.savez(f, labels=np.stack(labels).astype(VIEW_LABEL_DTYPE), checksum=checksum)
        progress_bar.update()


def _gather_views(units, shape, work_dir):
    """Copy every part file into one (Z, Y, X) uint16 scratch array per view; returns {view: path}."""
    view_paths = {}
    for view, start, _ in units:
        if view not in view_paths:
            view_paths[view] = osp.join(work_dir, f'view_{view}.npy')
            create_scratch(view_paths[view], shape, VIEW_LABEL_DTYPE)
        with np.load(_part_path(work_dir, view, start)) as part:
            write_scratch(view_paths[view], VIEW_AXIS[view], start, part['labels'])
    return view_paths


def _link_view(view_path, axis, labels_path, shape, slab, min_overlap):
    """Link the 2D labels of one view along its axis into ``labels_path``; returns voxel counts per id."""
    previous, next_id, sizes = None, 1, np.zeros(1, np.int64)
    for start in range(0, shape[AXES[axis]], slab):
        linked = []
        for current in read_scratch(view_path, axis, start, min(start + slab, shape[AXES[axis]])):
            previous, next_id = link_next_slice(previous, current, next_id, min_overlap)
            linked.append(previous)
        linked = np.stack(linked)
        write_scratch(labels_path, axis, start, linked)
        counts = np.bincount(linked.ravel())
        sizes = np.pad(sizes, (0, max(counts.size - sizes.size, 0)))
        sizes[:counts.size] += counts
    return sizes


def _assemble(view_paths, shape, work_dir, slab, min_overlap, grow_voxels, min_votes):
    """Linking (one view) or fusion (several) into a uint32 scratch volume; returns (its path, voxel counts)."""
    labels_path = osp.join(work_dir, 'labels3d.npy')
    create_scratch(labels_path, shape, np.uint32)
    if len(view_paths) == 1:
        (view, view_path), = view_paths.items()
        return labels_path, _link_view(view_path, VIEW_AXIS[view], labels_path, shape, slab, min_overlap)
    core_path = osp.join(work_dir, 'core.npy')
    create_scratch(core_path, shape, np.uint32)
    sizes = fuse_slabs(
        read_views=lambda z0, z1: {view: read_scratch(path, 'z', z0, z1) for view, path in view_paths.items()},
        shape=shape,
        write_core=lambda z0, ids: write_scratch(core_path, 'z', z0, ids),
        read_core=lambda z0, z1: read_scratch(core_path, 'z', z0, z1),
        write_fused=lambda z0, ids: write_scratch(labels_path, 'z', z0, ids),
        read_fused=lambda z0, z1: read_scratch(labels_path, 'z', z0, z1),
        slab=slab, grow_voxels=grow_voxels, min_votes=min_votes)
    os.remove(core_path)
    return labels_path, sizes


def _final_pages(labels_path, lut, shape, slab):
    """The relabelled output, page by page (z), read slab by slab from the scratch volume."""
    for start in range(0, shape[0], slab):
        yield from lut[read_scratch(labels_path, 'z', start, min(start + slab, shape[0]))]


def segment_volume(model, volume, out=None, views=('xy',), score_thr=DEFAULT_SCORE_THR, tile_size='auto',
                   overlap=None, min_overlap=DEFAULT_MIN_OVERLAP, grow_voxels=DEFAULT_GROW_VOXELS, min_votes=None,
                   min_voxels=0, slab=16, batch_size=None, merge_iou=DEFAULT_MERGE_IOU,
                   voxel_size_nm=None, work_dir=None, resume=True, keep_work=False, progress=True, scale=1.0):
    """Segment a (Z, Y, X) volume into 3D particle instance labels (see the module docstring).

    Args:
        model: a detector from :func:`~libnet_mmdet.apis.init_segmenter`, or a predictor callable.
        volume (str | np.ndarray): TIFF stack, folder of 2D slices, or array-like (``np.memmap``, zarr, ...)
            of shape (Z, Y, X), uint8/uint16/float32.
        out (str | None): output label TIFF (written atomically, memory-mappable); None returns an in-memory
            array (small volumes: the work folder is then temporary and nothing resumes).
        views (tuple): ``('xy',)`` links xy slices; two or three of ``'xy', 'xz', 'yz'`` fuse those views.
        score_thr, tile_size, overlap, batch_size, merge_iou, scale: 2D segmentation, as in
            :func:`~libnet_mmdet.apis.segment_image`.
        min_overlap (float): linking: least overlap coefficient to continue a particle.
        grow_voxels (int), min_votes (int | None): fusion: growth of the consensus core into the majority
            foreground, and the views needed for a foreground voxel.
        min_voxels (int): particles with fewer voxels are merged into the particle they share the most faces
            with (fragments of linking/fusion), or removed when they touch none.
        slab (int): slices read, segmented and checkpointed at a time.
        voxel_size_nm (float | tuple | None): written into the TIFF (ImageJ ``spacing``/resolution).
        work_dir (str | None): scratch and resume folder (default ``<out>.work``).
        resume (bool): continue from the finished slabs of an interrupted run in ``work_dir``.
        keep_work (bool): keep the work folder after success.
        progress (bool): tqdm progress bars.

    Returns:
        np.ndarray | None: (Z, Y, X) labels 1..N (order of first voxel), uint16 (uint32 above 65535 particles); a
        read-only memory map of ``out`` when given. None on ranks other than 0 of a distributed run.

    Raises:
        FileNotFoundError / ImageFormatError / ValueError: missing, unreadable, non-3D or empty input, NaN/Inf
            voxels (the message names the slice), bad parameters.
    """
    views = check_view_names(views)
    if int(slab) != slab or slab < 1:
        raise ValueError(f'slab must be a positive integer, got {slab!r}')
    if min_voxels < 0:
        raise ValueError(f'min_voxels must be >= 0, got {min_voxels!r}')
    batch_size = default_batch_size(model) if batch_size is None else batch_size
    segment = slice_segmenter(model, score_thr, tile_size, overlap, batch_size, merge_iou, scale)
    tile_size, overlap = resolve_tiling(model, tile_size, overlap)
    rank, world_size = get_dist_info()
    if world_size > 1 and out is None:
        raise ValueError('distributed segmentation needs out= (a path on a filesystem all ranks share)')
    with open_volume(volume) as reader, tempfile.TemporaryDirectory(prefix='segment_volume_') as temp_dir:
        if out is not None:
            out = os.fspath(out)
            if isinstance(volume, (str, os.PathLike)) and osp.abspath(out) == osp.abspath(volume):
                raise ValueError(f'{out}: the output would overwrite the input')
            work_dir = work_dir or f'{out}.work'
        else:
            work_dir, resume = work_dir or temp_dir, False
        identity = dict(
            input=dict(name=osp.abspath(reader.name) if reader.name != '<array>' else '<array>',
                       shape=list(reader.shape), dtype=str(reader.dtype)),
            inference=dict(score_thr=score_thr, tile_size=tile_size, overlap=overlap, batch_size=batch_size,
                           merge_iou=merge_iou, slab=slab, scale=scale),
            model=model_fingerprint(model))
        random_access = any(view != 'xy' for view in views)
        if rank == 0:
            open_work_dir(work_dir, identity, resume)
            if random_access:
                reader.random_access(osp.join(work_dir, 'input.npy'), slab)
        barrier()
        if random_access and rank > 0:
            reader.random_access(osp.join(work_dir, 'input.npy'), slab, copy=False)
        units = _slab_units(reader.shape, views, slab)
        my_units = units[rank::world_size]  # round robin: every rank gets slabs of every view
        with tqdm(total=len(my_units), desc='segment slabs' + (f' (rank {rank})' if world_size > 1 else ''),
                  unit='slab', disable=not progress or rank > 0) as bar:
            _segment_slabs(reader, segment, my_units, work_dir, bar)
        shape = reader.shape
        reader.close()
        barrier()  # every part file is written
        if rank > 0:
            return None
        view_paths = _gather_views(units, shape, work_dir)
        labels_path, sizes = _assemble(view_paths, shape, work_dir, slab, min_overlap, grow_voxels, min_votes)
        lut, _ = merge_small_lut(sizes, (read_scratch(labels_path, 'z', z0, min(z0 + slab, shape[0]))
                                         for z0 in range(0, shape[0], slab)), min_voxels)
        if out is None:
            labels = lut[np.load(labels_path, mmap_mode='r')]
        else:
            write_tiff_pages(out, shape, lut.dtype, _final_pages(labels_path, lut, shape, slab), voxel_size_nm)
    if not keep_work and work_dir != temp_dir:
        shutil.rmtree(work_dir)
    return labels if out is None else tifffile.memmap(out, mode='r').reshape(shape)  # (1, Y, X) reads as 2D
