"""3D assembly: tiling, slice linking, view fusion, the work folder of a volume run (network-free; the model side is
in apis)."""
from .fusion import fuse_views
from .labels import min_voxels_for_diameter, min_voxels_for_particles, remove_small, smooth_labels
from .linking import link_slices
from .tiling import check_tiling, segment_tiled
from .views import VIEWS
from .workdir import WorkFolder

__all__ = ['link_slices', 'fuse_views', 'remove_small', 'min_voxels_for_diameter', 'min_voxels_for_particles',
           'smooth_labels', 'segment_tiled', 'check_tiling', 'WorkFolder', 'VIEWS']
