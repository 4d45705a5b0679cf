"""The proposal budget (issue 18, per-slice speed): RPN proposals and detections per forward pass follow the image
area and the trained particle size, never above the config, passed per call without changing the config; masks
only for detections that reach the score threshold, with the same labels. Untrained CPU-tiny detectors."""
import copy

import numpy as np
import pytest
import torch

from helpers import TINY_CONFIG, draw_disc_image
from libnet_mmdet.apis import init_segmenter, segment_image
from libnet_mmdet.apis import inference
from libnet_mmdet.apis.model import (BUDGET_DETECTIONS_PER_PARTICLE, BUDGET_MIN_PARTICLES, proposal_budget,
                                     temporary_test_cfg)
from libnet_mmdet.volume.testing import IntensityPredictor


@pytest.fixture(scope='module')
def untrained():
    """The CPU-tiny detector, random weights (seeded), config test settings (2000 proposals, 500 detections)."""
    torch.manual_seed(0)
    return init_segmenter(str(TINY_CONFIG), None, device='cpu')


def limits(budget):
    return budget['rpn']['max_per_img'], budget['rcnn']['max_per_img']


def test_budget_grows_with_the_area_up_to_the_config(untrained):
    areas = [16 ** 2, 64 ** 2, 128 ** 2, 192 ** 2, 256 ** 2, 512 ** 2, 4096 ** 2]
    budgets = [limits(proposal_budget(untrained, area)) for area in areas]
    for smaller, larger in zip(budgets, budgets[1:]):
        assert all(a <= b for a, b in zip(smaller, larger))  # monotone in the area
    assert budgets[0][1] == BUDGET_DETECTIONS_PER_PARTICLE * BUDGET_MIN_PARTICLES  # small tiles: the floor
    assert budgets[0][0] > budgets[0][1] > 0  # more proposals than detections
    assert budgets[-1] == (2000, 500)  # bounded by the config's test_cfg
    assert budgets[3] < budgets[-1]  # a 192 px slice of the demo needs far fewer than the worst case


def test_budget_follows_the_trained_diameters_and_a_lower_config(untrained):
    area = 128 ** 2
    small, large = (init_segmenter(str(TINY_CONFIG), None, device='cpu', cfg_options={'particle_diameter_px': d})
                    for d in ((8, 32), (32, 128)))  # default without: 16 px
    assert limits(proposal_budget(small, area)) > limits(proposal_budget(untrained, area)) > \
        limits(proposal_budget(large, area))
    lowered = init_segmenter(str(TINY_CONFIG), None, device='cpu', cfg_options={
        'model.test_cfg.rpn.max_per_img': 50, 'model.test_cfg.rcnn.max_per_img': 10})
    assert limits(proposal_budget(lowered, 512 ** 2)) == (50, 10)  # never above the config's limits
    assert proposal_budget(IntensityPredictor(), area) is None  # a predictor has no proposals


def test_temporary_settings_are_restored_and_the_config_is_untouched(untrained):
    heads = untrained.rpn_head, untrained.roi_head
    before = [head.test_cfg for head in heads]
    values = [copy.deepcopy(cfg) for cfg in before]
    config_text = untrained.cfg.pretty_text
    budget = proposal_budget(untrained, 64 ** 2)
    with temporary_test_cfg(untrained, budget):
        assert untrained.rpn_head.test_cfg.max_per_img == budget['rpn']['max_per_img']
        assert untrained.roi_head.test_cfg.max_per_img == budget['rcnn']['max_per_img']
        assert untrained.roi_head.test_cfg.nms == values[1].nms  # the rest kept
    with pytest.raises(RuntimeError), temporary_test_cfg(untrained, budget):
        raise RuntimeError('a failing forward pass')
    assert all(head.test_cfg is cfg and cfg == value for head, cfg, value in zip(heads, before, values))
    assert untrained.cfg.pretty_text == config_text


def test_each_forward_pass_gets_the_budget_of_its_image(untrained, monkeypatch):
    """Tiled or not, every forward pass runs with the budget of its own image size (as the model sees it), and
    the config's settings are back afterwards."""
    seen = []
    test_step = untrained.test_step

    def recording(batch):
        seen.append((tuple(batch['inputs'][0].shape[1:]), untrained.rpn_head.test_cfg.max_per_img,
                     untrained.roi_head.test_cfg.max_per_img))
        return test_step(batch)
    monkeypatch.setattr(untrained, 'test_step', recording)
    image = np.random.default_rng(0).integers(0, 255, (96, 96), dtype=np.uint8)
    segment_image(untrained, image, tile_size=64, overlap=16)
    segment_image(untrained, image, tile_size=None, scale=0.5)
    expected = [limits(proposal_budget(untrained, 64 * 64))] * 4 + [limits(proposal_budget(untrained, 48 * 48))]
    assert [s[1:] for s in seen] == expected and [s[0] for s in seen] == [(64, 64)] * 4 + [(48, 48)]
    seen.clear()
    segment_image(untrained, image, tile_size=None, proposals='config')
    assert seen == [((96, 96), 2000, 500)]
    assert untrained.rpn_head.test_cfg.max_per_img == 2000 and untrained.roi_head.test_cfg.max_per_img == 500
    with pytest.raises(ValueError, match='proposals must be one of'):
        segment_image(untrained, image, proposals='none')


def test_score_gate_keeps_the_labels(untrained, monkeypatch):
    """Masks only for detections >= score_thr (the RoI head's score_thr raised): the same labels as the config's
    settings give, for an untrained model whose scores sit around the threshold."""
    image, _ = draw_disc_image(np.random.default_rng(1), size=96, n_discs=4)
    for score_thr in (0.45, 0.5):
        gated = segment_image(untrained, image, score_thr=score_thr, tile_size=None, proposals='config')
        assert inference.forward_test_cfg(untrained, 96 * 96, score_thr, 'config')['rcnn']['score_thr'] > 0.05
        with monkeypatch.context() as patch:
            patch.setattr(inference, 'forward_test_cfg', lambda *args: {})  # the config's settings as they are
            stock = segment_image(untrained, image, score_thr=score_thr, tile_size=None)
        assert gated[0].max() > 0
        np.testing.assert_array_equal(gated[0], stock[0])
        np.testing.assert_array_equal(gated[1]['scores'], stock[1]['scores'])


def test_objectness_floor_filters_proposals_and_is_removed_after(untrained):
    """rpn.min_objectness: only proposals at or above it reach the RoI heads (none above 1: empty labels, no
    error); nested calls restore the enclosing floor, and the head's own method is back at the end."""
    image = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    rois = []
    hook = untrained.roi_head.bbox_roi_extractor.register_forward_hook(
        lambda module, inputs, output: rois.append(len(inputs[1])))
    try:
        segment_image(untrained, image, tile_size=None, proposals='config')
        with temporary_test_cfg(untrained, dict(rpn=dict(min_objectness=0.5))):
            segment_image(untrained, image, tile_size=None, proposals='config')
            with temporary_test_cfg(untrained, dict(rpn=dict(min_objectness=1.01))):
                labels, details = segment_image(untrained, image, tile_size=None, proposals='config')
            assert labels.max() == 0 and details['scores'].size == 0
            segment_image(untrained, image, tile_size=None, proposals='config')
    finally:
        hook.remove()
    assert rois[0] > rois[1] > 0 and rois[1] == rois[2]  # the 0.5 floor drops some, and is back after the 1.01
    assert 'predict_by_feat' not in vars(untrained.rpn_head)
