"""Fixtures for the inference API tests: the session's 1-epoch CPU-tiny model (``trained_tiny``) loaded for inference."""
import pytest

# Fewer proposals and detections than the recipe: the 1-epoch model scores everything ~0.5, and inference on
# 2 CPU cores is then 8x faster. Used by the tests that only check the plumbing.
FAST_TEST_CFG = {'model.test_cfg.rpn.max_per_img': 200, 'model.test_cfg.rcnn.max_per_img': 50}


@pytest.fixture(scope='session')
def tiny_model(trained_tiny):
    """The trained CPU-tiny model on the CPU, with the fast test settings."""
    from libnet_mmdet.apis import init_segmenter
    config, checkpoint = trained_tiny
    return init_segmenter(str(config), str(checkpoint), device='cpu', cfg_options=FAST_TEST_CFG)
