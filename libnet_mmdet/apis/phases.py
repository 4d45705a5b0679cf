"""Pore / NMC / carbon-binder phases of slices and volumes from a phase model
(:class:`~libnet_mmdet.models.PhaseSegmentor`, built by ``make model`` into ``models/phases``).

>>> model = init_phase_model(*phase_model_files(), device='cpu')  # doctest: +SKIP
>>> probs_chw = phase_probabilities(model, [slice_hw])[0]  # (3, H, W) float32: P(pore), P(NMC), P(carbon-binder)
>>> phases_zyx, details = predict_phases(model, image_zyx)  # uint8 (Z, Y, X): 0 pore, 1 NMC, 2 carbon-binder

Slices are prepared as the model's test pipeline prepares files (its loader swapped for the array loader, as
:mod:`~libnet_mmdet.apis.inference` does for detectors): percentile normalisation, no resizing; a 2D slice with its
own range, the slices of a volume (every view) with the volume's
(:func:`~libnet_mmdet.apis.inference.shared_intensity_range`), so that air above the sample stays pore. A volume's
class probabilities are summed over the views: xy slices always, xz and yz slices where they are at least
:data:`~libnet_mmdet.volume.views.MIN_VIEW_SIDE` pixels on each side (a slice of a thin volume gives the model too
little context); each voxel then has one probability from each view, weighted down on the outer
``test_cfg.view_edge_ramp_px - 1`` pixels of that view's slices (for 2, the edge row), where the other views see more
around it (:func:`view_edge_weights`). The phase is the most probable one, with pore
favoured right next to particles by a weight that falls with the image's share of bulk carbon-binder
(:func:`model_phases`: the model's ``test_cfg.surface_pore_weight`` and ``test_cfg.bulk_cb_slope``).
Each slice is mirror-padded by the model's ``test_cfg.mirror_pad_px`` pixels on every side before the model and its
probabilities cropped back (:func:`mirror_pad_px`).
"""
import sys

import numpy as np
import torch

from ..io.errors import InputError, check_int, check_number
from ..io.images import SLICE_AXES, check_finite, check_not_colour, slice_outside_view
from ..io.tiff import voxel_size_zyx
from ..models.phase_segmentor import check_phase_classes
from ..volume.views import (MIN_VIEW_SIDE, VIEW_AXIS, VIEWS, check_view_names, context_stacks, is_anisotropic,
                            usable_views)
from .inference import RANGE_SLICES, evenly_spaced, same_shape_batches, shared_intensity_range, slice_preparer
from .model import (PHASE_MODEL_TYPE, init_model, mixed_precision, phase_model_files, read_config,
                    scaled_test_pipeline, uses_context_slices)

BULK_CB_DISTANCE_PX = 4  # bulk carbon-binder lies farther from NMC than the thickest coat of the corpus (4 voxels)


def check_phase_config(config, name=None):
    """Check that ``config`` (path or ``mmengine.Config``) builds a phase model for the three phases; return it read.

    Raises:
        InputError: not a :class:`~libnet_mmdet.models.PhaseSegmentor`, its semantic head is not for NMC (one
            thing class) and pore / carbon-binder (two stuff classes), or its ``test_cfg.surface_pore_weight`` is
            not a number > 0, its ``test_cfg.bulk_cb_slope`` not a number >= 0 (0 unless the weight is above 1,
            which the slope lowers towards 1), or its ``test_cfg.mirror_pad_px`` or ``test_cfg.view_edge_ramp_px``
            not an integer >= 0; the message names the config.
    """
    cfg = read_config(config)
    name = name or getattr(cfg, 'filename', None) or '<Config>'
    model = cfg.get('model') or {}
    if str(model.get('type', '')).split('.')[-1] != PHASE_MODEL_TYPE:
        raise InputError(f'{name}: not a phase model (model type {model.get("type")!r}, expected '
                         f'{PHASE_MODEL_TYPE!r}, e.g. configs/nmc/phase-fpn_r18-gn_fpn-c64_cpu-tiny_generalist.py)')
    head = model.get('semantic_head') or {}
    check_phase_classes(head.get('num_things_classes'), head.get('num_stuff_classes'), name)
    test_cfg = model.get('test_cfg') or {}
    weight = test_cfg.get('surface_pore_weight', 1.0)
    check_number(weight, f'{name}: test_cfg.surface_pore_weight', low_open=True)
    slope = test_cfg.get('bulk_cb_slope', 0.0)
    check_number(slope, f'{name}: test_cfg.bulk_cb_slope')
    if slope > 0 and not weight > 1:
        raise InputError(f'{name}: test_cfg.bulk_cb_slope {slope!r} lowers the pore weight towards 1, but '
                         f'test_cfg.surface_pore_weight is {weight!r}: give a weight > 1 or slope 0')
    check_int(test_cfg.get('mirror_pad_px', 0), f'{name}: test_cfg.mirror_pad_px', 0)
    check_int(test_cfg.get('view_edge_ramp_px', 0), f'{name}: test_cfg.view_edge_ramp_px', 0)
    return cfg


