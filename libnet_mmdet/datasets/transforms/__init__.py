"""Data transforms for tomography slices (registered in ``mmdet.registry.TRANSFORMS``)."""
from .augment import (RandomGamma, RandomGaussianBlur, RandomGaussianNoise, RandomParticleScale,
                      RandomPoissonNoise, RandomRingArtifact, RandomRot90, RandomStreakArtifact)
from .loading import LoadTomoImageFromFile, LoadTomoImageFromNDArray

__all__ = [
    'LoadTomoImageFromFile', 'LoadTomoImageFromNDArray', 'RandomRot90', 'RandomGamma', 'RandomGaussianNoise',
    'RandomPoissonNoise', 'RandomGaussianBlur', 'RandomRingArtifact', 'RandomStreakArtifact',
    'RandomParticleScale'
]
