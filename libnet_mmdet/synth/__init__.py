"""Synthetic NMC nano-CT volumes with exact 3D ground truth, one at a time or as a randomised training corpus.

>>> from libnet_mmdet.synth import preset_params, generate_volume, write_dataset
>>> volume = generate_volume((64, 128, 128), preset_params('typical', mean_diameter_vox=20), seed=0)
>>> write_dataset('data/synth_demo', volume, axes=('z', 'y', 'x'), every=2)  # doctest: +SKIP

A corpus of volumes whose parameters are drawn from :data:`RANDOM_RANGES` (particle size 10-60 voxels, damage,
dose, artefacts, ...), each reproducible from its seed:

>>> from libnet_mmdet.synth import corpus_shape, random_params, write_corpus
>>> params = random_params(7, output_dtype='uint16')           # seed 7's draw, dtype fixed
>>> volume = generate_volume(corpus_shape(params), params, seed=7)  # doctest: +SKIP
>>> write_corpus('data/corpus', count=200, seed=0)              # doctest: +SKIP

Ground-truth convention: a particle's instance label is the *filled* particle (outline, cracks, hollow core and
internal voids included, as an annotator draws it); the phase volume keeps the voids (pore), so damage =
(filled - solid) / filled is recoverable from labels + phases.
"""
from .corpus import MAX_CORPUS_SHAPE, check_corpus_args, check_corpus_dir, corpus_shape, write_corpus
from .export import write_dataset
from .generate import generate_volume, render_volume
from .params import OUTPUT_DTYPES, PRESETS, RANDOM_RANGES, SynthParams, preset_params, random_params

__all__ = ['SynthParams', 'PRESETS', 'OUTPUT_DTYPES', 'RANDOM_RANGES', 'preset_params', 'random_params',
           'generate_volume', 'render_volume', 'corpus_shape', 'check_corpus_args', 'check_corpus_dir',
           'MAX_CORPUS_SHAPE', 'write_dataset', 'write_corpus']
