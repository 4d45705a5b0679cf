"""Per-particle statistics table of a 3-D instance label volume (pandas DataFrame, one row per particle)."""

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from skimage.morphology import ball

from ..io.errors import InputError, check_int, check_number
from ..io.labels import check_labels, compact_labels
from ..io.tiff import voxel_size_zyx
from .contacts import CONTACT_CLASSES, surface_contact_areas, surface_contact_counts
from .phases import NMC, check_phases, segment_phases
from .shape import principal_axes, surface_area

AXES = 'zyx'
#: Values of the ``phase_source`` column.
PHASES_GIVEN, PHASES_MODEL, PHASES_MULTI_OTSU, PHASES_NONE = 'given', 'model', 'multi_otsu_approximate', 'none'


def particle_table(labels_zyx, phases_zyx=None, image_zyx=None, voxel_size_nm=None, depth_axis='z',
                   depth_from='low', smoothing_sigma=1.0, closing_radius=1, phase_source=PHASES_GIVEN):
    """Statistics of every particle of a 3-D instance label volume.

    Columns (units in the names; ``vox`` = voxels):

    - ``id``, ``voxels``, ``volume_um3`` (voxels x voxel volume), ``esd_um`` ((6V/pi)^(1/3));
    - ``centroid_{z,y,x}_vox``, ``centroid_{z,y,x}_um`` (voxel index x voxel edge: from the centre of voxel 0, as
      image coordinates; ``depth_um`` is from the volume's outer face, half a voxel further); bounding box
      ``bbox_{z,y,x}{0,1}`` (voxels, half-open);
    - ``surface_area_um2`` (marching cubes of the mask smoothed with ``smoothing_sigma``, see
      :func:`~libnet_mmdet.analysis.shape.surface_area`), ``sphericity`` = pi^(1/3) (6V)^(2/3) / S;
    - ``axis_major_um`` >= ``axis_middle_um`` >= ``axis_minor_um`` (full lengths of the inertia-equivalent
      ellipsoid), ``elongation`` = major / minor (1 for a sphere), ``major_axis_{z,y,x}`` (unit vector);
    - ``damage`` = (filled - solid) / filled: ``filled`` = the mask 3-D hole-filled; ``solid`` = mask voxels that
      are NMC in the phase volume. Filled masks (the project's convention, and what the models give) therefore
      take their cracks and hollow cores from the phase volume. Without phases ``solid`` is the mask itself, and
      the mask is first closed with a ball of ``closing_radius`` voxels, so that labels that keep the voids give
      damage (cracks open to the surface included); filled labels then give 0. With phases no closing: it would
      count every dent of a rough outline (a mask stacked from slices) as damage.
    - ``touches_border``: the bounding box reaches a face of the volume (the particle may be cut);
    - ``depth_um``: distance of the centroid from the reference plane, the outer face of the volume on the
      ``depth_from`` side (``'low'`` = index 0, ``'high'`` = last index) of ``depth_axis``;
    - ``surface_faces``: voxel faces of the surface not on the volume border;
      ``surface_fraction_carbon_binder``, ``surface_fraction_pore`` (= detachment), ``surface_fraction_particle``:
      shares of those faces, by area (a face normal to z counts ``y x`` voxel edges: with cubic voxels the share of
      the faces), whose outside voxel is carbon-binder, pore, or another particle / unsegmented NMC
      (see :func:`~libnet_mmdet.analysis.contacts.surface_contact_counts`); they sum to 1. They are NaN when no
      phase information is available, or for a particle without any such face (one filling the volume);
    - ``phase_source``: for ``phases_zyx``, the ``phase_source`` argument (``'given'``, or ``'model'`` for phases
      predicted by a phase model, :func:`~libnet_mmdet.apis.phases.predict_phases`); ``'multi_otsu_approximate'``
      (``image_zyx`` segmented by :func:`~libnet_mmdet.analysis.phases.segment_phases`: approximate) or ``'none'``.

    ``df.attrs`` holds ``voxel_size_nm`` (Z, Y, X), ``volume_shape``, ``depth_axis``, ``depth_from``,
    ``phase_source`` and, for multi-Otsu, ``phase_thresholds``.

    Args:
        labels_zyx (np.ndarray): (Z, Y, X) integer instance labels, 0 = background, 1..N particles (ids need not
            be consecutive). Instance masks are taken as filled particles (the project's ground-truth convention).
        phases_zyx (np.ndarray | None): (Z, Y, X) integer phase volume: 0 pore, 1 NMC, 2 carbon-binder.
        image_zyx (np.ndarray | None): (Z, Y, X) grayscale; used only when ``phases_zyx`` is None, to estimate
            the phases by multi-Otsu (flagged approximate).
        voxel_size_nm (float | sequence[float]): voxel edge in nm, or (Z, Y, X) edges; required (every ``_um``
            column depends on it): read it with :func:`~libnet_mmdet.io.read_voxel_size` from the input file (TIFF,
            HDF5, Zarr), or take it from the scanner's metadata.
        depth_axis (str | int): ``'z'``, ``'y'``, ``'x'`` or 0, 1, 2.
        depth_from (str): ``'low'`` or ``'high'``: the side of ``depth_axis`` holding the reference plane
            (current collector or separator).
        smoothing_sigma (float): Gaussian sigma (voxels) before marching cubes.
        closing_radius (int): radius (voxels) of the ball closing before hole filling for ``damage`` without
            phases (labels that keep their voids); 0 = none.
        phase_source (str): where ``phases_zyx`` comes from: :data:`PHASES_GIVEN` (a phase volume) or
            :data:`PHASES_MODEL` (predicted by a phase model).

    Returns:
        pandas.DataFrame: one row per particle, sorted by ``id``.

    Raises:
        TypeError / ValueError: see :func:`~libnet_mmdet.io.labels.check_labels`,
            :func:`~libnet_mmdet.analysis.phases.check_phases`; also a shape mismatch of ``image_zyx``, a missing
            (None) or bad ``voxel_size_nm`` and bad ``depth_axis``, ``depth_from``, ``smoothing_sigma``,
            ``closing_radius`` or ``phase_source``.
    """
    labels_zyx = check_labels(labels_zyx, 'labels_zyx')
    check_number(smoothing_sigma, 'smoothing_sigma', unit='voxels')
    check_int(closing_radius, 'closing_radius', 0)
    if voxel_size_nm is None:  # no default: 1 nm would silently give every _um column off by the voxel size
        raise InputError('voxel_size_nm: required (the voxel edge in nm, or (Z, Y, X) edges): read it with '
                         "libnet_mmdet.io.read_voxel_size(path) from the input file, or take it from the scanner's "
                         'metadata')
    spacing_nm = voxel_size_zyx(voxel_size_nm)
    spacing_um = spacing_nm / 1e3
    axis = _depth_axis_index(depth_axis)
    if depth_from not in ('low', 'high'):
        raise ValueError(f"depth_from: expected 'low' or 'high', got {depth_from!r}")
    attrs = {'voxel_size_nm': spacing_nm.tolist(), 'volume_shape': list(labels_zyx.shape),
             'depth_axis': AXES[axis], 'depth_from': depth_from}
    if phase_source not in (PHASES_GIVEN, PHASES_MODEL):
        raise ValueError(f'phase_source: expected {PHASES_GIVEN!r} or {PHASES_MODEL!r}, got {phase_source!r}')
    if phases_zyx is not None:
        phases_zyx = check_phases(phases_zyx, labels_zyx.shape)
    elif image_zyx is not None:
        if np.shape(image_zyx) != labels_zyx.shape:
            raise ValueError(f'image_zyx: shape {np.shape(image_zyx)} does not match labels_zyx shape '
                             f'{labels_zyx.shape}')
        phases_zyx, thresholds = segment_phases(image_zyx)
        phase_source = PHASES_MULTI_OTSU
        attrs['phase_thresholds'] = thresholds.tolist()
    else:
        phase_source = PHASES_NONE
    attrs['phase_source'] = phase_source

    labels_zyx, original_ids = compact_labels(labels_zyx, always=True)  # arrays per id, a loop over ids
    n_labels = int(labels_zyx.max())
    contact_counts = surface_contact_counts(labels_zyx, phases_zyx, n_labels, per_axis=True)
    pad = int(np.ceil(3 * smoothing_sigma)) + max(int(closing_radius), 0) + 1
    closing_ball = ball(closing_radius).astype(bool) if closing_radius > 0 and phases_zyx is None else None
    rows, present = [], []
    for index, bbox in enumerate(ndi.find_objects(labels_zyx)):
        if bbox is None:
            continue
        label = index + 1
        present.append(label)
        mask = labels_zyx[bbox] == label
        solid = mask if phases_zyx is None else mask & (phases_zyx[bbox] == NMC)
        rows.append(_particle_row(label, mask, solid, bbox, labels_zyx.shape, spacing_um, pad, closing_ball,
                                  smoothing_sigma, axis, depth_from))
    df = pd.DataFrame(rows)
    ids = original_ids[df['id'].to_numpy() - 1]
    df['id'] = ids.astype(np.int64) if int(original_ids[-1]) <= np.iinfo(np.int64).max else ids
    df['surface_faces'] = contact_counts[present].sum(axis=(1, 2))
    areas = surface_contact_areas(contact_counts[present], spacing_um)
    with np.errstate(invalid='ignore', divide='ignore'):
        fractions = areas / areas.sum(axis=1, keepdims=True)
    if phase_source == PHASES_NONE:
        fractions[:] = np.nan
    for column, values in zip(CONTACT_CLASSES, fractions.T):
        df[f'surface_fraction_{column}'] = values
    df['phase_source'] = phase_source
    df.attrs.update(attrs)
    return df


