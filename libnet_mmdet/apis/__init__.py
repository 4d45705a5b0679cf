"""Public inference API: init_segmenter, segment_image, segment_volume."""
from .inference import (CheckpointMismatchError, init_segmenter, model_fingerprint, segment_image,
                        slice_segmenter, training_tile_size)
from .volume import VIEW_AXIS, segment_volume

__all__ = [
    'init_segmenter', 'segment_image', 'segment_volume', 'slice_segmenter', 'training_tile_size',
    'model_fingerprint', 'CheckpointMismatchError', 'VIEW_AXIS'
]