def resolve_phase_model(phase_model='auto'):
    """``(config, checkpoint)`` of a phase model choice, checked (:func:`check_phase_config`), or None for none.

    Args:
        phase_model (str | os.PathLike): ``'auto'``: the model of ``make model`` (``models/phases``) when built,
            else None (phases fall back to multi-Otsu, flagged approximate); ``'none'``: None; otherwise a model
            folder holding ``config.py``, ``model.pth`` and ``model.json`` (what ``make model`` writes).

    Raises:
        InputError: a folder that holds no built model, or a config that is not a three-phase model.
    """
    if phase_model == 'none':
        return None
    files = phase_model_files(None if phase_model == 'auto' else phase_model)
    if files is None:
        if phase_model == 'auto':
            return None
        raise InputError(f'{phase_model}: no phase model there (a folder with config.py, model.pth and model.json, '
                         'as `make model` writes models/phases)')
    check_phase_config(files[0])
    return files


def init_phase_model(config, checkpoint, device='cpu', amp=False):
    """Load a phase model for inference: :func:`check_phase_config`, then
    :func:`~libnet_mmdet.apis.model.init_model` (strict weights; ``amp``: mixed-precision features).

    Raises:
        InputError, FileNotFoundError, CheckpointMismatchError: as those two functions.
    """
    cfg = check_phase_config(config)
    return init_model(cfg, checkpoint, device=device, amp=amp)


def phase_probabilities(model, slices, batch_size=1, intensity_range=None):
    """Phase probabilities of 2D slices.

    Args:
        model: a phase model (:func:`init_phase_model`).
        slices (list[np.ndarray]): (H, W) grayscale slices, any real dtype, or (H, W, 3) (previous, slice, next)
            stacks for a model with 2.5D input (:func:`~libnet_mmdet.apis.model.uses_context_slices`).
        batch_size (int): slices per forward pass (slices of one shape together:
            :func:`~libnet_mmdet.apis.inference.same_shape_batches`).
        intensity_range (tuple | None): ``(low, high)`` mapped to 0-255 for every slice (slices of one volume:
            :func:`~libnet_mmdet.apis.inference.shared_intensity_range`); None: each slice's own range.

    Returns:
        list[np.ndarray]: per slice, (3, H, W) float32 probabilities of the phase codes 0 pore, 1 NMC,
        2 carbon-binder (summing to 1 at each pixel); outside a reconstructed field of view
        (:func:`~libnet_mmdet.io.images.slice_outside_view`) pore with probability 1: the loader shows the model
        that fill as the mirror image of the inside, which is no material.
    """
    from mmcv.transforms import Compose
    check_int(batch_size, 'batch_size', 1)
    prepare = slice_preparer(model, intensity_range)
    pipeline = Compose(scaled_test_pipeline(model))
    pad = mirror_pad_px(model)
    probabilities = [None] * len(slices)
    for batch_indices in same_shape_batches(slices, batch_size):
        batch = [np.asarray(slices[k]) for k in batch_indices]
        prepared = [prepare(image) for image in batch]
        packed = [pipeline(dict(img=np.pad(image, [(pad, pad)] * 2 + [(0, 0)] * (image.ndim - 2), mode='reflect'),
                                img_id=i)) for i, image in enumerate(prepared)]
        with torch.no_grad(), mixed_precision(model):
            samples = model.test_step(dict(inputs=[p['inputs'] for p in packed],
                                           data_samples=[p['data_samples'] for p in packed]))
        for k, sample, image in zip(batch_indices, samples, batch):
            probs = sample.phase_probs.data.float().cpu().numpy()[:, pad:pad + image.shape[0],
                                                                  pad:pad + image.shape[1]]
            outside = slice_outside_view(image)
            if outside is not None:
                probs[:, outside] = np.array([1, 0, 0], probs.dtype)[:, None]
            probabilities[k] = probs
    return probabilities


