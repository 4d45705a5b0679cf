"""Public inference API: init_segmenter, segment_image, segment_volume."""
