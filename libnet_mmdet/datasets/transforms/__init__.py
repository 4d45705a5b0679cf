"""Data transforms for tomography slices (registered in ``mmdet.registry.TRANSFORMS``)."""
from .augment import (RandomGamma, RandomGaussianBlur, RandomGaussianNoise, RandomPoissonNoise,
                      RandomRingArtifact, RandomRot90, RandomStreakArtifact)
from .loading import LoadTomoImageFromFile

__all__ = [
    'LoadTomoImageFromFile', 'RandomRot90', 'RandomGamma', 'RandomGaussianNoise', 'RandomPoissonNoise',
    'RandomGaussianBlur', 'RandomRingArtifact', 'RandomStreakArtifact'
]
