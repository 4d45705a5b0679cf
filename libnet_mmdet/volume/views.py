"""The views of a (Z, Y, X) volume that 2D segmentation slices it into, and their axes.

A view's slice ``k`` is the plane ``axis = k``: xy slices are z = const, (Y, X); xz slices y = const, (Z, X); yz
slices x = const, (Z, Y). Axes are named ``'z', 'y', 'x'`` (:data:`AXES`: name -> index into (Z, Y, X)).
"""
import numpy as np

from ..io.volume import AXES

VIEWS = ('xy', 'xz', 'yz')
#: Slices of a view (xz, yz) narrower than this many pixels on either side give a 2D model too little context.
MIN_VIEW_SIDE = 32
#: ``views='auto'`` fuses only voxels whose largest edge is at most this many times the smallest (when known).
MAX_FUSION_ANISOTROPY = 1.1
#: The axis each view slices along: xy slices are z = const, xz slices y = const, yz slices x = const.
VIEW_AXIS = {'xy': 'z', 'xz': 'y', 'yz': 'x'}
#: The two axes of (Z, Y, X) inside the slices of each view.
VIEW_PLANE_AXES = {'xy': (1, 2), 'xz': (0, 2), 'yz': (0, 1)}
#: The views whose slices contain each axis of (Z, Y, X): neighbours along z lie in one xz and one yz slice, ...
VIEWS_SEEING_AXIS = {0: ('xz', 'yz'), 1: ('xy', 'yz'), 2: ('xy', 'xz')}


def check_view_names(views):
    """Tuple of distinct view names from ``VIEWS`` (a single string is one view), or ``'auto'``
    (:func:`resolve_views`)."""
    if views == 'auto':
        return views
    if not isinstance(views, (str, tuple, list)):  # None, a number: a TypeError traceback from tuple()
        raise ValueError(f"views must be 'auto' or distinct names from {VIEWS}, got {views!r}")
    views = (views,) if isinstance(views, str) else tuple(views)
    if not views or len(set(views)) != len(views) or not set(views) <= set(VIEWS):
        raise ValueError(f"views must be 'auto' or distinct names from {VIEWS}, got {views!r}")
    return views


def context_stacks(slices_nhw, indices):
    """The slices ``indices`` of consecutive slices (n, H, W) each between its two neighbours, as a 2.5D model
    reads them: (H, W, 3) arrays (index - 1, index, index + 1), the first / last slice standing in for a missing
    neighbour (list, in ``slices_nhw``'s dtype)."""
    slices_nhw = np.asarray(slices_nhw)
    last = len(slices_nhw) - 1
    return [np.stack([slices_nhw[max(i - 1, 0)], slices_nhw[i], slices_nhw[min(i + 1, last)]], axis=-1)
            for i in indices]


def view_slabs(shape, views, slab):
    """Every ``(view, start, stop)`` slab of ``slab`` slices of a (Z, Y, X) ``shape``, view by view: the unit of
    inference, resume and rank split of a volume run (one part file each, see
    :class:`~libnet_mmdet.volume.workdir.WorkFolder`)."""
    units = []
    for view in views:
        length = shape[AXES[VIEW_AXIS[view]]]
        units += [(view, start, min(start + slab, length)) for start in range(0, length, slab)]
    return units


def usable_views(shape_zyx, views=VIEWS):
    """The views of ``views`` whose slices are at least :data:`MIN_VIEW_SIDE` px on each side (xy always)."""
    usable = []
    for view in views:
        axis = AXES[VIEW_AXIS[view]]
        if view == 'xy' or min(n for a, n in enumerate(shape_zyx) if a != axis) >= MIN_VIEW_SIDE:
            usable.append(view)
    return usable


def is_anisotropic(voxel_size_zyx_nm):
    """Whether (Z, Y, X) voxel edges differ by more than :data:`MAX_FUSION_ANISOTROPY` (largest / smallest): xz
    and yz slices then show the particles stretched, and neither the particle fusion nor the phase model uses
    them by default."""
    sizes = np.asarray(voxel_size_zyx_nm, np.float64)
    return bool(sizes.max() > MAX_FUSION_ANISOTROPY * sizes.min())


def resolve_views(views, shape_zyx, voxel_size_zyx_nm=None):
    """The views to segment a volume in: ``views`` itself, or for ``'auto'`` all three (fusion, the more accurate)
    when every view's slices are at least :data:`MIN_VIEW_SIDE` px on each side and the voxels are isotropic
    within :data:`MAX_FUSION_ANISOTROPY` (or of unknown size), else xy (linking).

    Args:
        views (tuple | str): checked view names (:func:`check_view_names`) or ``'auto'``.
        shape_zyx (tuple[int, int, int]): the volume's shape.
        voxel_size_zyx_nm (sequence[float] | None): (Z, Y, X) voxel edges, nm; None: unknown.

    Returns:
        tuple: ``(views, reason)``: the view names and, for ``'auto'``, a few words on why (else None).
    """
    if views != 'auto':
        return views, None
    if len(usable_views(shape_zyx)) < len(VIEWS):
        return ('xy',), f'linking: xz/yz slices under {MIN_VIEW_SIDE} px on a side'
    if voxel_size_zyx_nm is not None and is_anisotropic(voxel_size_zyx_nm):
        return ('xy',), f'linking: anisotropic voxels {"x".join(f"{v:g}" for v in voxel_size_zyx_nm)} nm'
    return VIEWS, 'fusion'
