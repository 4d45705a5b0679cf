"""Public inference API: init_segmenter, segment_image, segment_volume (and their argument checks, check_device,
load_slice), the automatic scale (estimate_scale, trained_diameter_range), the phase model (init_phase_model,
predict_phases) and the files of the models `make model` builds."""
from .inference import (DEFAULT_SCORE_THR, check_auto_diameters, check_fixed_resize, check_scale, describe_scale,
                        estimate_scale, load_slice, resolve_tiling, segment_image)
from .model import (CheckpointMismatchError, check_device, config_tile_size, generalist_files, init_segmenter,
                    phase_model_files, read_checkpoint, read_config, trained_diameter_range, transform_name)
from .phases import init_phase_model, predict_phases, resolve_phase_model
from .volume import check_volume_args, segment_volume

__all__ = [
    'init_segmenter', 'segment_image', 'segment_volume', 'check_volume_args', 'read_config', 'config_tile_size',
    'estimate_scale',
    'describe_scale', 'trained_diameter_range', 'generalist_files', 'phase_model_files', 'init_phase_model',
    'predict_phases', 'resolve_phase_model', 'check_device', 'load_slice', 'check_scale', 'check_auto_diameters',
    'read_checkpoint', 'check_fixed_resize', 'resolve_tiling', 'transform_name',
    'CheckpointMismatchError', 'DEFAULT_SCORE_THR'
]
