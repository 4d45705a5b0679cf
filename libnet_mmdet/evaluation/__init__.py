"""Instance matching metrics: plain functions and mmengine metrics (``mmdet.registry.METRICS``)."""
