"""ShapeAwareMaskLoss: registration, the FCNMaskHead call, shape terms, gradients, empty input, half precision."""
import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.draw import disk

from mmdet.models.losses import CrossEntropyLoss
from mmdet.registry import MODELS

from libnet_mmdet.models.losses import ShapeAwareMaskLoss, fill_enclosed, inside_depth, shape_aware_mask_loss_terms

SIZE = 28  # mmdet's RoI mask size


def disc(radius, centre=(14, 14), hole=0):
    """A (28, 28) float32 disc, with a concentric hole of radius ``hole``."""
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[disk(centre, radius, shape=mask.shape)] = 1
    if hole:
        mask[disk(centre, hole, shape=mask.shape)] = 0
    return torch.from_numpy(mask)


def perfect_logits(mask, scale=20.0):
    return (2 * mask - 1) * scale


def terms(logits, target, **kwargs):
    return {name: value.item() for name, value in shape_aware_mask_loss_terms(logits[None], target[None],
                                                                              **kwargs).items()}


def test_registered_and_built_from_config():
    loss = MODELS.build(dict(type='ShapeAwareMaskLoss', star_weight=1.0, loss_weight=2.0))
    assert isinstance(loss, ShapeAwareMaskLoss)
    assert loss.term_weights['star'] == 1.0 and loss.loss_weight == 2.0


@pytest.mark.parametrize('target', [
    disc(10),  # a particle inside the RoI
    disc(12, centre=(20, 3)),  # a particle cut by the RoI border
    torch.maximum(disc(9, centre=(10, 10)), disc(7, centre=(20, 19))),  # two touching lobes: not star-convex
], ids=['disc', 'cut-by-border', 'two-lobes'])
def test_perfect_logits_give_near_zero_terms(target):
    for name, value in terms(perfect_logits(target), target).items():
        assert 0 <= value < 1e-6, name


def test_perfect_logits_of_a_hollow_target_are_near_zero_when_holes_are_kept():
    ring = disc(10, hole=5)
    for name, value in terms(perfect_logits(ring), ring, fill_target_holes=False).items():
        assert value < 1e-6, name
    filled = terms(perfect_logits(ring), ring)  # by default the hole is particle: predicting it open costs
    assert filled['fill'] > 1 and filled['star'] > 0.1


def test_ring_prediction_of_a_disc_costs_more_than_under_bce():
    target = disc(10)
    ring_logits = perfect_logits(disc(10, hole=5), scale=4.0)[None, None].requires_grad_()
    label = torch.zeros(1, dtype=torch.long)
    bce = CrossEntropyLoss(use_mask=True)(ring_logits, target[None], label)
    shape_aware = ShapeAwareMaskLoss()(ring_logits, target[None], label)
    assert shape_aware.item() > 1.5 * bce.item()
    ring_terms = terms(ring_logits[0, 0].detach(), target)
    assert ring_terms['star'] > 0.1 and ring_terms['fill'] > 1.0


def test_shape_terms_punish_a_hole_more_than_the_same_error_on_the_outline():
    """Same number of wrong pixels: an open core (ring) versus a shrunken outline (a smaller disc)."""
    target = disc(10)
    ring, shrunk = disc(10, hole=4), disc(9)
    assert abs(int((target - ring).sum()) - int((target - shrunk).sum())) <= 15  # comparable pixel errors
    ring_terms, shrunk_terms = terms(perfect_logits(ring, 4.0), target), terms(perfect_logits(shrunk, 4.0), target)
    assert shrunk_terms['star'] < 1e-3 < ring_terms['star']  # the smaller disc is still star-convex
    assert ring_terms['fill'] > 2 * shrunk_terms['fill']  # the hole sits deep inside


def test_without_shape_terms_it_is_mmdet_mask_bce():
    generator = torch.Generator().manual_seed(0)
    pred = torch.randn(6, 3, SIZE, SIZE, generator=generator) * 3
    target = (torch.rand(6, SIZE, SIZE, generator=generator) > 0.5).float()
    label = torch.tensor([0, 1, 2, 2, 1, 0])
    plain = ShapeAwareMaskLoss(dice_weight=0, star_weight=0, fill_weight=0, boundary_weight=0,
                               fill_target_holes=False)
    expected = CrossEntropyLoss(use_mask=True)(pred, target, label)
    torch.testing.assert_close(plain(pred, target, label), expected.squeeze())


def test_gradients_are_finite_and_reach_only_the_labelled_class():
    generator = torch.Generator().manual_seed(1)
    pred = (torch.randn(5, 2, SIZE, SIZE, generator=generator) * 30).requires_grad_()  # saturated logits too
    target = torch.stack([disc(10), disc(8, hole=4), torch.zeros(SIZE, SIZE), disc(12, centre=(20, 3)),
                          (torch.rand(SIZE, SIZE, generator=generator) > 0.5).float()])
    label = torch.tensor([1, 0, 1, 0, 1])
    loss = ShapeAwareMaskLoss(dice_weight=1, star_weight=1, fill_weight=1)(pred, target, label)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
    assert pred.grad[torch.arange(5), label].abs().sum() > 0
    assert pred.grad[torch.arange(5), 1 - label].abs().sum() == 0


