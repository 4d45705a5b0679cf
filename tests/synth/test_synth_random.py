"""Randomised corpus (issue 15): RANDOM_RANGES draws, the new knobs (internal porosity, cupping, gain field, uint8),
corpus_shape, write_corpus (layout, reproducibility, resume, refusals) and make_synthetic --preset random."""
import dataclasses
import json

import numpy as np
import pytest
from scipy import ndimage

from libnet_mmdet.io import InputError, read_volume
from libnet_mmdet.synth import (OUTPUT_DTYPES, PRESETS, RANDOM_RANGES, SynthParams, corpus_shape, generate_volume,
                                preset_params, random_params, write_corpus)
from libnet_mmdet.synth import corpus as corpus_module
from libnet_mmdet.synth.params import validate_params
from libnet_mmdet.synth.tomography import to_output_dtype

PORE, NMC, CARBON_BINDER = 0, 1, 2
TINY = (6, 40, 40)
# Fixed knobs that keep a tiny corpus volume fast and full of particles; everything else is drawn.
TINY_OVERRIDES = dict(mean_diameter_vox=10.0, angular_sampling=0.4)
N_DRAWS = 200


@pytest.fixture(scope='module')
def draws():
    return [random_params(seed) for seed in range(N_DRAWS)]


def test_draws_lie_in_the_documented_ranges_and_reach_both_ends(draws):
    for draw in draws:
        validate_params(draw)
    for name, (kind, *args) in RANDOM_RANGES.items():
        values = [getattr(draw, name) for draw in draws]
        if kind == 'choice':
            assert set(values) == set(args[0]), name
            continue
        low, high = args
        assert all(low <= value <= high for value in values), name
        scale = np.log if kind == 'log-uniform' else (lambda value: value)
        span = scale(high) - scale(low)
        assert scale(min(values)) < scale(low) + 0.1 * span and scale(max(values)) > scale(high) - 0.1 * span, name
    diameters = np.array([draw.mean_diameter_vox for draw in draws])
    assert (diameters < 15).sum() >= 10 and (diameters > 45).sum() >= 10


def test_ranges_contain_every_preset_and_only_known_fields():
    assert set(RANDOM_RANGES) <= {field.name for field in dataclasses.fields(SynthParams)}
    assert RANDOM_RANGES['output_dtype'] == ('choice', ('uint8', 'uint16', 'float32')) == ('choice', OUTPUT_DTYPES)
    assert RANDOM_RANGES['mean_diameter_vox'][1:] == (10.0, 60.0)
    for preset in PRESETS:
        params = preset_params(preset)
        for name, (kind, *args) in RANDOM_RANGES.items():
            value = getattr(params, name)
            assert value in args[0] if kind == 'choice' else args[0] <= value <= args[1], (preset, name, value)


def test_the_seed_decides_the_draw_and_overrides_win(draws):
    assert random_params(5) == draws[5]
    assert all(draws[seed] != draws[seed + 1] for seed in range(20))
    fixed = random_params(5, dose=1234.0, output_dtype='float32')
    assert fixed.dose == 1234.0 and fixed.output_dtype == 'float32'
    assert dataclasses.replace(fixed, dose=draws[5].dose, output_dtype=draws[5].output_dtype) == draws[5]


@pytest.mark.parametrize('call, message', [
    (lambda: random_params(-1), 'seed=-1 is invalid'),
    (lambda: random_params(1.5), 'seed=1.5 is invalid'),
    (lambda: random_params(0, mean_diameter=10), 'unknown SynthParams field'),
    (lambda: random_params(0, solid_fraction=0.9), r'SynthParams\.solid_fraction=0\.9 is invalid'),
    (lambda: preset_params('typical', porous_fraction=1.5), r'SynthParams\.porous_fraction=1\.5 is invalid'),
    (lambda: preset_params('typical', internal_void_diameter_vox=0.5), 'internal_void_diameter_vox=0.5 is invalid'),
    (lambda: preset_params('typical', cupping=-0.1), r'SynthParams\.cupping=-0\.1 is invalid'),
    (lambda: preset_params('typical', nonuniformity=1.0), r'SynthParams\.nonuniformity=1\.0 is invalid'),
])
def test_bad_draw_arguments_and_new_knob_values_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize('diameter, shape', [(10.0, (32, 128, 128)), (20.0, (32, 160, 160)), (24.0, (36, 192, 192)),
                                             (33.0, (50, 256, 256)), (60.0, (64, 256, 256)),
                                             (100.0, (64, 256, 256))])
