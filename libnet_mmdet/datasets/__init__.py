"""Datasets (registered in ``mmdet.registry.DATASETS``) and their transforms (``TRANSFORMS``)."""
from .coco_particle import ParticleCocoDataset
from .coco_checks import check_coco, check_coco_file
from .image_io import ImageFormatError
from .instances import AnnotationError
from .label_tiff import LabelTiffDataset, load_label_data_list
from .via import ViaParticleDataset, load_via_data_list
from . import transforms  # noqa: F401

__all__ = [
    'ParticleCocoDataset', 'ViaParticleDataset', 'LabelTiffDataset', 'AnnotationError', 'ImageFormatError',
    'check_coco', 'check_coco_file', 'load_via_data_list', 'load_label_data_list'
]
