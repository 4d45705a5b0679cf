"""benchmarks/tune_phase_weight.py's choice of the phase model's shell weight pair (issue 16): the rule as
BENCHMARKS.md states it, on made-up per-volume scores."""
import numpy as np
import pytest

from helpers import import_benchmark


@pytest.fixture(scope='module')
def tune():
    return import_benchmark('tune_phase_weight')


def volume(share, best_weight, slope_of_error=0.05):
    """Scores of a volume whose mean detachment error is 0 at ``best_weight`` and grows linearly around it."""
    from tune_phase_weight import CONSTANT_WEIGHTS
    weights = np.array(CONSTANT_WEIGHTS)
    return dict(bulk_cb_share=share, errors=list(slope_of_error * (weights - best_weight)),
                rs=list(0.95 - 0.01 * np.abs(weights - best_weight)))


def test_the_pair_that_fits_every_volume_is_chosen(tune):
    # plain volumes want 3.0, bulk ones (s = 0.4) want 2.0: weight 3.0, slope 2.5 fits both exactly
    volumes = [volume(0.0, 3.0), volume(0.0, 3.0), volume(0.4, 2.0), volume(0.4, 2.0)]
    best = tune.choose_pair(volumes)[0]
    assert (best['surface_pore_weight'], best['bulk_cb_slope']) == (3.0, 2.5)
    assert best['worst_abs_error'] == 0 and best['mean_r'] == pytest.approx(0.95)


def test_no_slope_when_the_share_does_not_matter_and_the_weight_never_below_1(tune):
    volumes = [volume(0.0, 2.5), volume(0.5, 2.5), volume(0.9, 2.5)]
    best = tune.choose_pair(volumes)[0]
    assert (best['surface_pore_weight'], best['bulk_cb_slope']) == (2.5, 0)
    # a volume that wants less than 1 gets 1 whatever the slope: its error is the one at 1, scored, not extrapolated
    floor = tune.choose_pair([volume(1.0, 0.5)])[0]
    assert floor['worst_abs_error'] == pytest.approx(0.05 * (1.0 - 0.5))
    assert tune.CONSTANT_WEIGHTS[0] == 1.0


def test_weights_below_the_old_grid_are_reached_and_1_only_without_a_slope(tune):
    pairs = tune.choose_pair([volume(0.0, 1.6), volume(0.5, 1.6)])
    assert (pairs[0]['surface_pore_weight'], pairs[0]['bulk_cb_slope']) == (1.6, 0)
    assert {pair['bulk_cb_slope'] for pair in pairs if pair['surface_pore_weight'] == 1.0} == {0.0}


def test_held_out_seeds_are_refused(tune, capsys):
    with pytest.raises(SystemExit):
        tune.parse_args(['--seeds', '8100', '9100'])
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        'error: --seeds: 9100 and above are the held-out seeds of bench_phases.py')


def test_a_cache_of_another_model_or_shape_is_refused(tune, tmp_path):
    """--cache was read whatever the model: one folder reused for two models scored the first one twice."""
    probs = np.zeros((3, 4, 8, 8), np.float16)
    labels, phases = np.zeros((4, 8, 8), np.uint16), np.zeros((4, 8, 8), np.uint8)
    np.savez_compressed(tmp_path / 'v8100_0.npz', probs=probs, labels=labels, phases=phases, model_digest='abc')
    stored = tune.probabilities_of(None, 8100, 0.0, (4, 8, 8), str(tmp_path), 'abc')  # the same: read, no model
    np.testing.assert_array_equal(stored[0], probs)
    for shape, digest in (((4, 8, 8), 'other'), ((8, 8, 8), 'abc')):
        with pytest.raises(SystemExit, match='v8100_0.npz: probabilities of another model or shape'):
            tune.probabilities_of(None, 8100, 0.0, shape, str(tmp_path), digest)
    np.savez_compressed(tmp_path / 'v8100_0.npz', probs=probs, labels=labels, phases=phases)  # an older script's
    with pytest.raises(SystemExit, match='v8100_0.npz: probabilities of another model or shape'):
        tune.probabilities_of(None, 8100, 0.0, (4, 8, 8), str(tmp_path), 'abc')