def test_corpus_shape_follows_the_diameter_within_bounds(diameter, shape):
    assert corpus_shape(preset_params('typical', mean_diameter_vox=diameter)) == shape


def test_default_knobs_are_off_and_the_presets_unchanged():
    params = SynthParams()
    assert params.porous_fraction == params.cupping == params.nonuniformity == params.cb_domain_fraction == 0
    assert all(PRESETS[name].get(knob, 0) == 0 for name in PRESETS
               for knob in ('porous_fraction', 'cupping', 'nonuniformity', 'cb_domain_fraction'))


@pytest.fixture(scope='module')
def dense_and_porous():
    """Two volumes of the same seed, without and with internal porosity in every particle."""
    dense = preset_params('typical', mean_diameter_vox=14.0, hollow_fraction=0.0, crack_fraction=0.0,
                          output_dtype='float32')
    porous = dataclasses.replace(dense, porous_fraction=1.0, internal_void_fraction=0.15,
                                 internal_void_diameter_vox=1.8)
    return generate_volume((24, 64, 64), dense, seed=4), generate_volume((24, 64, 64), porous, seed=4)


def test_porosity_opens_enclosed_voids_and_keeps_labels_and_binder(dense_and_porous):
    dense, porous = dense_and_porous
    assert np.array_equal(dense.labels_zyx, porous.labels_zyx)
    assert np.array_equal(dense.phases_zyx == CARBON_BINDER, porous.phases_zyx == CARBON_BINDER)
    opened = (dense.phases_zyx == NMC) & (porous.phases_zyx == PORE)
    assert np.array_equal(opened, dense.phases_zyx != porous.phases_zyx)  # only particle solid became void
    table, labels, phases = porous.particles.set_index('id'), porous.labels_zyx, porous.phases_zyx
    assert not dense.particles.damage.any() and not dense.particles.porous.any()
    assert (table.hollow | table.cracked | table.porous).equals(table.damage > 0)
    interior = table[~table.touches_border & (table.nominal_diameter_vox >= 12)]
    assert len(interior) >= 3 and interior.porous.all()
    # up to internal_void_fraction, less the overlaps; small particles have room for fewer voids
    assert interior.damage.between(0.02, 0.15).all() and interior.damage.max() > 0.06
    for particle_id, box in enumerate(ndimage.find_objects(labels), start=1):
        if particle_id in interior.index:  # every void is enclosed: the filled solid is the label
            own = labels[box] == particle_id
            solid = own & (phases[box] == NMC)
            assert ndimage.label(own & (phases[box] == PORE))[1] >= 3  # separate voids, not one core
            assert np.array_equal(ndimage.binary_fill_holes(np.pad(solid, 1))[1:-1, 1:-1, 1:-1], own)
    assert not np.array_equal(dense.image_zyx, porous.image_zyx)
    assert porous.image_zyx[opened].mean() < dense.image_zyx[opened].mean() - 0.2