def phases_from_probabilities(probabilities, surface_pore_weight=1.0):
    """The phase of each pixel (voxel): the most probable, with pore favoured next to particles.

    Right next to a particle blur and the phase-contrast fringe mix the particle's brightness into a pore pixel, so
    that it looks like carbon-binder; the model then calls the ambiguous pixels of that one-pixel shell carbon-binder
    more often than pore, and the detachment counted there comes out low. ``surface_pore_weight`` multiplies the
    pore probability at pixels (voxels) that share a face with a most-probably-NMC one before the argmax; the
    phase model's config sets it per image (:func:`model_phases`).

    Args:
        probabilities (np.ndarray): (3, H, W) or (3, Z, Y, X) float probabilities (or sums of them) of the phase
            codes 0 pore, 1 NMC, 2 carbon-binder. Modified in place where the weight applies.
        surface_pore_weight (float): > 0; 1 is the plain argmax.

    Returns:
        np.ndarray: uint8 phases of ``probabilities.shape[1:]``.
    """
    from scipy import ndimage as ndi
    if surface_pore_weight != 1:
        nmc = phase_argmax(probabilities) == 1
        surface = ndi.binary_dilation(nmc) & ~nmc  # face neighbours of NMC
        probabilities[0][surface] *= surface_pore_weight
    return phase_argmax(probabilities)


def phase_argmax(probabilities):
    """The phase code of the largest of (3, H, W) or (3, Z, Y, X) ``probabilities`` at each pixel (voxel), uint8,
    taken slice by slice along Z: NumPy's ``argmax(0)`` of the whole volume copies it (12 bytes per voxel) and
    returns int64 (8 more)."""
    if probabilities.ndim == 3:
        return probabilities.argmax(0).astype(np.uint8)
    phases = np.empty(probabilities.shape[1:], np.uint8)
    for z in range(probabilities.shape[1]):
        phases[z] = probabilities[:, z].argmax(0)
    return phases


def bulk_cb_share(phases, outside_view=None):
    """The share of carbon-binder among the pixels (voxels) farther than :data:`BULK_CB_DISTANCE_PX` from every NMC
    one (more than that many steps of the 3x3(x3) neighbourhood away, so farther in Euclidean distance too): about
    0 where carbon-binder only coats particles and bridges their necks, near the share of the gaps it fills where it
    lies in bulk between particles.

    Args:
        phases (np.ndarray): (H, W) or (Z, Y, X) phase codes (0 pore, 1 NMC, 2 carbon-binder).
        outside_view (np.ndarray | None): bool of ``phases``' shape, True outside the reconstructed field of view
            (:func:`outside_view_voxels`): left out, as no sample is there (they are pore).

    Returns:
        float: in [0, 1]; 0 when no pixel is that far from NMC.
    """
    from scipy import ndimage as ndi
    far = ~ndi.binary_dilation(phases == 1, np.ones((3,) * phases.ndim, bool), iterations=BULK_CB_DISTANCE_PX)
    if outside_view is not None:
        far &= ~outside_view
    n_far = np.count_nonzero(far)
    far &= phases == 2
    return np.count_nonzero(far) / n_far if n_far else 0.0


def outside_view_voxels(image):
    """The pixels (voxels) outside the reconstructed field of view of each xy slice
    (:func:`~libnet_mmdet.io.images.slice_outside_view`): (H, W) or (Z, Y, X) bool of ``image``'s shape, or None
    where no slice has any."""
    masks = [slice_outside_view(image_hw) for image_hw in (image[None] if image.ndim == 2 else image)]
    if all(mask is None for mask in masks):
        return None
    outside = np.stack([np.zeros(image.shape[-2:], bool) if mask is None else mask for mask in masks])
    return outside[0] if image.ndim == 2 else outside


def model_phases(model, probabilities, outside_view=None):
    """Phases from a phase model's probabilities as its ``test_cfg`` decides them: :func:`phases_from_probabilities`
    with the pore weight ``max(1, surface_pore_weight - bulk_cb_slope * share)`` when the config gives a slope (it
    may only where the weight is above 1: :func:`check_phase_config`), ``share`` the :func:`bulk_cb_share` of the
    plain argmax; without a slope, ``surface_pore_weight`` as it is (below 1 favours carbon-binder next to
    particles). Next to a
    particle pore is called carbon-binder the more often the less carbon-binder there is elsewhere in the image, so
    the weight that sets detachment right falls with the share of bulk carbon-binder; the CPU recipe's two numbers
    were chosen together on validation volumes without and with bulk carbon-binder
    (``benchmarks/tune_phase_weight.py``, BENCHMARKS.md).

    Args:
        model: a phase model (:func:`init_phase_model`); ``test_cfg`` without the keys: weight 1, slope 0.
        probabilities (np.ndarray): (3, H, W) or (3, Z, Y, X) float probabilities (or sums of them) of the phase
            codes 0 pore, 1 NMC, 2 carbon-binder. Modified in place where the weight applies.
        outside_view (np.ndarray | None): the voxels outside the field of view, left out of the share
            (:func:`bulk_cb_share`; ``details['outside_view']`` of :func:`phase_volume_probabilities`).

    Returns:
        tuple: ``(phases, details)``: uint8 phases of ``probabilities.shape[1:]`` and a dict with
        ``surface_pore_weight`` (the weight used) and ``bulk_cb_share`` (None when the slope is 0).
    """
    test_cfg = model.test_cfg or {}
    weight = float(test_cfg.get('surface_pore_weight', 1.0))
    slope = float(test_cfg.get('bulk_cb_slope', 0.0))
    share = None
    if slope:
        share = bulk_cb_share(phase_argmax(probabilities), outside_view)
        weight = max(1.0, weight - slope * share)
    return (phases_from_probabilities(probabilities, weight),
            dict(surface_pore_weight=weight, bulk_cb_share=share))


