"""Empty margins: do the generalist and the phase model invent particles / NMC where there is no sample?

Usage:
    python benchmarks/bench_margins.py [--presets typical hard] [--seed 9100] [--shape 48 160 160] [--pad 16]
        [--generalist models/generalist] [--out benchmarks/results/margins.json]

Real scans rarely hold material in every slice: the sample ends above and below (slices of air), and the
reconstruction leaves the corners outside the field of view at a fill value. For each preset, one held-out
synthetic volume (seed ``--seed`` + preset index; the models' corpus uses seeds 0-31 of the random preset) is
segmented as a user would (``segment_volume``, xy linking, ``scale='auto'``; ``predict_phases``, xy/xz/yz), in
three versions of the same microstructure, rendered through the same tomography model:

* ``plain``: the volume as generated;
* ``air``: ``--pad`` slices of pore (air) added above and below before rendering;
* ``fov``: the plain image with the voxels outside the inscribed cylinder (radius X / 2) set to 0, as
  reconstruction software fills them; particles are scored inside the cylinder only.

Reported per case: particle 3D F1@0.5 (linking) against the true labels where they are known (everywhere; inside
the cylinder for ``fov``: particles in air are false positives); predicted particles
lying entirely in the margin and the fraction of margin voxels given a particle; for the phases, the fraction of
margin voxels called NMC / carbon-binder, the phase accuracy in the sample region and the error of the mean
detachment of the true particles (in the cylinder for ``fov``) with the model's phases against the true phases
(the margin pore in both); for ``fov`` also the F1 of
the plain volume's particles cut to the same cylinder (what seeing the fill costs), for ``air`` the F1 of its
sample slices segmented alone (the padded volume is rendered afresh, so its sample slices are not the plain image).
Nothing is tuned here.
"""
import argparse
import os.path as osp
import sys
import time

import numpy as np
from run_record import finish_record, run_record  # noqa: E402 (benchmarks/ is sys.path[0])

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--generalist', default=None, help='folder with config.py + model.pth (default: '
                        'models/generalist)')
    parser.add_argument('--presets', nargs='+', default=['typical', 'hard'])
    parser.add_argument('--seed', type=int, default=9100)
    parser.add_argument('--shape', type=int, nargs=3, default=(48, 160, 160), metavar=('Z', 'Y', 'X'))
    parser.add_argument('--pad', type=int, default=16, help='air slices above and below (default 16)')
    parser.add_argument('--out', default=osp.join(REPO_ROOT, 'benchmarks', 'results', 'margins.json'))
    return parser.parse_args(argv)


def cases(volume, params, seed, pad):
    """``{name: (image_zyx, true_labels_zyx, true_phases_zyx, margin_zyx, scored_zyx)}`` of the three versions:
    ``margin_zyx`` marks the voxels without sample, ``scored_zyx`` those where the true labels are known."""
    from libnet_mmdet.synth import render_volume
    depth, height, width = volume.labels_zyx.shape
    padding = ((pad, pad), (0, 0), (0, 0))
    labels, phases = np.pad(volume.labels_zyx, padding), np.pad(volume.phases_zyx, padding)
    air_margin = np.ones(labels.shape, bool)
    air_margin[pad:pad + depth] = False
    yy, xx = np.mgrid[:height, :width]
    inside = (yy - (height - 1) / 2) ** 2 + (xx - (width - 1) / 2) ** 2 <= (width / 2) ** 2
    fov_image = volume.image_zyx.copy()
    fov_image[:, ~inside] = 0
    fov_sample = np.broadcast_to(inside, volume.labels_zyx.shape)
    everywhere = np.ones(volume.labels_zyx.shape, bool)
    return {'plain': (volume.image_zyx, volume.labels_zyx, volume.phases_zyx, ~everywhere, everywhere),
            'air': (render_volume(labels, phases, params, seed=seed), labels, phases, air_margin,
                    np.ones(labels.shape, bool)),
            'fov': (fov_image, np.where(fov_sample, volume.labels_zyx, 0), volume.phases_zyx, ~fov_sample,
                    fov_sample)}


