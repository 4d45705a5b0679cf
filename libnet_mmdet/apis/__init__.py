"""Public inference API: init_segmenter, segment_image, segment_volume (and their argument checks), the automatic
scale (estimate_scale, trained_diameter_range) and the generalist model's files."""
from .inference import DEFAULT_SCORE_THR, estimate_scale, segment_image
from .model import CheckpointMismatchError, generalist_files, init_segmenter, read_config, trained_diameter_range
from .volume import check_volume_args, segment_volume

__all__ = [
    'init_segmenter', 'segment_image', 'segment_volume', 'check_volume_args', 'read_config', 'estimate_scale',
    'trained_diameter_range', 'generalist_files', 'CheckpointMismatchError', 'DEFAULT_SCORE_THR'
]
