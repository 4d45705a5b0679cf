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
* ``views='auto'`` — fusion where the volume allows it (xz/yz slices of at least 32 px, isotropic voxels when
  their size is known), else linking; ``tools/segment.py``'s default.

``min_voxels`` (about the volume of the smallest real particle) merges the fragments either leaves (a duplicate
2D detection left unlinked, a sliver where the views disagree) into the particle they touch most; ``smooth`` then
rounds each particle's mask (a Gaussian of its indicator, majority; for fused views by default in
``tools/segment.py``).

Streaming: slices are read lazily (memory-mapped TIFF, page by page, one file of a folder at a time, or chunk by
chunk from HDF5 / Zarr) in slabs of ``slab`` slices; each view's 2D labels go to a chunked array in the work
folder (:class:`~libnet_mmdet.volume.workdir.WorkFolder`), and the 3D assembly
(:func:`~libnet_mmdet.volume.assembly.assemble_volume`) links or fuses them block by block and writes the output
(TIFF, or OME-Zarr for ``out='labels.zarr'``) to a temporary beside ``out`` that replaces it at the end. Peak
memory is the model plus a few slabs, whatever the number of slices.

Scale: ``scale='auto'`` (the default for models that record their trained particle diameters) is estimated once
per volume, before inference, on up to 3 xy slices at the z quartiles
(:func:`~libnet_mmdet.apis.inference.estimate_scale`), used for every view, printed
(``scale: auto -> 0.632 (typical particle diameter 57 px; model trained for 12-48 px)``; two scales, merged, for
sizes that spread wider than the model's range) and recorded in the work folder's manifest.

Intensities: every slice of every view is normalised with one mapping, the volume's intensity range measured on
up to 16 xy slices spread over z (:func:`~libnet_mmdet.apis.inference.shared_intensity_range`; recorded in the
manifest), not each slice with its own: slices of air above or below the sample then stay dark, where a per-slice
stretch would turn their noise into particles.

Resume: the work folder (default ``<out>.work``) holds ``manifest.json`` (input shape and dtype, the inference
parameters with the scale as resolved, a fingerprint of the model and one of the code: this package's source and
the versions of torch, mmcv, mmdet, mmengine and numpy), one chunked array of 2D labels per view and
one part file per finished slab (``parts/<view>_<start>.json``: the checksum of its input). A rerun with the same
identity re-reads each slab and skips the inference of those whose part has the same checksum; a slab whose input
changed is segmented again (2D results depend on their own slice only, and on its two neighbours for a model
with 2.5D input, which the slab's checksum covers too; a rerun with ``'auto'`` estimates the same scale again, so
it resumes). The 3D assembly and the output always rerun from the view arrays, so a run killed
during assembly resumes without inference, and changing ``min_voxels``, ``min_overlap``, ``grow_voxels`` or
``smooth`` reuses all of it. The work folder is removed after success unless ``keep_work=True``. Scratch space:
2 bytes per voxel per view and 4 (linking) or 8 (fusion) more, before compression (BENCHMARKS.md gives the measured
disk use).

Distributed (torchrun, ``tools/dist_segment.sh``): when a ``torch.distributed`` process group is initialised,
rank ``r`` of ``N`` segments slabs ``r, r + N, r + 2N, ...`` of the list of every view's slabs into the shared work
folder (a page-wise input is first copied to a chunked array, each rank its own z-block); then every rank
assembles its own block of slices and writes its block of the output (:mod:`~libnet_mmdet.volume.assembly`). The
output is identical to a single-process run, and an interrupted job resumes with any number of ranks. ``out`` and
the work folder must be on a filesystem every rank sees.
"""
import os
import os.path as osp
import tempfile
import warnings

import numpy as np
from mmengine.dist import broadcast_object_list, get_dist_info
from tqdm import tqdm

from ..io.chunked import ChunkedVolume, slab_chunks
from ..io.errors import InputError, check_int, check_min_voxels, check_number, is_inside
from ..io.images import check_finite
from ..io.tiff import voxel_size_zyx
from ..io.volume import AXES, check_label_output, check_outside_inputs, open_labels, open_volume
from ..volume.assembly import assemble_volume
from ..volume.blocks import Ranks
from ..volume.fusion import DEFAULT_GROW_VOXELS
from ..volume.labels import min_voxels_for_diameter, resolve_smooth
from ..volume.linking import DEFAULT_MIN_OVERLAP
from ..volume.tiling import DEFAULT_MERGE_IOU
from ..volume.views import VIEW_AXIS, check_view_names, context_stacks, resolve_views, view_slabs
from ..volume.workdir import VIEW_MAX_ID, WorkFolder, slab_checksum
from .inference import (DEFAULT_SCORE_THR, RANGE_SLICES, check_auto_diameters, check_scale, describe_scale,
                        evenly_spaced, resolve_scale, resolve_tiling, shared_intensity_range, slice_segmenter,
                        uses_auto_scale)
from .model import code_fingerprint, default_batch_size, model_fingerprint, trained_diameter_range, uses_context_slices


def _read_slices(reader, axis, start, stop, context):
    """``(slices, raw)``: slices ``start:stop`` along ``axis`` as the model reads them, (H, W) each, or with
    ``context`` (H, W, 3) stacks of each slice between its two neighbours
    (:func:`~libnet_mmdet.volume.views.context_stacks`); ``raw`` is what was read, for the slab's checksum."""
    if not context:
        raw = reader.read(axis, start, stop)
        return list(raw), raw
    first = max(start - 1, 0)
    raw = reader.read(axis, first, min(stop + 1, reader.shape[AXES[axis]]))
    return context_stacks(raw, range(start - first, stop - first)), raw


def _segment_slabs(reader, segment, units, work, progress_bar, context=False):
    """Run the 2D model over ``units`` (``(view, start, stop)`` slabs, :func:`~libnet_mmdet.volume.views.view_slabs`),
    each into its own part file of the work folder, skipping finished slabs whose input is unchanged; ``context``:
    the model reads each slice with its neighbours (:func:`~libnet_mmdet.apis.model.uses_context_slices`)."""
    for view, start, stop in units:
        axis = VIEW_AXIS[view]
        slices, raw = _read_slices(reader, axis, start, stop, context)
        checksum = slab_checksum(raw)
        stored = work.part_checksum(view, start, stop)
        if stored == checksum:
            progress_bar.update()
            continue
        if stored is not None:
            warnings.warn(f'{reader.describe(axis, start)}: the input changed since the interrupted run; '
                          'segmenting this slab again')
        labels = [labels_hw for labels_hw, _ in segment(slices)]
        too_many = [k for k, labels_hw in enumerate(labels) if labels_hw.max(initial=0) > VIEW_MAX_ID]
        if too_many:
            raise ValueError(f'{reader.describe(axis, start + too_many[0])}: more than {VIEW_MAX_ID} instances in '
                             'one slice')
        work.write_part(view, start, labels, checksum)
        progress_bar.update()


def _scale_samples(reader, context):
    """The xy slices :func:`~libnet_mmdet.apis.inference.estimate_scale` samples: up to 3, at the z quartiles (as
    the model reads them: :func:`_read_slices`)."""
    depth = reader.shape[0]
    return [_read_slices(reader, 'z', z, z + 1, context)[0][0]
            for z in sorted({int(depth * q) for q in (0.25, 0.5, 0.75)})]


def _range_samples(reader):
    """The xy slices the volume's intensity range is measured on
    (:func:`~libnet_mmdet.apis.inference.shared_intensity_range`): up to 16, evenly spaced in z."""
    return [reader.read('z', z, z + 1)[0] for z in evenly_spaced(reader.shape[0], RANGE_SLICES)]


def _same_path(path, other):
    return isinstance(other, (str, os.PathLike)) and osp.realpath(path) == osp.realpath(other)


def check_volume_args(volume=None, out=None, views=('xy',), score_thr=DEFAULT_SCORE_THR, tile_size='auto',
                      overlap=None, min_voxels=0, slab=16, batch_size=None, merge_iou=DEFAULT_MERGE_IOU,
                      voxel_size_nm=None, work_dir=None, overwrite=False, scale=None, proposals='auto',
                      min_overlap=DEFAULT_MIN_OVERLAP, grow_voxels=DEFAULT_GROW_VOXELS, min_votes=None,
                      smooth=None):
    """Check the arguments of :func:`segment_volume` that need no model and no data, before anything is loaded,
    read or written: what ``segment_volume`` does first, and what ``tools/segment.py`` does before it loads the
    model. Same arguments and defaults as :func:`segment_volume`; a ``tile_size`` of ``'auto'`` is checked once
    the model gives it, and so is a ``scale`` of ``'auto'`` (the model must record its trained diameters).

    Returns:
        tuple | str: the view names, or ``'auto'``.

    Raises:
        InputError: the first bad argument, named: views, slab, min_voxels, voxel_size_nm, the 3D assembly settings
            (min_overlap, grow_voxels, min_votes, smooth), the 2D inference settings (score_thr, scale, batch_size,
            merge_iou, tile_size, overlap); an ``out`` that exists (unless
            ``overwrite``), is a folder or is the input; a ``work_dir`` that is not a work folder.
    """
    try:
        views = check_view_names(views)
        check_scale(scale)
        # slice_segmenter checks the 2D settings when it is built; a stand-in predictor builds it without a model
        slice_segmenter(lambda images: [], score_thr, tile_size, None if tile_size == 'auto' else overlap, batch_size,
                        merge_iou, proposals=proposals)  # 'auto': the model's tile size, checked with the model
        if voxel_size_nm is not None:
            voxel_size_zyx(voxel_size_nm, 'voxel_size_nm')
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    check_int(slab, 'slab', 1)
    check_int(grow_voxels, 'grow_voxels', 0)
    check_number(min_overlap, 'min_overlap', high=1, low_open=True)
    if min_votes is not None:
        check_int(min_votes, 'min_votes', 1)
        if min_votes > (3 if views == 'auto' else len(views)):
            raise InputError(f'min_votes must be at most the number of views ({views}), got {min_votes!r}')
    if overlap is not None:  # its upper bound, the tile size, may come from the model
        check_int(overlap, 'overlap', 0)
    if min_voxels is not None:
        check_min_voxels(min_voxels)
    if smooth not in (None, 'auto'):
        check_number(smooth, 'smooth', 0, 8, unit='Gaussian sigma in voxels')
    if out is not None:
        out = os.fspath(out)
        check_label_output(out, overwrite, inputs=(volume,))
        work_dir = work_dir or f'{out}.work'
    if work_dir is not None:
        if _same_path(work_dir, volume) or (out is not None and _same_path(work_dir, out)):
            raise InputError(f'{work_dir}: the work folder must be neither the input nor the output')
        if out is not None and is_inside(out, work_dir):
            raise InputError(f'{work_dir}: the work folder would hold the output {out} and is deleted when the run '
                             'ends; choose another work folder (--work-dir) or output')
        if out is not None and is_inside(work_dir, out):  # a .zarr output: its writer refused it after the inference
            raise InputError(f'{work_dir}: the work folder lies inside the output {out}, which is written whole when '
                             'the run ends; choose another work folder (--work-dir)')
        check_outside_inputs(work_dir, (volume,))
        if get_dist_info()[0] == 0:  # the shared folder that rank 0 creates (others could see it half-made)
            WorkFolder(work_dir).check()
    return views


def resolve_min_voxels(model, min_voxels, scales, scale_info, voxel_size_nm=None):
    """``(min_voxels, why)``: ``min_voxels`` as a number, and for ``'auto'`` (or None, for a model that records
    its trained particle diameters; else None is 0) a line saying where it came from, else None.

    Auto is :func:`~libnet_mmdet.volume.min_voxels_for_diameter` of the typical particle diameter ``D`` (xy pixels):
    the volume of a sphere ``D / 3`` across, in voxels of ``voxel_size_nm`` (``(Z, Y, X)`` nm or one edge; None:
    cubic): where z voxels are k times the xy pixel, such a sphere holds k times fewer. ``D`` is the one
    ``scale='auto'`` measured (``scale_info['diameter_px']``; ``fine_diameter_px`` when it added a finer scale for
    smaller particles), else the middle of the trained range seen at the largest of ``scales``.

    Raises:
        InputError: ``'auto'`` for a model that records no trained diameters.
    """
    if min_voxels not in (None, 'auto'):
        return int(min_voxels), None
    check_auto_diameters(model, min_voxels=min_voxels)
    trained = trained_diameter_range(model)
    if trained is None:
        return 0, None
    if scale_info is not None and scale_info['diameter_px'] is not None:  # the smaller one of two scales
        diameter, source = scale_info['fine_diameter_px'] or scale_info['diameter_px'], 'measured'
    else:
        diameter, source = np.sqrt(trained[0] * trained[1]) / max(scales), 'the trained middle at this scale'
    edges = (1.0,) * 3 if voxel_size_nm is None else voxel_size_zyx(voxel_size_nm)
    z_ratio = edges[0] / np.sqrt(edges[1] * edges[2])  # z voxel edge in xy pixels
    number = round(min_voxels_for_diameter(diameter) / z_ratio)
    return number, (f'a sphere a third of the typical particle diameter across, {diameter:.0f} px ({source})'
                    + ('' if np.isclose(z_ratio, 1) else f', in voxels {z_ratio:.3g} px long in z'))


def segment_volume(model, volume, out=None, views=('xy',), score_thr=DEFAULT_SCORE_THR, tile_size='auto',
                   overlap=None, min_overlap=DEFAULT_MIN_OVERLAP, grow_voxels=DEFAULT_GROW_VOXELS, min_votes=None,
                   min_voxels=0, slab=16, batch_size=None, merge_iou=DEFAULT_MERGE_IOU,
                   voxel_size_nm=None, work_dir=None, resume=True, keep_work=False, progress=True, scale=None,
                   overwrite=False, proposals='auto', smooth=None):
    """Segment a (Z, Y, X) volume into 3D particle instance labels (see the module docstring).

    Args:
        model: a detector from :func:`~libnet_mmdet.apis.init_segmenter`, or a predictor callable (its runs
            resume only when it has a ``fingerprint`` attribute naming what it computes).
        volume (str | np.ndarray): TIFF stack, folder of 2D slices, HDF5 dataset (``'stack.h5:/exchange/data'``),
            Zarr array or OME-Zarr image (``'stack.zarr'``), or array-like (``np.memmap``, zarr, ...) of shape
            (Z, Y, X), uint8/uint16/float32.
        out (str | None): output labels, by extension: ``.tif`` (uncompressed, memory-mappable TIFF) or ``.zarr``
            (OME-Zarr with a pyramid), written to a temporary beside it and moved into place at the end; None
            returns an in-memory array (small volumes: the work folder is then temporary and nothing resumes). An
            existing ``out`` is an error unless ``overwrite`` (an interrupted run has not written it: its rerun
            resumes).
        views (tuple | str): ``('xy',)`` links xy slices; two or three of ``'xy', 'xz', 'yz'`` fuse those views;
            ``'auto'`` (what ``tools/segment.py`` does by default) fuses all three where the volume allows
            (:func:`~libnet_mmdet.volume.views.resolve_views`: xz/yz slices of at least 32 px, isotropic voxels
            when their size is known), else links, and prints which.
        score_thr, tile_size, overlap, batch_size, merge_iou: 2D segmentation, as in
            :func:`~libnet_mmdet.apis.segment_image`.
        proposals (str): ``'auto'`` (a proposal budget per image) or ``'config'``, as in
            :func:`~libnet_mmdet.apis.segment_image`.
        scale (float | list | 'auto' | None): as in :func:`~libnet_mmdet.apis.segment_image`; ``'auto'``
            (default for a model that records its trained particle diameters, else 1) is estimated once for the
            volume (module docstring).
        min_overlap (float): linking: least overlap coefficient to continue a particle.
        grow_voxels (int), min_votes (int | None): fusion: growth of the consensus core into the majority
            foreground, and the views needed for a foreground voxel.
        min_voxels (int | 'auto' | None): particles with fewer voxels, and pieces lying mostly against a much
            larger particle, are merged into the particle they share the most faces with (fragments of
            linking/fusion, :func:`~libnet_mmdet.volume.labels.merge_small_lut`), or removed when they touch none
            (0 or 1: nothing merged). ``'auto'``: from the
            typical particle diameter (:func:`resolve_min_voxels`; ``tools/segment.py``'s default, as None: auto
            for a model that records its trained particle diameters, else 0).
        smooth (float | 'auto' | None): each particle's mask smoothed last with a Gaussian of this sigma in voxels
            (:func:`~libnet_mmdet.volume.labels.smooth_labels`: rounds the ragged outlines and ends in z of
            assembled slices); ``'auto'`` (``tools/segment.py``'s default): sigma
            :data:`~libnet_mmdet.volume.labels.SMOOTH_SIGMA_VOXELS` for fused views, none for linked ones; None or 0:
            none.
        slab (int): slices read, segmented and checkpointed at a time.
        voxel_size_nm (float | tuple | None): written into the output (TIFF: ImageJ ``spacing``/resolution;
            OME-Zarr: the multiscale scale); None: the input's own, when its metadata record one.
        work_dir (str | None): scratch and resume folder (default ``<out>.work``): new, empty, or the work folder
            of an earlier run (it is deleted after success, so a folder of other files is refused).
        resume (bool): continue from the finished slabs of an interrupted run in ``work_dir``.
        keep_work (bool): keep the work folder after success.
        progress (bool): tqdm progress bars.
        overwrite (bool): replace an existing ``out``.

    Returns:
        np.ndarray | None: (Z, Y, X) labels 1..N, uint16 (uint32 above 65535 particles); when ``out`` is given,
        a read-only view of it (memory map of the TIFF, the zarr array). None on ranks other than 0 of a
        distributed run.

    Raises:
        InputError: bad arguments or output paths (:func:`check_volume_args`, checked before anything is read,
            loaded or written); ``scale='auto'`` for a model that records no trained diameters.
        FileNotFoundError / ImageFormatError / ValueError: missing, unreadable, non-3D or empty input, NaN/Inf
            voxels (the message names the slice).
        TypeError: ``model`` is neither an MMDetection detector nor a predictor callable.
    """
    views = check_volume_args(volume, out, views, score_thr, tile_size, overlap, min_voxels, slab, batch_size,
                              merge_iou, voxel_size_nm, work_dir, overwrite, scale, proposals, min_overlap, grow_voxels,
                              min_votes, smooth)
    scale = check_scale(scale)
    auto = uses_auto_scale(model, scale)
    resolve_min_voxels(model, min_voxels, (1.0,), None)  # 'auto' for a model without diameters: fail before reading
    batch_size = default_batch_size(model) if batch_size is None else int(batch_size)  # numpy integers: plain ints
    slab = int(slab)  # for the work folder's JSON record
    tile_size, overlap = resolve_tiling(model, tile_size, overlap)
    rank, world_size = get_dist_info()
    if world_size > 1 and out is None:
        raise InputError('distributed segmentation needs out= (a path on a filesystem all ranks share)')
    context = uses_context_slices(model)
    if isinstance(volume, np.ndarray) and np.issubdtype(volume.dtype, np.floating):
        check_finite(volume, '<array>')  # in memory: cheap to check whole, before any slice is segmented
    with open_volume(volume) as reader, tempfile.TemporaryDirectory(prefix='segment_volume_') as temp_dir:
        resolved = [None]
        if rank == 0:
            intensity_range = shared_intensity_range(model, _range_samples(reader))
            resolved = [(*resolve_scale(model, scale, _scale_samples(reader, context) if auto else [], batch_size,
                                        intensity_range), intensity_range)]
        broadcast_object_list(resolved)  # one scale and one intensity mapping for every rank
        scales, scale_info, intensity_range = resolved[0]
        if rank == 0 and (progress or auto):
            print(describe_scale(scales, scale_info))
        voxel_size_nm = reader.voxel_size_nm if voxel_size_nm is None else voxel_size_nm  # given, else recorded
        min_voxels, why = resolve_min_voxels(model, min_voxels, scales, scale_info, voxel_size_nm)
        if rank == 0 and why is not None:
            print(f'min_voxels: auto -> {min_voxels} ({why})')
        views, why = resolve_views(views, reader.shape,
                                   None if voxel_size_nm is None else voxel_size_zyx(voxel_size_nm))
        if rank == 0 and why is not None:
            print(f"views: auto -> {' '.join(views)} ({why})")
        if rank == 0 and progress and smooth == 'auto':
            sigma = resolve_smooth(smooth, views, voxel_size_nm)
            print('smooth: auto -> ' + ('none (linked views)' if sigma is None else
                                        f"Gaussian sigma {' x '.join(f'{v:g}' for v in sigma)} voxels (fused views)"))
        segment = slice_segmenter(model, score_thr, tile_size, overlap, batch_size, merge_iou, scales, proposals,
                                  intensity_range)
        if out is not None:
            out = os.fspath(out)
            work = WorkFolder(work_dir or f'{out}.work')
        else:
            work, resume = WorkFolder(work_dir or temp_dir), False
        identity = dict(
            input=dict(name=osp.abspath(reader.name) if reader.name != '<array>' else '<array>',
                       shape=list(reader.shape), dtype=str(reader.dtype)),
            inference=dict(score_thr=score_thr, tile_size=tile_size, overlap=overlap, batch_size=batch_size,
                           merge_iou=merge_iou, slab=slab, scale=scales[0] if len(scales) == 1 else list(scales),
                           proposals=proposals, intensity_range=intensity_range and list(intensity_range),
                           **({'context_slices': True} if context else {})),
            model=model_fingerprint(model), code=code_fingerprint())
        ranks = Ranks.current()
        if rank == 0:
            work.open(identity, resume, reader.shape, views, slab)
        ranks.barrier()
        if any(view != 'xy' for view in views) and not reader.streams_any_axis:
            # a page-wise input is copied into a chunked array, each rank its own z-block
            copy_path = work.scratch_path('input')
            if rank == 0:
                ChunkedVolume.create(copy_path, reader.shape, reader.dtype,
                                     slab_chunks(reader.shape, slab, ('z',)))
            ranks.barrier()
            reader.copy_to(ChunkedVolume.open(copy_path), *ranks.block(reader.shape[0], slab), slab)
            ranks.barrier()
            reader.random_access(ChunkedVolume.open(copy_path))
        units = view_slabs(reader.shape, views, slab)
        my_units = units[rank::world_size]  # round robin: every rank gets slabs of every view
        with tqdm(total=len(my_units), desc='segment slabs' + (f' (rank {rank})' if world_size > 1 else ''),
                  unit='slab', disable=not progress or rank > 0) as bar:
            _segment_slabs(reader, segment, my_units, work, bar, context)
        shape = reader.shape
        reader.close()
        ranks.barrier()  # every slab is segmented
        labels = assemble_volume(work, shape, views, slab, min_overlap=min_overlap, grow_voxels=grow_voxels,
                                 min_votes=min_votes, min_voxels=min_voxels, out=out,
                                 voxel_size_nm=voxel_size_nm, overwrite=overwrite, ranks=ranks, smooth=smooth)
        if rank > 0:
            return None
    if not keep_work and work.path != temp_dir:
        work.remove()
    return labels if out is None else open_labels(out)