def mean_detachment(labels, phases, margin):
    """Mean detachment (share of a particle's surface facing pore) of the particles ``labels``, the margin taken as
    pore (no sample there; the model's phases call it pore)."""
    from libnet_mmdet.analysis import PORE, particle_table
    table = particle_table(labels, phases_zyx=np.where(margin, PORE, phases).astype(np.uint8), voxel_size_nm=50)
    return float(table['surface_fraction_pore'].mean())


def score_case(generalist, phase_model, image, labels, phases, margin, scored):
    from libnet_mmdet.apis import predict_phases, segment_volume
    from libnet_mmdet.evaluation import match_instances
    started = time.perf_counter()
    predicted = np.asarray(segment_volume(generalist, image, views=('xy',), progress=False))
    instance_seconds = time.perf_counter() - started
    sample = ~margin
    in_sample = np.unique(predicted[sample])
    in_margin = np.unique(predicted[margin])
    only_margin = np.setdiff1d(in_margin[in_margin > 0], in_sample)
    f1 = float(match_instances(labels, np.where(scored, predicted, 0), thresholds=0.5)['f1'].iloc[0])
    started = time.perf_counter()
    predicted_phases, _ = predict_phases(phase_model, image)
    phase_seconds = time.perf_counter() - started
    row = dict(f1_3d=round(f1, 4), particles=int(len(np.unique(predicted)) - 1),
               particles_only_in_margin=int(only_margin.size),
               phase_accuracy_in_sample=round(float((predicted_phases[sample] == phases[sample]).mean()), 4),
               detachment_error=round(mean_detachment(labels, predicted_phases, margin)
                                      - mean_detachment(labels, phases, margin), 4),
               instance_seconds=round(instance_seconds, 1), phase_seconds=round(phase_seconds, 1))
    if margin.any():
        row.update(margin_voxels_in_particles=round(float((predicted[margin] > 0).mean()), 4),
                   margin_nmc=round(float((predicted_phases[margin] == 1).mean()), 4),
                   margin_carbon_binder=round(float((predicted_phases[margin] == 2).mean()), 4))
    return row, predicted


def load_models(generalist_dir, script):
    """``(generalist, phase_model)`` on the CPU: the generalist of ``generalist_dir`` (None: models/generalist) and
    models/phases; exits naming ``script`` when either is not built."""
    sys.path.insert(0, REPO_ROOT)
    from libnet_mmdet.apis import generalist_files, init_phase_model, init_segmenter, phase_model_files
    generalist, phases = generalist_files(generalist_dir), phase_model_files()
    if generalist is None or phases is None:
        sys.exit(f'{script}: needs {generalist_dir or "models/generalist"} and models/phases (make model)')
    return init_segmenter(*generalist, device='cpu'), init_phase_model(*phases, device='cpu')


def main(argv=None):
    run = run_record()
    args = parse_args(argv)
    generalist, phase_model = load_models(args.generalist, 'bench_margins')
    from libnet_mmdet.apis import segment_volume
    from libnet_mmdet.evaluation import match_instances
    from libnet_mmdet.io import write_json
    from libnet_mmdet.synth import generate_volume, preset_params
    results = {}
    for offset, preset in enumerate(args.presets):
        seed = args.seed + offset
        params = preset_params(preset)
        volume = generate_volume(tuple(args.shape), params, seed=seed)
        plain = None
        for name, case in cases(volume, params, seed, args.pad).items():
            row, predicted = score_case(generalist, phase_model, *case)
            plain = predicted if name == 'plain' else plain
            if name == 'fov':  # the plain volume's particles scored in the same region: what the fill costs
                row['f1_3d_plain_in_region'] = round(float(match_instances(
                    case[1], np.where(case[4], plain, 0), thresholds=0.5)['f1'].iloc[0]), 4)
            if name == 'air':  # its sample slices alone (rendered with the air, so not the plain image)
                sample = slice(args.pad, args.pad + args.shape[0])
                alone = np.asarray(segment_volume(generalist, case[0][sample], views=('xy',), progress=False))
                row['f1_3d_sample_alone'] = round(float(match_instances(
                    case[1][sample], alone, thresholds=0.5)['f1'].iloc[0]), 4)
            results[f'{preset}/{name}'] = dict(row, seed=seed, shape_zyx=list(case[0].shape))
            print(f'{preset}/{name}: {row}', flush=True)
    write_json(args.out, dict(run=finish_record(run), args=vars(args), results=results))
    print('wrote', args.out)


if __name__ == '__main__':
    main()