def mirror_pad_px(model):
    """The phase model's ``test_cfg.mirror_pad_px`` (0 when its config has none): the mirror padding of every slice,
    in pixels, before the model (the probabilities are cropped back). The CPU recipe's 4 was chosen on validation
    volumes, with its surface pore weight: BENCHMARKS.md."""
    return int((model.test_cfg or {}).get('mirror_pad_px', 0))


def view_edge_weights(shape_hw, ramp_px):
    """Weights of a slice's pixels in the sum over views: ``min(1, (d + 1) / ramp_px)``, ``d`` the pixels from the
    slice's nearest edge (0 on it), where the model sees the least around a pixel; all 1 for ``ramp_px`` 0 or 1. The
    CPU recipe's ``test_cfg.view_edge_ramp_px = 2`` (half weight on the edge row) was chosen on validation volumes
    (BENCHMARKS.md).

    Args:
        shape_hw (tuple[int, int]): the slice's (H, W).
        ramp_px (int): >= 0.

    Returns:
        np.ndarray: (H, W) float32 in (0, 1].
    """
    to_edge = [np.minimum(np.arange(n), np.arange(n)[::-1]) for n in shape_hw]
    distance_hw = np.minimum.outer(*to_edge)
    return np.minimum(1.0, (distance_hw + 1) / max(ramp_px, 1)).astype(np.float32)


