"""Datasets (registered in ``mmdet.registry.DATASETS``) and their transforms (``TRANSFORMS``)."""
from .coco_particle import ParticleCocoDataset
from .coco_checks import check_coco_file
from .instances import AnnotationError
from .label_tiff import LabelTiffDataset, labels_to_coco
from .phase_tiff import PhaseTiffDataset
from .via import ViaParticleDataset, via_to_coco
from . import transforms  # noqa: F401

__all__ = [
    'ParticleCocoDataset', 'ViaParticleDataset', 'LabelTiffDataset', 'PhaseTiffDataset', 'AnnotationError',
    'check_coco_file', 'via_to_coco', 'labels_to_coco'
]
