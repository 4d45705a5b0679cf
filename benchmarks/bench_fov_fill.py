"""The fill around a reconstructed field of view: what the models see there, and what it does inside the disc.

Usage:
    python benchmarks/bench_fov_fill.py [--cases development|held-out] [--generalist models/generalist]
        [--out benchmarks/results/fov_fill.json]

Each case is one synthetic volume (12 x 160 x 160, bulk carbon-binder in half the gaps) segmented three ways: as
generated ("none"), and with the voxels outside a disc of radius 80 set to 0 as reconstruction software writes
them, the models shown that fill as the nearest pixel inside ("nearest", the fill until 2026-12-07) or as its mirror
image across it ("mirror", :func:`~libnet_mmdet.io.images.fill_by_mirror`). Scored inside the disc only, against
the true labels and phases cut to it:

* ``interior_detachment``: the mean detachment of the particles not touching the rim, phases from ``models/phases``
  at a fixed pore weight (:data:`WEIGHT`, so that only the fill differs), the outside taken as pore; and the same
  with the true phases (``truth``);
* ``agreement``: the share of voxels inside whose phase equals the one predicted without a fill;
* ``f1_2d``: the generalist's 2D F1@0.5 on xy slices :data:`SLICES` (``segment_image``, ``scale='auto'``).

``development`` (seeds 4, 11, 12) chose the fill; ``held-out`` (seeds 9100-9102, the phase benchmark's) reports it.
"""
import argparse
import os.path as osp

import numpy as np
from bench_margins import load_models  # noqa: E402 (benchmarks/ is sys.path[0])
from run_record import finish_record, run_record  # noqa: E402

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CASES = {'development': (('typical', 4, 12), ('hard', 11, 16), ('typical', 12, 20)),
         'held-out': (('clean', 9100, 12), ('typical', 9101, 16), ('hard', 9102, 20))}
SHAPE, RADIUS = (12, 160, 160), 80
WEIGHT = 1.5
SLICES = (3, 8)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--cases', choices=sorted(CASES), default='held-out')
    parser.add_argument('--generalist', default=None, help='folder with config.py + model.pth (default: '
                        'models/generalist)')
    parser.add_argument('--out', default=osp.join(REPO_ROOT, 'benchmarks', 'results', 'fov_fill.json'))
    return parser.parse_args(argv)


def nearest_fill(image, mask):
    """The fill until 2026-12-07: each pixel of ``mask`` the value of the nearest pixel outside it."""
    from scipy import ndimage as ndi
    _, (rows, cols) = ndi.distance_transform_edt(np.asarray(mask, bool), return_indices=True)
    return np.asarray(image)[rows, cols]


def interior_detachment(labels, phases, rim_ids):
    from libnet_mmdet.analysis import particle_table
    table = particle_table(labels, phases_zyx=phases, voxel_size_nm=50)
    return float(table.loc[~table['id'].isin(rim_ids), 'surface_fraction_pore'].mean())


def main(argv=None):
    run = run_record()
    args = parse_args(argv)
    detector, phase_model = load_models(args.generalist, 'bench_fov_fill')
    from scipy import ndimage as ndi

    import libnet_mmdet.io.images as images
    from libnet_mmdet.apis import segment_image
    from libnet_mmdet.apis.phases import phase_volume_probabilities, phases_from_probabilities
    from libnet_mmdet.evaluation import match_instances
    from libnet_mmdet.io import write_json
    from libnet_mmdet.synth import generate_volume, preset_params
    fills = dict(none=None, nearest=nearest_fill, mirror=images.fill_by_mirror)
    yy, xx = np.mgrid[:SHAPE[1], :SHAPE[2]]
    outside = (yy - (SHAPE[1] - 1) / 2) ** 2 + (xx - (SHAPE[2] - 1) / 2) ** 2 > RADIUS ** 2
    rim = ndi.binary_dilation(outside, iterations=2) & ~outside
    results = {}
    try:
        for preset, seed, diameter in CASES[args.cases]:
            volume = generate_volume(SHAPE, preset_params(preset, mean_diameter_vox=diameter, cb_domain_fraction=0.5),
                                     seed=seed)
            labels = np.where(outside, 0, volume.labels_zyx)
            rim_ids = np.setdiff1d(np.unique(labels[:, rim]), [0])
            row = dict(truth=round(interior_detachment(labels, np.where(outside, 0, volume.phases_zyx), rim_ids), 4))
            plain_phases = None
            for name, fill in fills.items():
                image = volume.image_zyx.copy()
                if fill is not None:
                    image[:, outside] = 0
                    images.fill_by_mirror = fill  # what fill_outside_view (the loaders) shows the models
                probabilities, _ = phase_volume_probabilities(phase_model, image)
                predicted = np.where(outside, 0, phases_from_probabilities(probabilities, WEIGHT))
                plain_phases = predicted if fill is None else plain_phases
                f1 = [float(match_instances(labels[z], np.where(outside, 0, segment_image(detector, image[z])[0]),
                                            thresholds=0.5)['f1'].iloc[0]) for z in SLICES]
                row[name] = dict(interior_detachment=round(interior_detachment(labels, predicted, rim_ids), 4),
                                 agreement=round(float(np.mean(predicted[:, ~outside] == plain_phases[:, ~outside])),
                                                 4),
                                 f1_2d=[round(value, 3) for value in f1])
            results[f'{preset}/{seed}/{diameter}px'] = row
            print(f'{preset} seed {seed} {diameter} px: {row}', flush=True)
    finally:
        images.fill_by_mirror = fills['mirror']
    write_json(args.out, dict(run=finish_record(run), args=vars(args), weight=WEIGHT, results=results))
    print('wrote', args.out)


if __name__ == '__main__':
    main()
