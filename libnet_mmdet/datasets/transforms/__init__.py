"""Data transforms for tomography slices (registered in ``mmdet.registry.TRANSFORMS``)."""
