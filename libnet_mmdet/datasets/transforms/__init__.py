"""Data transforms for tomography slices (registered in ``mmdet.registry.TRANSFORMS``)."""
from .augment import (RandomContextDrop, RandomFieldOfView, RandomGamma, RandomGaussianBlur, RandomGaussianNoise,
                      RandomParticleScale, RandomPoissonNoise, RandomRingArtifact, RandomRot90, RandomStreakArtifact)
from .loading import (PHASE_CLASS_IDS, LoadPhaseMap, LoadTomoImageFromFile,
                      LoadTomoImageFromNDArray)

__all__ = [
    'LoadTomoImageFromFile', 'LoadTomoImageFromNDArray', 'LoadPhaseMap', 'PHASE_CLASS_IDS', 'RandomRot90',
    'RandomGamma', 'RandomGaussianNoise', 'RandomPoissonNoise', 'RandomGaussianBlur', 'RandomRingArtifact',
    'RandomStreakArtifact', 'RandomParticleScale', 'RandomFieldOfView', 'RandomContextDrop'
]
