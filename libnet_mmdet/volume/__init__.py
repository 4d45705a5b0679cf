"""3D assembly: tiling, slice linking, view fusion, volume I/O (network-free; the model side is in apis)."""
from .fusion import VIEWS, fuse_views
from ..fileio import write_tiff_pages
from .io import VolumeReader, max_label, open_volume
from .labels import remove_small
from .linking import iter_link_slices, link_next_slice, link_slices
from .tiling import merge_tiles, order_by_score, segment_tiled, tile_windows

__all__ = [
    'link_slices', 'iter_link_slices', 'link_next_slice', 'fuse_views', 'VIEWS', 'remove_small', 'open_volume',
    'max_label', 'VolumeReader', 'write_tiff_pages', 'segment_tiled', 'merge_tiles', 'tile_windows', 'order_by_score'
]
