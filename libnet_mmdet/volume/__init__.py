"""3D assembly: tiling, slice linking, view fusion, volume I/O."""
