"""Shape-aware mask loss for Mask R-CNN: NMC particles are compact, star-convex, filled bodies.

All geometry (void filling, exact distance transforms, ray profiles) is computed on the *target* in torch, without
gradient, on the device of the logits, in a fixed number of batched tensor operations (no data-dependent loops), so
the loss adds no host round trip. Everything runs in float32 with autocast off, so mixed-precision training
(fp16/bf16 logits) is safe.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS

from ...io.errors import check_int, check_number

# Ties between equally deep pixels are broken towards the mask centroid by this many depth units per pixel.
_CENTRE_TIE_BREAK = 1e-3
# Squared distance standing for "no such pixel in the RoI" (far beyond any 28x28 or 56x56 mask).
_FAR = 1e8


def squared_distance_to(masks):
    """Exact squared Euclidean distance from every pixel to the nearest pixel where ``masks`` is 1.

    Two separable min-plus passes (along rows, then along columns) over broadcast (N, H, W, W) and (N, H, H, W)
    tensors: a handful of tensor operations, no Python loop, exact for any mask.

    Args:
        masks (Tensor): (N, H, W) 0/1 float maps.

    Returns:
        Tensor: (N, H, W) float, squared distance in pixels² (0 on the mask); ``_FAR`` where the map has no
        pixel set. Pixels beyond the RoI border do not count: a mask cut by the border is not bounded there.
    """
    h, w = masks.shape[-2:]
    rows = torch.arange(h, device=masks.device, dtype=masks.dtype)
    cols = torch.arange(w, device=masks.device, dtype=masks.dtype)
    cost = torch.where(masks > 0, 0.0, _FAR)[:, :, None, :]  # (N, H, 1, W): the pixels to reach
    along_rows = (cost + (cols[:, None] - cols[None, :]) ** 2).amin(-1)  # (N, H, W)
    return (along_rows[:, None] + ((rows[:, None] - rows[None, :]) ** 2)[:, :, None]).amin(2).clamp(max=_FAR)


def inside_depth(masks):
    """Euclidean depth of every foreground pixel: its distance to the nearest background pixel of the RoI.

    Args:
        masks (Tensor): (N, H, W) 0/1 float maps.

    Returns:
        Tensor: (N, H, W) float, 0 on background, 1 on the mask's outermost pixels (sqrt(2) at a diagonal step),
        growing inwards; at most hypot(H, W) (a RoI without background). The RoI border is not a boundary
        (the particle continues beyond it).
    """
    limit = math.hypot(*masks.shape[-2:])
    return torch.where(masks > 0, squared_distance_to(1 - masks).sqrt().clamp(max=limit), 0.0)


def fill_enclosed(masks):
    """Fill what a particle encloses: background pixels with mask pixels on all four sides along their row and column.

    Fills hollow cores and internal cracks (every topological hole, as ``scipy.ndimage.binary_fill_holes``) and
    also cracks and notches that reach the outline, as an annotator's outline would, unless they run straight
    along a row or column out of the particle; the open side of a C- or U-shaped bay stays background. Four running
    maxima, no loop.

    Args:
        masks (Tensor): (N, H, W) 0/1 float maps.

    Returns:
        Tensor: (N, H, W) 0/1 float maps, ``masks`` plus the enclosed background.
    """
    def from_start(maps, dim):
        return maps.cummax(dim).values

    def from_end(maps, dim):
        return maps.flip(dim).cummax(dim).values.flip(dim)

    return torch.minimum(torch.minimum(from_start(masks, -1), from_end(masks, -1)),
                         torch.minimum(from_start(masks, -2), from_end(masks, -2)))


def star_centres(masks, depth):
    """The centre each mask's rays start from: its deepest pixel (nearest the centroid among equals).

    Always a foreground pixel, unlike the centroid of a crescent or of a particle cut by the RoI border.

    Args:
        masks (Tensor): (N, H, W) 0/1 float maps.
        depth (Tensor): (N, H, W) :func:`inside_depth` of ``masks``.

    Returns:
        Tensor: (N, 2) float (row, col) pixel indices; (0, 0) for an empty mask.
    """
    _, h, w = masks.shape
    rows = torch.arange(h, device=masks.device, dtype=masks.dtype)[:, None].expand(h, w)
    cols = torch.arange(w, device=masks.device, dtype=masks.dtype)[None, :].expand(h, w)
    mass = masks.sum((1, 2)).clamp(min=1)
    centroid_row = (masks * rows).sum((1, 2)) / mass
    centroid_col = (masks * cols).sum((1, 2)) / mass
    off_centre = torch.hypot(rows - centroid_row[:, None, None], cols - centroid_col[:, None, None])
    score = torch.where(masks > 0, depth - _CENTRE_TIE_BREAK * off_centre, torch.full_like(depth, -math.inf))
    index = score.flatten(1).argmax(1)
    return torch.stack([torch.div(index, w, rounding_mode='floor'), index % w], 1).to(masks.dtype)


def ray_profiles(maps, centres, num_rays, step):
    """Bilinear samples of maps along ``num_rays`` equi-angular rays from each centre, out past the map corners.

    Args:
        maps (Tensor): (N, C, H, W) float maps; zero is assumed outside.
        centres (Tensor): (N, 2) (row, col) pixel coordinates of the ray origins.
        num_rays (int): rays per map.
        step (float): spacing of the samples along a ray (pixels).

    Returns:
        Tensor: (N, C, num_rays, R) samples, R = ceil(hypot(H, W) / step) + 1, the first at the centre.
    """
    h, w = maps.shape[-2:]
    angles = torch.arange(num_rays, device=maps.device, dtype=maps.dtype) * (2 * math.pi / num_rays)
    radii = torch.arange(math.ceil(math.hypot(h, w) / step) + 1, device=maps.device, dtype=maps.dtype) * step
    rows = centres[:, 0, None, None] + torch.sin(angles)[None, :, None] * radii[None, None, :]
    cols = centres[:, 1, None, None] + torch.cos(angles)[None, :, None] * radii[None, None, :]
    grid = torch.stack([(2 * cols + 1) / w - 1, (2 * rows + 1) / h - 1], -1)  # (x, y), align_corners=False
    return F.grid_sample(maps, grid, mode='bilinear', padding_mode='zeros', align_corners=False)


def _rise_along_rays(profiles):
    """How far each sample lies above the lowest value between it and the ray origin (0 for a monotone ray)."""
    return profiles - torch.cummin(profiles, dim=-1).values


def shape_aware_mask_loss_terms(logits, targets, boundary_weight=2.0, boundary_sigma=1.5, num_rays=32,
                                ray_step=0.5, fill_target_holes=True):
    """The unweighted terms of :class:`ShapeAwareMaskLoss`, one value per RoI (see its docstring for the formulas).

    Args:
        logits (Tensor): (N, H, W) mask logits of each RoI's class (any float dtype; computed in float32).
        targets (Tensor): (N, H, W) mask targets in [0, 1].
        boundary_weight, boundary_sigma, num_rays, ray_step, fill_target_holes: see :class:`ShapeAwareMaskLoss`.

    Returns:
        dict[str, Tensor]: ``bce``, ``dice``, ``star``, ``fill``, each (N,) float32.
    """
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits = logits.float()
        targets = targets.float()
        with torch.no_grad():
            binary = (targets > 0.5).float()
            filled = fill_enclosed(binary) if fill_target_holes else binary
            targets = torch.maximum(targets, filled)  # above 0.5 or enclosed: 1; other soft targets kept
            depth = inside_depth(filled)
            outside = inside_depth(1 - filled)  # distance of a background pixel to the particle
            boundary = 1 + boundary_weight * torch.exp(-(depth + outside - 1) ** 2 / (2 * boundary_sigma ** 2))
            centres = star_centres(filled, depth)
            target_rays = ray_profiles(targets[:, None], centres, num_rays, ray_step)[:, 0]
            target_rise = _rise_along_rays(target_rays)
            has_target = filled.flatten(1).any(1).float()

        probs = logits.sigmoid()
        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction='none')
        region = (boundary * bce).mean((1, 2))
        dice = 1 - (2 * (probs * targets).sum((1, 2)) + 1) / (probs.sum((1, 2)) + targets.sum((1, 2)) + 1)
        pred_rise = _rise_along_rays(ray_profiles(probs[:, None], centres, num_rays, ray_step)[:, 0])
        star = has_target * F.relu(pred_rise - target_rise).sum((1, 2)) / target_rays.sum((1, 2)).clamp(min=1)
        fill = (depth * F.softplus(-logits)).sum((1, 2)) / depth.sum((1, 2)).clamp(min=1)
    return dict(bce=region, dice=dice, star=star, fill=fill)


@MODELS.register_module()
class ShapeAwareMaskLoss(nn.Module):
    r"""Mask loss for compact, star-convex, filled particles; a drop-in ``roi_head.mask_head.loss_mask``.

    Called as mmdet's ``FCNMaskHead`` calls its mask loss: ``loss(pred, target, label)`` with ``pred`` the
    (N, C, H, W) mask logits, ``target`` the (N, H, W) mask targets of the N positive RoIs and ``label`` their (N,)
    classes (zeros for a class-agnostic head), which select the channel scored. Per RoI, with :math:`x` the logits
    of its class, :math:`p = \sigma(x)`, and :math:`\bar t` the target with what the particle encloses filled
    (``fill_target_holes``, :func:`fill_enclosed`: a hollow or cracked particle is still one filled body, as the
    ground truth here is drawn), the loss is

    .. math::
        L = \lambda\,(w_{bce} L_{bce} + w_{dice} L_{dice} + w_{star} L_{star} + w_{fill} L_{fill})

    - **region, boundary-weighted BCE** (``bce_weight`` :math:`w_{bce}` = 1.0):
      :math:`L_{bce} = \mathrm{mean}_i\, b_i\,\mathrm{BCE}(x_i, \bar t_i)`, with boundary weights
      :math:`b_i = 1 + \alpha \exp(-(|s_i| - 1)^2 / 2\sigma^2)` from the target's signed distance :math:`s`
      (:math:`s` = inside depth - outside depth, :func:`inside_depth` of :math:`\bar t` and of its complement;
      :math:`|s| = 1` on the pixels either side of the outline; ``boundary_weight`` :math:`\alpha` = 2.0,
      ``boundary_sigma`` :math:`\sigma` = 1.5 px). With :math:`\alpha = 0` it is mmdet's mask BCE.
    - **region, soft Dice** (``dice_weight`` = 0.5):
      :math:`L_{dice} = 1 - (2\sum p\bar t + 1) / (\sum p + \sum \bar t + 1)`.
    - **star-convexity** (``star_weight`` = 0.5): along ``num_rays`` (32) rays from the target's centre (its
      deepest pixel) sampled every ``ray_step`` (0.5) px, the probability must not rise again once it has fallen:
      with :math:`r(f)_j = f_j - \min_{k \le j} f_k` the rise of a ray profile above its running minimum,
      :math:`L_{star} = \sum_{rays, j} \max(0, r(p)_j - r(\bar t)_j) / \sum_{rays, j} \bar t_j`
      (only rises the target itself does not have are penalised; 0 for an empty target). A ring predicted for a
      disc rises from its dark centre and pays; the gradient also lifts the dip.
    - **fill** (``fill_weight`` = 0.5): the interior is foreground, the deeper the surer:
      :math:`L_{fill} = \sum_i d_i\,\mathrm{softplus}(-x_i) / \sum_i d_i` with :math:`d` the depth of
      :math:`\bar t` (1 on its outer pixel ring, growing inwards, 0 outside), so a hollow core or a crack left
      open deep inside a particle costs most.

    Perfect logits give (near) zero for every term on a particle that fills much of its RoI; the Dice term's +1
    smoothing keeps it far from zero on an empty or tiny target (an empty 28 x 28 target at logits -5: 0.84), so
    such rare RoIs push their background logits further down than the other terms would. Geometry comes from the
    target only (no gradient), in torch on the logits' device; the loss is computed in float32 with autocast off
    (AMP-safe). Zero RoIs give a zero loss that keeps the graph.

    Args:
        bce_weight (float): :math:`w_{bce}`.
        dice_weight (float): :math:`w_{dice}`.
        star_weight (float): :math:`w_{star}`.
        fill_weight (float): :math:`w_{fill}`.
        boundary_weight (float): :math:`\alpha`, extra BCE weight on the outline (0 = plain BCE).
        boundary_sigma (float): :math:`\sigma`, width of the boundary band (pixels of the 28x28 RoI mask).
        num_rays (int): rays of the star-convexity term.
        ray_step (float): sample spacing along the rays (pixels).
        fill_target_holes (bool): fill the enclosed voids of the target (:func:`fill_enclosed`) before scoring (all
            terms).
        reduction (str): ``'mean'`` (over RoIs, as mmdet's mask BCE), ``'sum'`` or ``'none'`` (per RoI).
        loss_weight (float): :math:`\lambda`.
    """

    def __init__(self, bce_weight=1.0, dice_weight=0.5, star_weight=0.5, fill_weight=0.5, boundary_weight=2.0,
                 boundary_sigma=1.5, num_rays=32, ray_step=0.5, fill_target_holes=True, reduction='mean',
                 loss_weight=1.0):
        super().__init__()
        for name, value in (('bce_weight', bce_weight), ('dice_weight', dice_weight), ('star_weight', star_weight),
                            ('fill_weight', fill_weight), ('boundary_weight', boundary_weight),
                            ('loss_weight', loss_weight)):
            check_number(value, f'ShapeAwareMaskLoss: {name}')
        check_number(boundary_sigma, 'ShapeAwareMaskLoss: boundary_sigma', low_open=True)
        check_int(num_rays, 'ShapeAwareMaskLoss: num_rays', 4)
        check_number(ray_step, 'ShapeAwareMaskLoss: ray_step', low_open=True)
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f"ShapeAwareMaskLoss: reduction={reduction!r} is invalid: expected 'none', 'mean' "
                             f"or 'sum'")
        self.term_weights = dict(bce=bce_weight, dice=dice_weight, star=star_weight, fill=fill_weight)
        self.geometry = dict(boundary_weight=boundary_weight, boundary_sigma=boundary_sigma, num_rays=num_rays,
                             ray_step=ray_step, fill_target_holes=fill_target_holes)
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, pred, target, label, weight=None, avg_factor=None, reduction_override=None, **kwargs):
        """Loss of the positive RoIs' masks.

        Args:
            pred (Tensor): (N, C, H, W) mask logits.
            target (Tensor): (N, H, W) mask targets in [0, 1].
            label (Tensor): (N,) long, the class channel of ``pred`` to score per RoI.
            weight (Tensor, optional): (N,) per-RoI weights.
            avg_factor (float, optional): divide the summed loss by this instead of N (``'mean'`` only).
            reduction_override (str, optional): ``'none'``, ``'mean'`` or ``'sum'``.

        Returns:
            Tensor: float32 scalar, or (N,) for ``'none'``.
        """
        reduction = reduction_override or self.reduction
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f'ShapeAwareMaskLoss: reduction_override={reduction_override!r} is invalid')
        if pred.dim() != 4 or target.shape != (pred.shape[0], *pred.shape[2:]) or label.shape != pred.shape[:1]:
            raise ValueError(f'ShapeAwareMaskLoss: expected pred (N, C, H, W), target (N, H, W) and label (N,), '
                             f'got pred {tuple(pred.shape)}, target {tuple(target.shape)}, '
                             f'label {tuple(label.shape)}')
        if pred.shape[0] == 0:
            per_roi = pred.float().flatten(1).sum(1) * 0  # (0,), keeps the graph
            return per_roi if reduction == 'none' else per_roi.sum()
        logits = pred[torch.arange(pred.shape[0], device=pred.device), label.long()]
        terms = shape_aware_mask_loss_terms(logits, target, **self.geometry)
        per_roi = sum(self.term_weights[name] * value for name, value in terms.items())
        if weight is not None:
            weight = weight.float()
        return self.loss_weight * weight_reduce_loss(per_roi, weight, reduction, avg_factor)
