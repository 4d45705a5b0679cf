"""Parameter validation: presets are valid, bad values fail with a message naming the parameter."""
import dataclasses
import math

import numpy as np
import pytest

from libnet_mmdet.synth import PRESETS, SynthParams, generate_volume, preset_params


def test_presets_are_valid_and_typical_is_the_default():
    for name in PRESETS:
        assert isinstance(preset_params(name), SynthParams)
    assert preset_params('typical') == SynthParams()
    assert preset_params('hard').dose < preset_params('typical').dose < preset_params('clean').dose


@pytest.mark.parametrize('name, value', [
    ('solid_fraction', 1.0), ('solid_fraction', 1.5), ('solid_fraction', 0.0), ('solid_fraction', math.nan),
    ('mean_diameter_vox', -5.0), ('mean_diameter_vox', 0.0), ('min_diameter_vox', -1.0),
    ('min_diameter_vox', 40.0), ('crack_width_vox', -1.0), ('cb_thickness_vox', -2.0), ('dose', 0.0),
    ('hollow_fraction', 1.2), ('hollow_radius_range', (0.6, 0.3)), ('max_cracks', 0), ('voxel_size_nm', -50.0),
    ('sample_transmission', 1.0), ('output_dtype', 'int8'), ('ring_strength', -0.01), ('solid_fraction', '0.5'),
    # an overflow traceback (1e120) or a placement loop that never ended (1e30); NMC darker than pore; a spread the
    # clip to [0.5, 1.5] does not give
    ('mean_diameter_vox', 1e30), ('voxel_size_nm', 1e120), ('grain_contrast', 0.5), ('particle_contrast_cv', 0.5),
])
def test_invalid_parameter_names_itself(name, value):
    with pytest.raises(ValueError, match=rf'SynthParams\.{name}=.*invalid'):
        preset_params('typical', **{name: value})


def test_one_particle_size_with_the_minimum_at_the_mean_is_drawn_not_redrawn_forever():
    """diameter_cv=0 draws exp(log(5.0)) = 4.999999999999999 < min_diameter_vox 5.0 (its default): every draw was
    rejected, and generate_volume never returned."""
    import signal
    from libnet_mmdet.synth.microstructure import draw_diameters

    def hung(*_):
        raise TimeoutError('draw_diameters did not return in 10 s')
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        params = preset_params('typical', mean_diameter_vox=5.0, diameter_cv=0.0)
        diameters = draw_diameters(np.random.default_rng(0), 20, params)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert params.min_diameter_vox == 5.0 and np.all(diameters == 5.0)


def test_replace_validates_again():
    with pytest.raises(ValueError, match='solid_fraction'):
        dataclasses.replace(SynthParams(), solid_fraction=1.0)


def test_unknown_preset_and_field():
    with pytest.raises(ValueError, match="unknown preset 'noisy'"):
        preset_params('noisy')
    with pytest.raises(ValueError, match='unknown SynthParams field'):
        preset_params('clean', mean_diameter=10)


@pytest.mark.parametrize('shape, fragment', [
    ((0, 64, 64), 'empty'), ((24, -64, 64), 'empty'), ((24, 64), 'three integers'), ((24.0, 64, 64), 'three integers'),
    (None, 'three integers'), ((24, 4, 64), 'Y and X must be >= 8'),
])
def test_invalid_shape(shape, fragment):
    with pytest.raises(ValueError, match=rf'shape_zyx=.*{fragment}'):
        generate_volume(shape, SynthParams(), seed=0)


def test_invalid_seed_and_params():
    with pytest.raises(ValueError, match='seed=-1 is invalid'):
        generate_volume((8, 16, 16), SynthParams(), seed=-1)
    with pytest.raises(ValueError, match='expected a SynthParams'):
        generate_volume((8, 16, 16), {'dose': 10}, seed=0)
