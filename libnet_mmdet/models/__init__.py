"""Models and losses (registered in ``mmdet.registry.MODELS``)."""
from . import losses  # noqa: F401
from .phase_segmentor import HEAD_CHANNEL_OF_PHASE, PHASE_CHANNELS, PhaseSegmentor

__all__ = ['PhaseSegmentor', 'PHASE_CHANNELS', 'HEAD_CHANNEL_OF_PHASE']
