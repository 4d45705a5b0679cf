"""Losses for particle masks (registered in ``mmdet.registry.MODELS``)."""