def phase_volume_probabilities(model, image, views=('xy', 'xz', 'yz'), batch_size=1, progress=False,
                               voxel_size_nm=None):
    """Phase probabilities of a 2D slice or a 3D volume, summed over the views (each view's weighted by
    :func:`view_edge_weights` with the model's ``test_cfg.view_edge_ramp_px`` where more than one is used).

    Args:
        model: a phase model (:func:`init_phase_model`).
        image (np.ndarray): (H, W) slice or (Z, Y, X) volume, integer or floating dtype.
        views (sequence[str] | str): views of a volume whose probabilities are summed ('xy', 'xz', 'yz'; one name
            is one view, 'auto' all three); those of :func:`~libnet_mmdet.volume.views.usable_views` are used (xz
            and yz slices need :data:`~libnet_mmdet.volume.views.MIN_VIEW_SIDE` px on each side).
        batch_size (int): slices per forward pass.
        progress (bool): a tqdm bar per view.
        voxel_size_nm (float | sequence | None): the volume's voxel edges (nm, one or Z Y X): where they differ by
            more than :data:`~libnet_mmdet.volume.views.MAX_FUSION_ANISOTROPY` (thicker slices), xy alone is used
            (xz / yz slices of stretched particles gave worse phases; BENCHMARKS.md, "Phases on anisotropic
            voxels"); None: cubic voxels.

    Returns:
        tuple: ``(probabilities, details)``: float32 (3,) + ``image.shape`` weighted sums of the probabilities of the
        phase codes 0 pore, 1 NMC, 2 carbon-binder over the views used (12 bytes per voxel), and a dict with ``views``
        (the views used), ``outside_view`` (:func:`outside_view_voxels`) and, for a volume, ``intensity_range`` (the
        volume's, mapped to 0-255 for every slice).

    Raises:
        ValueError: ``image`` is not a 2D or 3D array of integers or floats, has NaN/Inf voxels
            (``ImageFormatError``), a view is unknown or repeated, or no view given is usable for the volume's shape.
        InputError: ``model`` is not a phase model, a bad ``batch_size``.
    """
    image = np.asarray(image)
    if type(model).__name__ != PHASE_MODEL_TYPE:
        raise InputError(f'model: a phase model ({PHASE_MODEL_TYPE}, init_phase_model) is needed, got '
                         f'{type(model).__name__}')
    check_int(batch_size, 'batch_size', 1)
    real = np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)
    if image.ndim not in (2, 3) or not real or image.size == 0:
        raise ValueError(f'image: expected a (H, W) slice or a (Z, Y, X) volume of integers or floats, got shape '
                         f'{image.shape}, {image.dtype}')
    check_not_colour(image.shape, 'image')
    check_finite(image, 'image')  # before any slice is segmented
    if image.ndim == 2:
        return phase_probabilities(model, [image])[0], dict(views=['xy'], outside_view=outside_view_voxels(image))
    views = VIEWS if views == 'auto' else check_view_names(views)
    used = usable_views(image.shape, views)
    if voxel_size_nm is not None and is_anisotropic(voxel_size_zyx(voxel_size_nm, 'voxel_size_nm')):
        used = [view for view in used if view == 'xy']
    if not used:
        raise ValueError(f'views {views}: none is usable for a volume of shape (Z, Y, X) = {image.shape} (xz and yz '
                         f'slices need at least {MIN_VIEW_SIDE} px on each side and cubic voxels); include xy')
    from tqdm import tqdm
    intensity_range = shared_intensity_range(model, [image[z] for z in evenly_spaced(len(image), RANGE_SLICES)])
    total = np.zeros((3,) + image.shape, np.float32)
    ramp_px = int((model.test_cfg or {}).get('view_edge_ramp_px', 0)) if len(used) > 1 else 0  # weights among views
    context = uses_context_slices(model)
    for view in used:
        axis = SLICE_AXES.index(VIEW_AXIS[view])
        summed = np.moveaxis(total, axis + 1, 1)  # (3, slices, H, W) view of total
        weights_hw = view_edge_weights(summed.shape[2:], ramp_px)
        for first in tqdm(range(0, image.shape[axis], batch_size), desc=f'phases {view}', disable=not progress):
            indices = range(first, min(first + batch_size, image.shape[axis]))
            slices = (context_stacks(np.moveaxis(image, axis, 0), indices) if context
                      else [np.take(image, i, axis=axis) for i in indices])
            probabilities = phase_probabilities(model, slices, batch_size, intensity_range)
            for i, probs_chw in zip(indices, probabilities):
                summed[:, i] += probs_chw * weights_hw
    return total, dict(views=used, outside_view=outside_view_voxels(image), intensity_range=intensity_range)


def predict_phases(model, image, views=('xy', 'xz', 'yz'), batch_size=1, progress=False, voxel_size_nm=None):
    """Phases of a 2D slice or a 3D volume: :func:`phase_volume_probabilities`, then :func:`model_phases`.

    Args:
        model: a phase model (:func:`init_phase_model`).
        image (np.ndarray): (H, W) slice or (Z, Y, X) volume, integer or floating dtype.
        views (sequence[str] | str): views of a volume whose probabilities are summed ('xy', 'xz', 'yz'; 'auto':
            every usable one), as :func:`phase_volume_probabilities`.
        batch_size (int): slices per forward pass.
        progress (bool): a tqdm bar per view, and a line with the weight used on stderr (``phases: pore weight
            next to particles 2.03 (bulk carbon-binder share 0.30)``).
        voxel_size_nm (float | sequence | None): as :func:`phase_volume_probabilities` (anisotropic voxels: xy
            alone).

    Returns:
        tuple: ``(phases, details)``: uint8 phases of ``image``'s shape (0 pore, 1 NMC, 2 carbon-binder) and the
        details of :func:`phase_volume_probabilities` (but ``outside_view``) with those of :func:`model_phases`
        (``surface_pore_weight``, ``bulk_cb_share``, the share left without the voxels outside the field of view).
        Peak memory: 12 bytes per voxel for the summed probabilities and a few more while the phases are taken
        from them (17 in all, the phases included, measured with tracemalloc on a 40 x 96 x 96 volume).

    Raises:
        ValueError / InputError: as :func:`phase_volume_probabilities`.
    """
    probabilities, details = phase_volume_probabilities(model, image, views, batch_size, progress, voxel_size_nm)
    phases, weight_details = model_phases(model, probabilities, details.pop('outside_view'))
    if progress:
        share = weight_details['bulk_cb_share']
        print(f"phases: pore weight next to particles {weight_details['surface_pore_weight']:.2f}"
              + ('' if share is None else f' (bulk carbon-binder share {share:.2f})'), file=sys.stderr)
    return phases, dict(details, **weight_details)