def test_binder_domains_fill_the_requested_share_of_the_gaps_far_from_particles_too(dense_and_porous):
    plain = dense_and_porous[0]
    with_domains = generate_volume((24, 64, 64), dataclasses.replace(plain.params, cb_domain_fraction=0.4), seed=4)
    assert np.array_equal(with_domains.labels_zyx, plain.labels_zyx)
    assert np.array_equal(with_domains.phases_zyx[plain.labels_zyx > 0], plain.phases_zyx[plain.labels_zyx > 0])
    binder, plain_binder = with_domains.phases_zyx == CARBON_BINDER, plain.phases_zyx == CARBON_BINDER
    assert np.all(binder[plain_binder])  # coat and bridges are kept, domains come on top
    gaps = plain.labels_zyx == 0
    share = np.count_nonzero(binder & gaps) / np.count_nonzero(gaps)
    assert share > max(0.4, np.count_nonzero(plain_binder) / np.count_nonzero(gaps) + 0.1)
    far = ndimage.distance_transform_edt(gaps) > 3  # beyond the coat (2 voxels) and most bridges (radius 3)
    assert plain_binder[far].mean() < 0.05 and binder[far].mean() > 0.3


@pytest.fixture(scope='module')
def plain_volume():
    return generate_volume((4, 64, 64), preset_params('clean', mean_diameter_vox=12.0, output_dtype='float32'), seed=2)


def test_cupping_darkens_the_slice_centre_and_nothing_else(plain_volume):
    params = dataclasses.replace(plain_volume.params, cupping=0.3)
    cupped = generate_volume(plain_volume.labels_zyx.shape, params, seed=plain_volume.seed)
    assert np.array_equal(cupped.labels_zyx, plain_volume.labels_zyx)
    yy, xx = np.mgrid[:64, :64] - 31.5
    radius = np.hypot(yy, xx) / np.hypot(31.5, 31.5)
    np.testing.assert_allclose(cupped.image_zyx, plain_volume.image_zyx * (1 - 0.3 * (1 - radius ** 2)),
                               rtol=1e-5, atol=1e-6)  # same noise, times the documented parabola


def test_the_gain_field_is_smooth_and_within_its_amplitude(plain_volume):
    params = dataclasses.replace(plain_volume.params, nonuniformity=0.2)
    varied = generate_volume(plain_volume.labels_zyx.shape, params, seed=plain_volume.seed)
    assert np.array_equal(varied.labels_zyx, plain_volume.labels_zyx)
    bright = np.abs(plain_volume.image_zyx) > 0.5
    gain = varied.image_zyx[bright] / plain_volume.image_zyx[bright]
    assert gain.min() >= 0.8 - 1e-4 and gain.max() <= 1.2 + 1e-4 and gain.max() - gain.min() > 0.05
    neighbours = bright[:, :, 1:] & bright[:, :, :-1]  # the gain changes little from one voxel to the next
    ratio = varied.image_zyx / np.where(bright, plain_volume.image_zyx, 1)
    assert np.abs(np.diff(ratio, axis=2)[neighbours]).max() < 0.02


def test_uint8_output_is_the_scaled_float_image(plain_volume):
    params = dataclasses.replace(plain_volume.params, output_dtype='uint8')
    volume = generate_volume(plain_volume.labels_zyx.shape, params, seed=plain_volume.seed)
    assert volume.image_zyx.dtype == np.uint8
    assert np.array_equal(volume.image_zyx, to_output_dtype(plain_volume.image_zyx, 'uint8'))
    means = [volume.image_zyx[volume.phases_zyx == phase].mean() for phase in (PORE, NMC)]
    assert means == pytest.approx([255 * 0.5 / 2.5, 255 * 1.5 / 2.5], abs=15)  # pore ~ 0, NMC ~ 1 on -0.5..2.0
    assert volume.summary['intensity_scale'] == 'uint8 value v is attenuation -0.5 + 2.5 * v / 255 relative to NMC'


def _write_tiny(out, count=2, seed=0, **kwargs):
    return write_corpus(out, count, seed=seed, shape_zyx=TINY, progress=False, **TINY_OVERRIDES, **kwargs)


def _files(out):
    return sorted(str(path.relative_to(out)) for path in out.rglob('*') if path.is_file())


