"""Choose the phase model's shell weight on validation volumes: ``test_cfg.surface_pore_weight`` and
``test_cfg.bulk_cb_slope`` (issue 16; :func:`~libnet_mmdet.apis.phases.model_phases`).

Usage:
    python benchmarks/tune_phase_weight.py [--model-dir models/phases] [--seeds 8100 ... 8108]
        [--cb-domain-fractions 0 0.25 0.5 0.75] [--shape 64 192 192] [--cache DIR]
        [--out benchmarks/results/phase_weight_tuning.json]

1. Validation volumes: seed ``s`` of ``--seeds`` is a volume of preset clean / typical / hard by ``(s - 8100) % 3``
   (as ``bench_phases.py --seed 8100``), made once with bulk carbon-binder domains in each share of
   ``--cb-domain-fractions`` of its gaps. Never the held-out seeds 9100-9108 of ``bench_phases.py``.
2. Per volume: the model's xy/xz/yz probabilities summed (kept as float16, in ``--cache`` as ``v<seed>_<F>.npz``
   when given, so that a rerun with the same config, checkpoint and shape reads them; another is refused), the
   :func:`~libnet_mmdet.apis.phases.bulk_cb_share` *s* of their argmax, and at each constant weight 1.0, 1.1, ...,
   3.4 the mean detachment error against the truth (true labels) and the per-particle detachment r.
3. Every pair (weight ``a``, slope ``b``) of 1.0-3.4 (step 0.1) x 0-4 (step 0.25; 0 alone at ``a = 1``, the plain
   argmax) scored with each volume's weight ``max(1, a - b s)``, its error and r interpolated between the two
   nearest constant weights: chosen is the pair with the smallest worst |mean detachment error| over all volumes,
   then the largest mean r.
"""
import argparse
import os
import os.path as osp

import numpy as np
from bench_phases import REPO_ROOT, load_phase_model, pearson  # noqa: E402 (benchmarks/ is sys.path[0])
from run_record import finish_record, run_record  # noqa: E402

PRESETS = ('clean', 'typical', 'hard')
CONSTANT_WEIGHTS = tuple(round(1.0 + 0.1 * i, 1) for i in range(25))  # 1.0 (the rule's floor) ... 3.4
PAIR_WEIGHTS = CONSTANT_WEIGHTS  # 1.0 ... 3.4 (2.2 ... 3.4 until 2026-12-05: it chose the same pairs)
PAIR_SLOPES = tuple(0.25 * i for i in range(17))  # 0 ... 4


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model-dir', default=osp.join(REPO_ROOT, 'models', 'phases'))
    parser.add_argument('--seeds', type=int, nargs='+', default=list(range(8100, 8109)))
    parser.add_argument('--cb-domain-fractions', type=float, nargs='+', default=[0.0, 0.25, 0.5, 0.75])
    parser.add_argument('--shape', type=int, nargs=3, default=(64, 192, 192), metavar=('Z', 'Y', 'X'))
    parser.add_argument('--cache', help='folder for the summed probabilities (read when there)')
    parser.add_argument('--out', default=osp.join(REPO_ROOT, 'benchmarks', 'results', 'phase_weight_tuning.json'))
    args = parser.parse_args(argv)
    if any(seed >= 9100 for seed in args.seeds):
        parser.error('--seeds: 9100 and above are the held-out seeds of bench_phases.py')
    return args


def probabilities_of(model, seed, fraction, shape, cache, model_digest):
    """Summed phase probabilities (float16), compact true labels and true phases of one validation volume; read
    from ``cache`` when it holds them for this model (``model_digest``: its
    :func:`~libnet_mmdet.apis.model.model_fingerprint`, config with test_cfg and weights) and shape."""
    from libnet_mmdet.apis.phases import phase_volume_probabilities
    from libnet_mmdet.io import atomic_output
    from libnet_mmdet.io.labels import compact_labels
    from libnet_mmdet.synth import generate_volume, preset_params
    path = cache and osp.join(cache, f'v{seed}_{fraction:g}.npz')
    if path and osp.isfile(path):
        with np.load(path) as stored:
            stored_digest = str(stored['model_digest']) if 'model_digest' in stored.files else None
            if stored_digest != model_digest or tuple(stored['labels'].shape) != tuple(shape):
                raise SystemExit(f'{path}: probabilities of another model or shape (or of an older script); give '
                                 'another --cache')
            return stored['probs'], stored['labels'], stored['phases']
    volume = generate_volume(tuple(shape), preset_params(PRESETS[(seed - 8100) % 3], cb_domain_fraction=fraction),
                             seed=seed)
    probs = phase_volume_probabilities(model, volume.image_zyx)[0].astype(np.float16)
    labels = compact_labels(volume.labels_zyx)[0]
    if path:
        with atomic_output(path, 'wb') as f:
            np.savez_compressed(f, probs=probs, labels=labels, phases=volume.phases_zyx, model_digest=model_digest)
    return probs, labels, volume.phases_zyx


