"""Public inference API: init_segmenter, segment_image, segment_volume."""
from .inference import DEFAULT_SCORE_THR, segment_image
from .model import CheckpointMismatchError, init_segmenter
from .volume import segment_volume

__all__ = ['init_segmenter', 'segment_image', 'segment_volume', 'CheckpointMismatchError', 'DEFAULT_SCORE_THR']
