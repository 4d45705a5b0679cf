# Shared by the generalist configs (not a config on its own): the randomised synthetic corpus that
# `make model` / tools/make_model.py writes, and the particle sizes the generalist learns.

# Typical particle diameter (px, as the model sees slices) the generalist is trained for: RandomParticleScale
# resizes each training slice so that its median particle cross-section is drawn log-uniformly from this range,
# and the inference API (scale='auto') rescales a user's slices so that their particles fall in it.
particle_diameter_px = (12, 48)

corpus_root = 'data/generalist_corpus/'  # tools/make_model.py --corpus
# SynthParams fixed for every corpus volume instead of drawn (tools/make_model.py passes them to write_corpus):
# no bulk carbon-binder domains, the corpus every generalist in BENCHMARKS.md was trained and measured on.
corpus_overrides = dict(cb_domain_fraction=0.0)
# Every xy/xz/yz slice of every corpus volume (every 2nd: neighbouring slices are nearly identical).
corpus_dataset = dict(
    _delete_=True,
    type='LabelTiffDataset',
    data_root=corpus_root,
    data_prefix=dict(img='images/', label='labels/'),
    slice_axes='zyx',
    slice_step=2,
    skip_empty=True,
    filter_cfg=dict(filter_empty_gt=True, min_size=32))
