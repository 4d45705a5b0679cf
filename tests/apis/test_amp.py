"""Mixed-precision inference (issue 18, ``--amp``): the backbone and neck run under autocast (bfloat16 on the CPU,
where this is tested; float16 on a GPU), the heads get float32 features, the setting is part of the config (so a
resumed volume run never mixes the two), and the labels stay those of full precision up to rounding."""
import numpy as np
import pytest
import torch

from helpers import TINY_CONFIG, draw_disc_image
from libnet_mmdet.apis import init_segmenter, segment_image
from libnet_mmdet.apis.model import mixed_precision, model_fingerprint, uses_amp
from libnet_mmdet.evaluation import match_instances


@pytest.fixture(scope='module')
def pair(trained_tiny):
    """The 1-epoch CPU-tiny model loaded twice, in full and in mixed precision (same weights)."""
    config, checkpoint = trained_tiny
    return (init_segmenter(str(config), str(checkpoint), device='cpu'),
            init_segmenter(str(config), str(checkpoint), device='cpu', amp=True))


def record_dtypes(model):
    """Hooks recording the dtype of the backbone's first output and of the RPN head's first input."""
    seen = {}

    def recorder(name, tensor_of):
        def hook(module, inputs, output):  # returns None: the output is left as it is
            seen.setdefault(name, tensor_of(inputs, output).dtype)
        return hook
    hooks = [model.backbone.register_forward_hook(recorder('backbone', lambda inputs, output: output[0])),
             model.rpn_head.register_forward_hook(recorder('rpn', lambda inputs, output: inputs[0][0]))]
    return seen, hooks


def test_amp_is_recorded_in_the_config_and_the_fingerprint():
    torch.manual_seed(0)
    plain = init_segmenter(str(TINY_CONFIG), None, device='cpu')
    torch.manual_seed(0)
    mixed = init_segmenter(str(TINY_CONFIG), None, device='cpu', amp=True)
    assert not uses_amp(plain) and uses_amp(mixed) and mixed.cfg.test_cfg.fp16 is True
    assert model_fingerprint(plain) != model_fingerprint(mixed)  # a work folder of one is not resumed by the other
    torch.manual_seed(0)
    assert model_fingerprint(init_segmenter(str(TINY_CONFIG), None, device='cpu')) == model_fingerprint(plain)
    torch.manual_seed(0)
    assert uses_amp(init_segmenter(str(TINY_CONFIG), None, device='cpu', cfg_options={'test_cfg.fp16': True}))


def test_features_in_mixed_precision_heads_in_float32_labels_as_full_precision(pair):
    plain, mixed = pair
    image, truth = draw_disc_image(np.random.default_rng(3), size=128, n_discs=8)
    seen, hooks = record_dtypes(mixed)
    try:
        labels_mixed, details_mixed = segment_image(mixed, image, tile_size=None)
    finally:
        for hook in hooks:
            hook.remove()
    assert seen == {'backbone': torch.bfloat16, 'rpn': torch.float32}
    assert 'extract_feat' not in vars(mixed)  # the class's method is back
    labels_plain, _ = segment_image(plain, image, tile_size=None)
    assert labels_plain.max() >= 4  # the comparison below is about particles, not empty images
    matched = match_instances(labels_plain, labels_mixed, thresholds=0.8)
    assert matched['f1'].iloc[0] >= 0.9, matched
    assert details_mixed['scores'].dtype == np.float32


def test_plain_models_and_nested_calls_are_left_alone(pair):
    plain, mixed = pair
    with mixed_precision(plain):
        assert 'extract_feat' not in vars(plain)
    with mixed_precision(mixed):
        outer = vars(mixed)['extract_feat']
        with mixed_precision(mixed):
            assert vars(mixed)['extract_feat'] is outer  # features converted once
        assert vars(mixed)['extract_feat'] is outer
    assert 'extract_feat' not in vars(mixed)