def test_write_corpus_layout_and_each_volume_is_reproducible_alone(tmp_path):
    out = tmp_path / 'corpus'
    corpus = _write_tiny(out, seed=7)
    assert _files(out) == ['.libnet_mmdet_output', 'corpus.json', 'images/vol_000.tif', 'images/vol_001.tif',
                           'labels/vol_000.tif', 'labels/vol_001.tif', 'particles/vol_000.csv',
                           'particles/vol_001.csv', 'phases/vol_000.tif', 'phases/vol_001.tif']
    assert json.loads((out / 'corpus.json').read_text()) == corpus
    assert (corpus['count'], corpus['seed'], corpus['shape_zyx']) == (2, 7, list(TINY))
    assert corpus['overrides'] == TINY_OVERRIDES and corpus['algorithm_version'] >= 1
    assert [(v['name'], v['seed'], v['shape_zyx']) for v in corpus['volumes']] == [('vol_000', 7, list(TINY)),
                                                                                  ('vol_001', 8, list(TINY))]
    params = random_params(8, **TINY_OVERRIDES)
    assert corpus['volumes'][1]['params'] == json.loads(json.dumps(dataclasses.asdict(params)))
    again = generate_volume(TINY, params, seed=8)
    image, voxel_size = read_volume(out / 'images' / 'vol_001.tif')
    assert np.array_equal(image, again.image_zyx) and image.dtype.name == params.output_dtype
    assert np.allclose(voxel_size, params.voxel_size_nm)
    assert np.array_equal(read_volume(out / 'labels' / 'vol_001.tif')[0], again.labels_zyx)
    assert np.array_equal(read_volume(out / 'phases' / 'vol_001.tif')[0], again.phases_zyx)
    assert corpus['volumes'][1]['summary'] == json.loads(json.dumps(again.summary))
    assert (out / 'particles' / 'vol_001.csv').read_text().count('\n') == again.summary['n_particles'] + 1
    assert corpus['volumes'][0]['params'] != corpus['volumes'][1]['params']


def test_a_finished_corpus_is_kept_and_a_stopped_one_resumed(tmp_path, monkeypatch):
    out = tmp_path / 'corpus'
    made = []
    real_generate = corpus_module.generate_volume

    def generate_then_stop(shape, params, seed):
        if len(made) == 1:
            raise KeyboardInterrupt  # Ctrl-C while the second volume is made
        made.append(seed)
        return real_generate(shape, params, seed=seed)

    monkeypatch.setattr(corpus_module, 'generate_volume', generate_then_stop)
    with pytest.raises(KeyboardInterrupt):
        _write_tiny(out, count=3)
    assert [v['name'] for v in json.loads((out / 'corpus.json').read_text())['volumes']] == ['vol_000']
    first_image = (out / 'images' / 'vol_000.tif').stat().st_mtime_ns
    made.clear()
    monkeypatch.setattr(corpus_module, 'generate_volume', lambda shape, params, seed: made.append(seed) or
                        real_generate(shape, params, seed=seed))
    corpus = _write_tiny(out, count=3)
    assert made == [1, 2] and [v['seed'] for v in corpus['volumes']] == [0, 1, 2]
    assert (out / 'images' / 'vol_000.tif').stat().st_mtime_ns == first_image
    made.clear()
    assert _write_tiny(out, count=3) == corpus and made == []  # finished: nothing is made again
    (out / 'labels' / 'vol_001.tif').unlink()  # a volume missing a file is made again
    assert _write_tiny(out, count=3) == corpus and made == [1]


