"""The views of a (Z, Y, X) volume that 2D segmentation slices it into, and their axes.

A view's slice ``k`` is the plane ``axis = k``: xy slices are z = const, (Y, X); xz slices y = const, (Z, X); yz
slices x = const, (Z, Y). Axes are named ``'z', 'y', 'x'`` (:data:`AXES`: name -> index into (Z, Y, X)).
"""
from ..io.volume import AXES

VIEWS = ('xy', 'xz', 'yz')
#: The axis each view slices along: xy slices are z = const, xz slices y = const, yz slices x = const.
VIEW_AXIS = {'xy': 'z', 'xz': 'y', 'yz': 'x'}
#: The two axes of (Z, Y, X) inside the slices of each view.
VIEW_PLANE_AXES = {'xy': (1, 2), 'xz': (0, 2), 'yz': (0, 1)}
#: The views whose slices contain each axis of (Z, Y, X): neighbours along z lie in one xz and one yz slice, ...
VIEWS_SEEING_AXIS = {0: ('xz', 'yz'), 1: ('xy', 'yz'), 2: ('xy', 'xz')}


def check_view_names(views):
    """Tuple of distinct view names from ``VIEWS`` (a single string is one view)."""
    views = (views,) if isinstance(views, str) else tuple(views)
    if not views or len(set(views)) != len(views) or not set(views) <= set(VIEWS):
        raise ValueError(f'views must be distinct names from {VIEWS}, got {views!r}')
    return views


def view_slabs(shape, views, slab):
    """Every ``(view, start, stop)`` slab of ``slab`` slices of a (Z, Y, X) ``shape``, view by view: the unit of
    inference, resume and rank split of a volume run (one part file each, see
    :class:`~libnet_mmdet.volume.workdir.WorkFolder`)."""
    units = []
    for view in views:
        length = shape[AXES[VIEW_AXIS[view]]]
        units += [(view, start, min(start + slab, length)) for start in range(0, length, slab)]
    return units
