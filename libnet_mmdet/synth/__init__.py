"""Synthetic NMC nano-CT volumes with exact 3D ground truth.

>>> from libnet_mmdet.synth import preset_params, generate_volume, write_dataset
>>> volume = generate_volume((64, 128, 128), preset_params('typical', mean_diameter_vox=20), seed=0)
>>> write_dataset('data/synth_demo', volume, axes=('z', 'y', 'x'), every=2)  # doctest: +SKIP

Ground-truth convention: a particle's instance label is the *filled* particle (outline, cracks and hollow core
included, as an annotator draws it); the phase volume keeps the voids (pore), so damage = (filled - solid) /
filled is recoverable from labels + phases.
"""
from .export import (coco_annotations, export_slices, instance_polygons, select_slices, via_regions,
                     write_dataset)
from .generate import SyntheticVolume, generate_volume
from .groundtruth import GROUND_TRUTH_COLUMNS, ground_truth_table
from .microstructure import make_microstructure
from .params import PRESETS, SynthParams, preset_params
from .tomography import filtered_back_projection, project, projection_matrix, simulate_tomography

__all__ = [
    'SynthParams', 'PRESETS', 'preset_params', 'generate_volume', 'SyntheticVolume', 'write_dataset',
    'export_slices', 'select_slices', 'coco_annotations', 'via_regions', 'instance_polygons',
    'ground_truth_table', 'GROUND_TRUTH_COLUMNS', 'make_microstructure',
    'simulate_tomography', 'project', 'filtered_back_projection', 'projection_matrix',
]
