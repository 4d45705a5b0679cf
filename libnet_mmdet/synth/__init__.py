"""Synthetic NMC nano-CT volumes with exact 3D ground truth.

>>> from libnet_mmdet.synth import preset_params, generate_volume, write_dataset
>>> volume = generate_volume((64, 128, 128), preset_params('typical', mean_diameter_vox=20), seed=0)
>>> write_dataset('data/synth_demo', volume, axes=('z', 'y', 'x'), every=2)  # doctest: +SKIP

Ground-truth convention: a particle's instance label is the *filled* particle (outline, cracks and hollow core
included, as an annotator draws it); the phase volume keeps the voids (pore), so damage = (filled - solid) /
filled is recoverable from labels + phases.
"""
from .export import write_dataset
from .generate import generate_volume
from .params import OUTPUT_DTYPES, PRESETS, SynthParams, preset_params

__all__ = ['SynthParams', 'PRESETS', 'OUTPUT_DTYPES', 'preset_params', 'generate_volume', 'write_dataset']