def test_a_corpus_of_other_settings_or_a_foreign_folder_is_refused(tmp_path, capsys):
    out = tmp_path / 'corpus'
    _write_tiny(out, seed=0)
    before = _files(out)
    for kwargs, differ in [(dict(seed=1), 'seed'), (dict(count=3), 'count'), (dict(dose=1e4), 'overrides')]:
        with pytest.raises(InputError, match=rf'corpus.json: holds a corpus made with other settings \({differ}\); '
                                             'pass --overwrite'):
            _write_tiny(out, **kwargs)
    assert _files(out) == before
    corpus = _write_tiny(out, seed=1, overwrite=True)
    assert [v['seed'] for v in corpus['volumes']] == [1, 2]
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('mine')
    with pytest.raises(InputError, match='folder is not empty'):
        _write_tiny(foreign)
    with pytest.raises(InputError, match='not written by libnet-mmdet'):
        _write_tiny(foreign, overwrite=True)
    assert _files(foreign) == ['notes.txt']


@pytest.mark.parametrize('kwargs, message', [
    (dict(count=0), 'count=0 is invalid'), (dict(count=2.0), 'count=2.0 is invalid'),
    (dict(count=True), 'count=True is invalid'), (dict(count=2, seed=-3), 'seed=-3 is invalid'),
    (dict(count=2, shape_zyx=(4, 4, 40)), 'Y and X must be >= 8'),
    (dict(count=2, solid_fraction=2.0), r'SynthParams\.solid_fraction=2\.0 is invalid'),
    # the first volume's draw takes it (mean 31 px), the third's does not (16 px): refused before anything is written
    (dict(count=4, min_diameter_vox=20.0), r'vol_002 \(seed 2\): SynthParams\.min_diameter_vox=20\.0 is invalid'),
])
def test_write_corpus_checks_its_arguments_before_writing(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_corpus(tmp_path / 'out', progress=False, **kwargs)
    assert not (tmp_path / 'out').exists()


def test_make_synthetic_random_writes_a_corpus(tool, tmp_path, capsys):
    out = tmp_path / 'corpus'
    argv = ['--preset', 'random', '--count', '2', '--seed', '3', '--shape', *map(str, TINY), '--mean-diameter', '10',
            '--angular-sampling', '0.4', '--dtype', 'uint8', '--out', str(out)]
    assert tool.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith('vol_000: seed 3, shape 6x40x40, mean diameter 10.0 vox, ')
    assert lines[-1].startswith(f"2 volumes in {out} ({out / 'corpus.json'})")
    corpus = json.loads((out / 'corpus.json').read_text())
    assert corpus['overrides'] == {'mean_diameter_vox': 10.0, 'angular_sampling': 0.4, 'output_dtype': 'uint8'}
    assert [v['params']['output_dtype'] for v in corpus['volumes']] == ['uint8', 'uint8']
    assert read_volume(out / 'images' / 'vol_001.tif')[0].dtype == np.uint8
    assert tool.main(argv) == 0 and 'vol_001: made earlier, kept' in capsys.readouterr().out


@pytest.mark.parametrize('arguments, message', [
    (['--preset', 'clean', '--count', '2'], '--count 2: a named preset makes one volume; use --preset random'),
    (['--preset', 'random', '--export-axes', 'y'], '--export-axes: slice-export options do not apply'),
    (['--preset', 'random', '--min-area', '5'], '--min-area: slice-export options do not apply'),
    (['--preset', 'random', '--seed', '-1'], 'seed=-1 is invalid'),
    (['--preset', 'random', '--porous-fraction', '2'], r'SynthParams.porous_fraction=2.0 is invalid'),
])
def test_make_synthetic_random_refuses_bad_arguments(tool, tmp_path, arguments, message):
    with pytest.raises(SystemExit) as info:
        tool.main(arguments + ['--out', str(tmp_path / 'out')])
    assert info.value.code.startswith('make_synthetic.py: error: ') and message in info.value.code
    assert not (tmp_path / 'out').exists()


def test_make_synthetic_count_zero_is_refused_while_parsing(tool, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        tool.main(['--preset', 'random', '--count', '0', '--out', str(tmp_path / 'out')])
    assert info.value.code == 2 and "argument --count: expected an integer >= 1, got '0'" in capsys.readouterr().err