@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
def test_zero_positive_rois(reduction):
    pred = torch.zeros(0, 1, SIZE, SIZE, requires_grad=True)
    loss = ShapeAwareMaskLoss(reduction=reduction)(pred, torch.zeros(0, SIZE, SIZE), torch.zeros(0, dtype=torch.long))
    assert loss.numel() == (0 if reduction == 'none' else 1) and float(loss.detach().sum()) == 0
    loss.sum().backward()
    assert pred.grad is not None and pred.grad.shape == pred.shape


def test_half_precision_and_autocast():
    target = torch.stack([disc(10), disc(8, hole=4)])
    label = torch.zeros(2, dtype=torch.long)
    ring = perfect_logits(disc(10, hole=5), 8.0)
    pred_half = torch.stack([ring, ring])[:, None].half().requires_grad_()
    loss = ShapeAwareMaskLoss()(pred_half, target.half(), label)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert pred_half.grad.dtype == torch.float16 and torch.isfinite(pred_half.grad).all()
    reference = ShapeAwareMaskLoss()(pred_half.detach().float(), target, label)
    torch.testing.assert_close(loss, reference, rtol=1e-3, atol=1e-3)
    pred = torch.stack([ring, ring])[:, None].requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = ShapeAwareMaskLoss()(pred, target, label)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(pred.grad).all()
    torch.testing.assert_close(loss, reference, rtol=1e-3, atol=1e-3)


def test_weights_reduction_and_avg_factor():
    target = torch.stack([disc(10), disc(6)])
    pred = torch.stack([perfect_logits(disc(10, hole=5), 4.0), perfect_logits(disc(6), 1.0)])[:, None]
    label = torch.zeros(2, dtype=torch.long)
    loss = ShapeAwareMaskLoss()
    per_roi = loss(pred, target, label, reduction_override='none')
    assert per_roi.shape == (2,) and per_roi[0] > per_roi[1] > 0
    torch.testing.assert_close(loss(pred, target, label), per_roi.mean())
    torch.testing.assert_close(loss(pred, target, label, weight=torch.tensor([0.0, 1.0]), avg_factor=1.0),
                               per_roi[1])
    torch.testing.assert_close(ShapeAwareMaskLoss(loss_weight=3.0)(pred, target, label, reduction_override='sum'),
                               3 * per_roi.sum())


def test_bad_input_is_named():
    loss = ShapeAwareMaskLoss()
    with pytest.raises(ValueError, match=r'target \(N, H, W\).*target \(2, 14, 14\)'):
        loss(torch.zeros(2, 1, SIZE, SIZE), torch.zeros(2, 14, 14), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match='ShapeAwareMaskLoss: star_weight must be a number >= 0, got -1'):
        ShapeAwareMaskLoss(star_weight=-1)
    with pytest.raises(ValueError, match="reduction='avg'"):
        ShapeAwareMaskLoss(reduction='avg')


def test_fill_enclosed_fills_holes_and_cracks_but_not_open_bays():
    rng = np.random.default_rng(0)
    masks = rng.random((8, SIZE, SIZE)) > 0.45
    filled = fill_enclosed(torch.from_numpy(masks).float()).numpy() > 0.5
    for index, mask in enumerate(masks):  # every topological hole is filled, nothing is lost
        assert np.all(filled[index] >= ndimage.binary_fill_holes(mask)), index
    crack = torch.from_numpy(~np.eye(SIZE, dtype=bool)[::-1].copy()).float()  # an anti-diagonal line
    u_shape = disc(10)
    u_shape[:15, 11:18] = 0  # a bay open to the top
    notch = disc(12, centre=(20, 3), hole=4)  # a void open to the RoI border: what lies beyond is unknown
    inputs = torch.stack([disc(10, hole=5), disc(10) * crack, u_shape, notch])
    ring, cracked, bay, border = fill_enclosed(inputs)
    assert torch.equal(ring, disc(10))
    assert torch.all(cracked >= inputs[1]) and (disc(10) - cracked).sum() <= 2  # all but the crack's mouth pixels
    assert (disc(10) - inputs[1]).sum() >= 14  # the crack crosses the whole disc
    assert torch.equal(bay, u_shape)
    assert torch.all(border >= notch) and not border[18:23, :3].any()  # where the void meets the border it stays


def test_inside_depth_is_the_euclidean_distance_to_background():
    rng = np.random.default_rng(1)
    masks = np.concatenate([rng.random((4, SIZE, SIZE)) > 0.3,
                            np.stack([disc(11).numpy(), disc(12, centre=(20, 3)).numpy()]) > 0])
    depth = inside_depth(torch.from_numpy(masks).float()).numpy()
    for index, mask in enumerate(masks):  # scipy: the RoI border is no boundary either
        np.testing.assert_allclose(depth[index], ndimage.distance_transform_edt(mask), atol=1e-4)
