"""3D assembly of a volume run: from the 2D labels of each slab in the work folder to the 3D particle labels.

The part files of each view are gathered into one scratch array per view; one view is linked
(:func:`~libnet_mmdet.volume.linking.link_slabs`), several are fused
(:func:`~libnet_mmdet.volume.fusion.fuse_slabs`); fragments smaller than ``min_voxels`` are merged into the
particle they touch most (:func:`~libnet_mmdet.volume.labels.merge_small_lut`) and the result is written page by
page, or returned in memory. Everything streams slab by slab through the work folder's scratch arrays
(:mod:`libnet_mmdet.volume.workdir`): 4 bytes per voxel per view, plus 4 (linking) or 8 (fusion).
"""
import os
from functools import partial

import numpy as np

from ..io.tiff import write_tiff_pages
from .fusion import DEFAULT_GROW_VOXELS, fuse_slabs
from .labels import merge_small_lut
from .linking import DEFAULT_MIN_OVERLAP, link_slabs
from .views import AXES, VIEW_AXIS
from .workdir import create_scratch, read_scratch, write_scratch


def _z_slabs(path, depth, slab):
    """The (n, Y, X) z-slabs of a scratch array, in order."""
    return (read_scratch(path, 'z', z0, min(z0 + slab, depth)) for z0 in range(0, depth, slab))


def _link(view, view_path, labels_path, shape, slab, min_overlap):
    """Link the 2D labels of one view along its axis into ``labels_path``; returns voxel counts per id."""
    axis = VIEW_AXIS[view]
    return link_slabs(partial(read_scratch, view_path, axis), partial(write_scratch, labels_path, axis),
                      shape[AXES[axis]], slab, min_overlap)


def _fuse(view_paths, labels_path, core_path, shape, slab, grow_voxels, min_votes):
    """Fuse several views along z into ``labels_path``; returns voxel counts per id."""
    create_scratch(core_path, shape, np.uint32)
    sizes = fuse_slabs(
        read_views=lambda z0, z1: {view: read_scratch(path, 'z', z0, z1) for view, path in view_paths.items()},
        shape=shape,
        write_core=partial(write_scratch, core_path, 'z'),
        read_core=partial(read_scratch, core_path, 'z'),
        write_fused=partial(write_scratch, labels_path, 'z'),
        read_fused=partial(read_scratch, labels_path, 'z'),
        slab=slab, grow_voxels=grow_voxels, min_votes=min_votes)
    os.remove(core_path)
    return sizes


def assemble_volume(work, shape, views, slab=16, min_overlap=DEFAULT_MIN_OVERLAP, grow_voxels=DEFAULT_GROW_VOXELS,
                    min_votes=None, min_voxels=0, out=None, voxel_size_nm=None):
    """3D particle labels from the finished 2D slabs of a volume run (see the module docstring).

    Args:
        work (WorkFolder): the run's work folder, holding a part file for every slab of ``views``.
        shape (tuple): (Z, Y, X) of the volume.
        views (tuple): the segmented views; one is linked, several are fused.
        slab (int): slices per slab, as the parts were made.
        min_overlap (float): linking: least overlap coefficient to continue a particle.
        grow_voxels (int), min_votes (int | None): fusion: growth of the consensus core into the majority
            foreground, and the views needed for a foreground voxel.
        min_voxels (int): particles with fewer voxels are merged into the particle they share the most faces with,
            or removed when they touch none.
        out (str | None): label TIFF written page by page (atomically); None returns the labels in memory.
        voxel_size_nm (float | tuple | None): written into the TIFF.

    Returns:
        np.ndarray | str: (Z, Y, X) labels 1..N (order of first voxel), uint16 (uint32 above 65535 particles), or
        ``out`` when given.
    """
    view_paths = work.gather_views(shape, views, slab)
    labels_path = work.scratch_path('labels3d')
    create_scratch(labels_path, shape, np.uint32)
    if len(view_paths) == 1:
        (view, view_path), = view_paths.items()
        sizes = _link(view, view_path, labels_path, shape, slab, min_overlap)
    else:
        sizes = _fuse(view_paths, labels_path, work.scratch_path('core'), shape, slab, grow_voxels, min_votes)
    lut, _ = merge_small_lut(sizes, _z_slabs(labels_path, shape[0], slab), min_voxels)
    if out is None:
        return lut[np.load(labels_path, mmap_mode='r')]
    pages = (page for labels in _z_slabs(labels_path, shape[0], slab) for page in lut[labels])
    write_tiff_pages(out, shape, lut.dtype, pages, voxel_size_nm)
    return out
