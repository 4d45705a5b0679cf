"""libnet_mmdet: NMC particle instance segmentation for X-ray nano-CT, as an MMDetection 3.x extension.

Importing the package registers its datasets, transforms, models and metrics in mmdet's registries
(configs load it through ``custom_imports``) and allow-lists the objects in MMEngine runner checkpoints
for torch's safe loading (see :mod:`libnet_mmdet.checkpoint`).
"""
from .version import __version__
from . import checkpoint  # noqa: F401  (allow-lists MMEngine checkpoint objects for torch.load)
from . import datasets, evaluation, models  # noqa: F401  (register into mmdet's registries)

__all__ = ['__version__']
