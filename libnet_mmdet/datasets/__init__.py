"""Datasets (registered in ``mmdet.registry.DATASETS``) and their transforms (``TRANSFORMS``)."""
from .coco_particle import ParticleCocoDataset
from . import transforms  # noqa: F401

__all__ = ['ParticleCocoDataset']
