"""Losses for particle masks (registered in ``mmdet.registry.MODELS``)."""
from .shape_aware_mask_loss import (ShapeAwareMaskLoss, fill_enclosed, inside_depth, shape_aware_mask_loss_terms,
                                    squared_distance_to)

__all__ = ['ShapeAwareMaskLoss', 'shape_aware_mask_loss_terms', 'fill_enclosed', 'inside_depth',
           'squared_distance_to']
