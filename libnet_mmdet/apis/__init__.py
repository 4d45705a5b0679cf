"""Public inference API: init_segmenter, segment_image, segment_volume (and their argument checks)."""
from .inference import DEFAULT_SCORE_THR, segment_image
from .model import CheckpointMismatchError, init_segmenter, read_config
from .volume import check_volume_args, segment_volume

__all__ = [
    'init_segmenter', 'segment_image', 'segment_volume', 'check_volume_args', 'read_config',
    'CheckpointMismatchError', 'DEFAULT_SCORE_THR'
]
