"""libnet_mmdet: NMC particle instance segmentation for X-ray nano-CT, as an MMDetection 3.x extension.

Importing the package registers its datasets, transforms, models and metrics in mmdet's registries
(configs load it through ``custom_imports``) and allow-lists the objects in MMEngine runner checkpoints
for torch's safe loading (see :mod:`libnet_mmdet.checkpoint`).
"""
import warnings

# mmengine 0.10 imports (and reloads) pkg_resources to resolve `mmdet::` configs, which setuptools 81 deprecates: two
# warnings of a dependency's, with their source lines, before every tool's output (setup.cfg hides them in the tests)
warnings.filterwarnings('ignore', message='pkg_resources is deprecated as an API', category=UserWarning)

from .version import __version__  # noqa: E402
from . import checkpoint  # noqa: F401  (allow-lists MMEngine checkpoint objects for torch.load)
from . import datasets, evaluation, models  # noqa: F401  (register into mmdet's registries)

__all__ = ['__version__']