def score_volume(probs, labels, phases):
    """``(s, errors, rs)``: the bulk carbon-binder share and, per constant weight, the mean detachment error and r."""
    from libnet_mmdet.analysis import particle_table
    from libnet_mmdet.apis.phases import bulk_cb_share, phases_from_probabilities
    voxel_size_nm = 1.0  # any: only surface fractions are used, which count voxel faces and do not depend on it
    truth = particle_table(labels, phases_zyx=phases, voxel_size_nm=voxel_size_nm)['surface_fraction_pore'].to_numpy()
    errors, rs = [], []
    for weight in CONSTANT_WEIGHTS:
        predicted = phases_from_probabilities(probs.astype(np.float32), weight)
        detachment = particle_table(labels, phases_zyx=predicted,
                                    voxel_size_nm=voxel_size_nm)['surface_fraction_pore'].to_numpy()
        errors.append(float(detachment.mean() - truth.mean()))
        rs.append(pearson(detachment, truth))
    return bulk_cb_share(probs.argmax(0)), errors, rs


def choose_pair(volumes):
    """Every (weight, slope) pair scored over ``volumes`` (dicts with s, errors, rs), best first."""
    pairs = []
    for weight in PAIR_WEIGHTS:
        for slope in PAIR_SLOPES if weight > 1 else (0.0,):  # a slope needs a weight above 1 to lower
            used = [max(1.0, weight - slope * v['bulk_cb_share']) for v in volumes]
            errors = [float(np.interp(w, CONSTANT_WEIGHTS, v['errors'])) for w, v in zip(used, volumes)]
            rs = [float(np.interp(w, CONSTANT_WEIGHTS, v['rs'])) for w, v in zip(used, volumes)]
            pairs.append(dict(surface_pore_weight=weight, bulk_cb_slope=slope,
                              worst_abs_error=round(max(map(abs, errors)), 4), mean_r=float(np.mean(rs)),
                              errors=errors))
    return sorted(pairs, key=lambda p: (p['worst_abs_error'], -p['mean_r']))


def main(argv=None):
    args = parse_args(argv)
    record = run_record()
    files, model = load_phase_model(args.model_dir)
    from libnet_mmdet.io import write_json
    if args.cache:
        os.makedirs(args.cache, exist_ok=True)
    from libnet_mmdet.apis.model import model_fingerprint
    model_digest = model_fingerprint(model)
    volumes = []
    for fraction in args.cb_domain_fractions:
        for seed in args.seeds:
            share, errors, rs = score_volume(*probabilities_of(model, seed, fraction, args.shape, args.cache,
                                                               model_digest))
            volumes.append(dict(seed=seed, preset=PRESETS[(seed - 8100) % 3], cb_domain_fraction=fraction,
                                bulk_cb_share=share, errors=errors, rs=rs))
            at = {weight: error for weight, error in zip(CONSTANT_WEIGHTS, errors)}
            print(f"{seed} {volumes[-1]['preset']} domains {fraction:g}: s {share:.3f}, error at 1 / 2 / 3 "
                  f'{at[1.0]:+.3f} / {at[2.0]:+.3f} / {at[3.0]:+.3f}', flush=True)
    pairs = choose_pair(volumes)
    for pair in pairs[:5]:
        print(f"weight {pair['surface_pore_weight']:g}, slope {pair['bulk_cb_slope']:g}: worst |error| "
              f"{pair['worst_abs_error']:.3f}, mean r {pair['mean_r']:.3f}")
    write_json(args.out, dict(run=finish_record(record), args=vars(args), model=files,
                              constant_weights=CONSTANT_WEIGHTS, volumes=volumes, chosen=pairs[0], pairs=pairs),
               indent=1)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
