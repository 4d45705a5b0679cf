"""Models and losses (registered in ``mmdet.registry.MODELS``)."""
from . import losses  # noqa: F401