def _depth_axis_index(depth_axis):
    if isinstance(depth_axis, (int, np.integer)) and not isinstance(depth_axis, bool) and depth_axis in (0, 1, 2):
        return int(depth_axis)
    if isinstance(depth_axis, str) and depth_axis.lower() in AXES:
        return AXES.index(depth_axis.lower())
    raise ValueError(f"depth_axis: expected 'z', 'y', 'x' or 0, 1, 2, got {depth_axis!r}")


def _particle_row(label, mask, solid, bbox, volume_shape, spacing_um, pad, closing_ball, smoothing_sigma, axis,
                  depth_from):
    """Statistics of one particle from its bounding-box crop (``mask``: the particle, ``solid``: its NMC part)."""
    offset = np.array([s.start for s in bbox])
    stop = np.array([s.stop for s in bbox])
    coords = np.argwhere(mask)
    voxels = len(coords)
    volume_um3 = voxels * np.prod(spacing_um)
    centroid_vox = coords.mean(axis=0) + offset
    centroid_um = centroid_vox * spacing_um
    padded = np.pad(mask, pad)
    area_um2 = surface_area(padded, spacing_um, smoothing_sigma)
    lengths_um, major = principal_axes(coords, spacing_um)
    closed = ndi.binary_closing(padded, closing_ball) | padded if closing_ball is not None else padded
    # 3-D hole filling: every background component other than the one of the padding (which reaches the corner).
    background, _ = ndi.label(~closed)
    filled_voxels = closed.size - np.count_nonzero(background == background[0, 0, 0])
    if depth_from == 'low':
        depth_um = (centroid_vox[axis] + 0.5) * spacing_um[axis]
    else:
        depth_um = (volume_shape[axis] - 0.5 - centroid_vox[axis]) * spacing_um[axis]
    row = {'id': label, 'voxels': voxels, 'volume_um3': volume_um3,
           'esd_um': float(np.cbrt(6 * volume_um3 / np.pi))}
    row.update({f'centroid_{a}_vox': c for a, c in zip(AXES, centroid_vox)})
    row.update({f'centroid_{a}_um': c for a, c in zip(AXES, centroid_um)})
    row.update({f'bbox_{a}0': int(o) for a, o in zip(AXES, offset)})
    row.update({f'bbox_{a}1': int(s) for a, s in zip(AXES, stop)})
    row.update({
        'surface_area_um2': area_um2,
        'sphericity': float(np.pi ** (1 / 3) * (6 * volume_um3) ** (2 / 3) / area_um2),
        'axis_major_um': lengths_um[0], 'axis_middle_um': lengths_um[1], 'axis_minor_um': lengths_um[2],
        'elongation': float(lengths_um[0] / lengths_um[2]),
    })
    row.update({f'major_axis_{a}': float(v) for a, v in zip(AXES, major)})
    row.update({
        'damage': (filled_voxels - np.count_nonzero(solid)) / filled_voxels,
        'touches_border': bool(np.any(offset == 0) or np.any(stop == np.asarray(volume_shape))),
        'depth_um': float(depth_um),
    })
    return row
