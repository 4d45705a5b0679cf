"""Phases from the phase model vs multi-Otsu: synthetic volumes of every preset, the real SegmentPy slices and the
MATBOX volume rendered through the synthetic tomography model (issue 16).

Usage:
    python benchmarks/bench_phases.py [--model-dir models/phases] [--seed 9100] [--shape 64 192 192]
        [--presets clean typical hard] [--real-dir ../shared/data/real] [--out benchmarks/results/phases.json]
        [--plots DIR] [--surface-pore-weights W [W ...]] [--generalist [DIR] [--smooth auto|none]] [--z-step N]
        [--cb-domain-fraction F]

1. Synthetic: one volume per preset (seeds ``--seed``, ``--seed + 1``, ...; the phase model's corpus uses seeds 0-31
   of the random preset), its particles given by the true labels, so that only the phases differ: per-phase IoU,
   mean damage and mean detachment (all particles) and the per-particle Pearson correlation of detachment and
   damage with the truth (also over the particles inside the volume alone: one cut by its border has part of its
   surface unseen, and over the particles of at least ``--min-voxels auto``'s size for their median diameter:
   specks of a few voxels have a few surface faces), for the model (xy/xz/yz probabilities summed, as
   tools/analyze.py predicts them) and for multi-Otsu; the detachment-vs-ESD curve (mean detachment in ESD
   quintiles) of truth, model and multi-Otsu as numbers and as a plot (``--plots``).
   ``--cb-domain-fraction F`` makes the same volumes with bulk carbon-binder domains filling a share F of the gaps
   between particles (``SynthParams.cb_domain_fraction``; the presets have none), as in real cathodes.
2. SegmentPy (``REAL/segmentpy``): per slice, IoU of pore, carbon-binder and NMC vs the expert labels. Their label
   0 is NMC; of labels 1 and 2 carbon-binder is the one brighter (median) over the pixels more than
   ``FAR_FROM_NMC_PX`` from every NMC pixel, the other pore (carbon-binder attenuates more than empty or
   resin-filled pore; next to the bright particles their blur lifts whichever class hugs them, so a mean over all
   pixels can rank them the wrong way round: :func:`segmentpy_truth`).
3. MATBOX (``REAL/matbox``): its true phases (1 NMC, 2 carbon-binder, 0 pore) split into particles
   (``split_particles``), rendered with the ``typical`` preset's imaging (``render_volume``), segmented: mean
   detachment and the per-particle detachment correlation of model and multi-Otsu phases vs the true phases (the
   split leaves specks down to one voxel: also without those, as in 1.).
4. ``--generalist``: the user's path on the synthetic volumes -- the generalist's labels (views, scale, min_voxels
   and smooth auto, as ``tools/segment.py``; ``--smooth none``: masks not smoothed) with the model's phases -- mean
   detachment and carbon-binder contact against the truth, and the per-particle detachment r over the particles
   matched to a true one (IoU > 0.5).
5. ``--z-step N``: the synthetic volumes of 1. with every N-th slice only (voxels N times longer in z): the model's
   phases from xy alone (what tools/analyze.py does on anisotropic voxels) and from all views
   (``model_all_views``).
Nothing here was tuned on these volumes or slices. ``--surface-pore-weights`` also scores the synthetic volumes with
other constant surface pore weights (:func:`~libnet_mmdet.apis.phases.phases_from_probabilities`); the model's own
phases use the weight its config sets per volume from the bulk carbon-binder share
(:func:`~libnet_mmdet.apis.phases.model_phases`, recorded per volume). The config's ``test_cfg.surface_pore_weight``
and ``bulk_cb_slope`` were chosen by ``benchmarks/tune_phase_weight.py`` on validation seeds 8100-8108 with bulk
carbon-binder in 0 / 0.25 / 0.5 / 0.75 of the gaps, never on the held-out seeds 9100-9108 (``--seed`` 9100 / 9103 /
9106).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import numpy as np
from run_record import finish_record, run_record  # noqa: E402 (benchmarks/ is sys.path[0])

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PHASE_NAMES = ('pore', 'nmc', 'carbon_binder')  # phase codes 0, 1, 2
FAR_FROM_NMC_PX = 5  # beyond the blur of the particles' edges (at 2, 3, 5, 8 and 12 px the 10 slices read alike)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model-dir', default=osp.join(REPO_ROOT, 'models', 'phases'))
    parser.add_argument('--seed', type=int, default=9100, help='first synthetic seed (default 9100)')
    parser.add_argument('--shape', type=int, nargs=3, default=(64, 192, 192), metavar=('Z', 'Y', 'X'))
    parser.add_argument('--presets', nargs='+', default=['clean', 'typical', 'hard'])
    parser.add_argument('--real-dir', default=osp.join(REPO_ROOT, '..', 'shared', 'data', 'real'))
    parser.add_argument('--skip-real', action='store_true', help='synthetic volumes only')
    parser.add_argument('--out', default=osp.join(REPO_ROOT, 'benchmarks', 'results', 'phases.json'))
    parser.add_argument('--plots', help='folder for the detachment-vs-ESD plots (PNG)')
    parser.add_argument('--generalist', nargs='?', const='auto', metavar='DIR',
                        help="also score the user's path on the synthetic volumes: the generalist's labels (DIR, "
                        'default models/generalist) with the model phases, against the truth')
    parser.add_argument('--cb-domain-fraction', type=float, default=0.0, metavar='F',
                        help='bulk carbon-binder domains in a share F of the gaps of every synthetic volume '
                        '(default 0: the presets as they are)')
    parser.add_argument('--smooth', choices=('auto', 'none'), default='auto',
                        help="the user path's smoothing of the generalist's particle masks: auto (as tools/segment.py) "
                        'or none')
    parser.add_argument('--z-step', type=int, default=1, metavar='N',
                        help='keep every N-th slice of each synthetic volume (voxels N times longer in z, as thicker '
                        'slices): the model phases from xy alone, as tools/analyze.py predicts them there, and from '
                        'all views (model_all_views) for comparison; not with --generalist')
    parser.add_argument('--surface-pore-weights', type=float, nargs='+', default=[], metavar='W',
                        help='also score the synthetic volumes with each of these constant surface pore weights '
                        "(the config's weight and slope are chosen by benchmarks/tune_phase_weight.py)")
    args = parser.parse_args(argv)
    if args.z_step < 1 or (args.z_step > 1 and args.generalist):
        parser.error('--z-step: an integer >= 1, and 1 with --generalist')
    return args


def phase_iou(phases, truth):
    """IoU of each phase (dict by name); None for a phase in neither (no IoU to score, not 0)."""
    ious = {}
    for code, name in enumerate(PHASE_NAMES):
        union = np.count_nonzero((phases == code) | (truth == code))
        ious[name] = float(np.count_nonzero((phases == code) & (truth == code)) / union) if union else None
    return ious


def pearson(a, b):
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.std(a[keep]) == 0 or np.std(b[keep]) == 0:
        return None
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def esd_curve(esd, detachment, edges):
    """Mean detachment in each ESD bin (None for an empty bin)."""
    index = np.clip(np.searchsorted(edges, esd, side='right') - 1, 0, len(edges) - 2)
    return [float(np.nanmean(detachment[index == k])) if np.any(index == k) else None
            for k in range(len(edges) - 1)]


def compare_phases(labels, truth, candidates, voxel_size_nm):
    """Scores of each candidate phase volume (dict name -> phases) against ``truth``, with the same labels; the
    ``*_sized`` scores leave out specks: labels below ``min_voxels``, what ``--min-voxels auto`` removes for the
    particles' median equivalent diameter (:func:`~libnet_mmdet.volume.min_voxels_for_particles`)."""
    from libnet_mmdet.analysis import particle_table
    from libnet_mmdet.volume import min_voxels_for_particles
    true_df = particle_table(labels, phases_zyx=truth, voxel_size_nm=voxel_size_nm)
    esd = true_df['esd_um'].to_numpy()
    edges = np.quantile(esd, np.linspace(0, 1, 6))
    inside = ~true_df['touches_border'].to_numpy()  # whole particles: a cut one's surface is partly unseen
    voxels = true_df['voxels'].to_numpy()
    min_voxels = min_voxels_for_particles(voxels)
    sized = voxels >= min_voxels  # a speck's few surface faces make its detachment and damage any number
    true_detachment = true_df['surface_fraction_pore'].to_numpy()
    result = {'n_particles': int(len(true_df)), 'n_inside': int(inside.sum()), 'min_voxels': min_voxels,
              'n_sized': int(sized.sum()), 'esd_edges_um': edges.tolist(),
              'truth': {'mean_damage': float(true_df['damage'].mean()),
                        'mean_detachment': float(true_detachment.mean()),
                        'mean_damage_sized': float(true_df['damage'][sized].mean()),
                        'mean_detachment_sized': float(true_detachment[sized].mean()),
                        'detachment_vs_esd': esd_curve(esd, true_detachment, edges)}}
    for name, phases in candidates.items():
        df = particle_table(labels, phases_zyx=phases, voxel_size_nm=voxel_size_nm)
        detachment = df['surface_fraction_pore'].to_numpy()
        result[name] = {
            'phase_iou': phase_iou(phases, truth),
            'mean_damage': float(df['damage'].mean()),
            'mean_detachment': float(detachment.mean()),
            'mean_damage_sized': float(df['damage'][sized].mean()),
            'mean_detachment_sized': float(detachment[sized].mean()),
            'mean_contact_carbon_binder': float(df['surface_fraction_carbon_binder'].mean()),
            'detachment_correlation': pearson(detachment, true_detachment),
            'detachment_correlation_inside': pearson(detachment[inside], true_detachment[inside]),
            'detachment_correlation_sized': pearson(detachment[sized], true_detachment[sized]),
            'damage_correlation': pearson(df['damage'].to_numpy(), true_df['damage'].to_numpy()),
            'detachment_vs_esd': esd_curve(esd, detachment, edges),
        }
        for key in ('mean_damage', 'mean_detachment', 'mean_damage_sized', 'mean_detachment_sized'):
            result[name][key.replace('mean_', 'error_')] = result[name][key] - result['truth'][key]
    result['truth']['mean_contact_carbon_binder'] = float(true_df['surface_fraction_carbon_binder'].mean())
    return result


def plot_curves(path, title, result):
    from matplotlib.figure import Figure
    edges = np.asarray(result['esd_edges_um'])
    centres = (edges[:-1] + edges[1:]) / 2
    figure = Figure(figsize=(5, 3.5))
    axes = figure.subplots()
    for name, style in (('truth', 'k-o'), ('model', 'b-s'), ('multi_otsu', 'r--^')):
        values = [np.nan if v is None else v for v in result[name]['detachment_vs_esd']]
        axes.plot(centres, values, style, label=name)
    axes.set(xlabel='ESD (µm), quintile bins', ylabel='mean detachment', title=title)
    axes.legend()
    figure.tight_layout()
    from libnet_mmdet.visualization import write_png
    write_png(path, figure, dpi=100)  # atomically


def model_and_otsu(model, image, weights=(), voxel_size_nm=None):
    """Candidate phases (the model's, as tools/analyze.py predicts them for ``voxel_size_nm``, multi-Otsu's and the
    model's with each surface pore weight of ``weights``, named ``model_w<weight>``; on anisotropic voxels also the
    model's from all views, ``model_all_views``), the model's views and weight (and bulk carbon-binder share) and its
    seconds."""
    from libnet_mmdet.analysis import segment_phases
    from libnet_mmdet.apis.phases import model_phases, phase_volume_probabilities, phases_from_probabilities
    started = time.perf_counter()
    probabilities, details = phase_volume_probabilities(model, image, voxel_size_nm=voxel_size_nm)
    candidates = {f'model_w{weight:g}': phases_from_probabilities(probabilities.copy(), weight) for weight in weights}
    candidates['model'], weight_details = model_phases(model, probabilities, details['outside_view'])
    seconds = time.perf_counter() - started
    if voxel_size_nm is not None and details['views'] == ['xy']:
        all_views, all_details = phase_volume_probabilities(model, image)
        candidates['model_all_views'] = model_phases(model, all_views, all_details['outside_view'])[0]
    candidates['multi_otsu'] = segment_phases(image)[0]
    return candidates, dict(weight_details, views=details['views']), seconds


def synthetic(model, args):
    from libnet_mmdet.synth import generate_volume, preset_params
    results = {}
    for offset, preset in enumerate(args.presets):
        seed = args.seed + offset
        volume = generate_volume(tuple(args.shape), preset_params(preset, cb_domain_fraction=args.cb_domain_fraction),
                                 seed=seed)
        edge = volume.params.voxel_size_nm
        image, labels, truth = (array[::args.z_step] for array in (volume.image_zyx, volume.labels_zyx,
                                                                   volume.phases_zyx))
        voxel_size_nm = (edge * args.z_step, edge, edge)
        candidates, model_details, seconds = model_and_otsu(model, image, args.surface_pore_weights,
                                                            voxel_size_nm if args.z_step > 1 else None)
        result = compare_phases(labels, truth, candidates, voxel_size_nm)
        result.update(seed=seed, shape_zyx=list(image.shape), z_step=args.z_step,
                      cb_domain_fraction=args.cb_domain_fraction, **model_details, model_seconds=round(seconds, 1))
        results[preset] = result
        print(f"{preset}: IoU pore/NMC/CB model {fmt(result['model']['phase_iou'])} otsu "
              f"{fmt(result['multi_otsu']['phase_iou'])}; damage truth {result['truth']['mean_damage']:.3f} model "
              f"{result['model']['mean_damage']:.3f} otsu {result['multi_otsu']['mean_damage']:.3f}; detachment "
              f"truth {result['truth']['mean_detachment']:.3f} model {result['model']['mean_detachment']:.3f} otsu "
              f"{result['multi_otsu']['mean_detachment']:.3f}; r model {result['model']['detachment_correlation']}"
              f" otsu {result['multi_otsu']['detachment_correlation']}; r of the {result['n_inside']} particles "
              f"inside the volume model {result['model']['detachment_correlation_inside']}, of the {result['n_sized']}"
              f" of at least {result['min_voxels']} voxels {result['model']['detachment_correlation_sized']}",
              flush=True)
        for weight in args.surface_pore_weights:
            scores = result[f'model_w{weight:g}']
            print(f"  surface pore weight {weight:g}: IoU {fmt(scores['phase_iou'])} detachment error "
                  f"{scores['error_detachment']:+.3f} r {fmt(scores['detachment_correlation'])}", flush=True)
        if args.plots:
            plot_curves(osp.join(args.plots, f'detachment_vs_esd_{preset}.png'), f'{preset} (seed {seed})', result)
        if 'model_all_views' in candidates:
            scores = result['model_all_views']
            print(f"  all views on anisotropic voxels: IoU {fmt(scores['phase_iou'])} detachment error "
                  f"{scores['error_detachment']:+.3f} r {fmt(scores['detachment_correlation'])}", flush=True)
        if args.generalist:
            result['user_path'] = user_path(args.generalist, volume, candidates['model'], result['truth'],
                                            args.smooth)
    return results


def user_path(segmenter, volume, phases, truth, smooth='auto'):
    """What a user gets: the generalist's labels (``tools/segment.py``'s defaults: views, scale, min_voxels and
    smooth auto) with the model's phases; mean detachment and carbon-binder contact against the truth (true labels and
    phases), and the per-particle detachment r over the particles matched to a true one at IoU > 0.5."""
    from libnet_mmdet.analysis import particle_table
    from libnet_mmdet.apis import segment_volume
    from libnet_mmdet.evaluation.matching import pairwise_iou
    labels = np.asarray(segment_volume(segmenter, volume.image_zyx, views='auto', min_voxels='auto',
                                       smooth=None if smooth == 'none' else smooth, progress=False))
    df = particle_table(labels, phases_zyx=phases, voxel_size_nm=volume.params.voxel_size_nm)
    true_df = particle_table(volume.labels_zyx, phases_zyx=volume.phases_zyx, voxel_size_nm=volume.params.voxel_size_nm)
    true_rank, rank, iou = pairwise_iou(volume.labels_zyx, labels)[:3]  # ranks follow the tables' sorted ids
    matched = iou > 0.5  # one-to-one at IoU > 0.5
    scores = {'n_particles': int(len(df)), 'n_matched': int(matched.sum()),
              'mean_detachment': float(df['surface_fraction_pore'].mean()),
              'mean_contact_carbon_binder': float(df['surface_fraction_carbon_binder'].mean()),
              'detachment_correlation_matched': pearson(
                  df['surface_fraction_pore'].to_numpy()[rank[matched]],
                  true_df['surface_fraction_pore'].to_numpy()[true_rank[matched]])}
    for key in ('mean_detachment', 'mean_contact_carbon_binder'):
        scores[key.replace('mean_', 'error_')] = scores[key] - truth[key]
    print(f"  user path (generalist labels, model phases): detachment {scores['mean_detachment']:.3f} (error "
          f"{scores['error_detachment']:+.3f}), carbon-binder contact {scores['mean_contact_carbon_binder']:.3f} "
          f"(error {scores['error_contact_carbon_binder']:+.3f}); r of the {scores['n_matched']} particles matched "
          f"to a true one (IoU > 0.5) {fmt(scores['detachment_correlation_matched'])}", flush=True)
    return scores


def fmt(value):
    """A number as printed (None: 'n/a'), or the IoUs of a :func:`phase_iou` dict joined by '/'."""
    if isinstance(value, dict):
        return '/'.join(fmt(value[name]) for name in PHASE_NAMES)
    return 'n/a' if value is None else f'{value:.3f}'


def segmentpy_truth(image, label):
    """``(truth, carbon_binder_label, medians)``: the phases (H, W) uint8 (0 pore, 1 NMC, 2 carbon-binder) of a
    SegmentPy label map (H, W) (0 NMC; 1 and 2 pore and carbon-binder in either order), carbon-binder taken as the
    label of 1 and 2 whose pixels more than ``FAR_FROM_NMC_PX`` from every NMC pixel are brighter (median of
    ``image``), and those two medians by label."""
    from scipy import ndimage as ndi
    far = ndi.distance_transform_edt(label != 0) > FAR_FROM_NMC_PX
    if not (far & (label == 1)).any() or not (far & (label == 2)).any():
        raise ValueError(f'labels 1 and 2 need pixels more than {FAR_FROM_NMC_PX} px from NMC (label 0) to be told '
                         'apart')
    medians = {code: float(np.median(image[far & (label == code)])) for code in (1, 2)}
    carbon_binder = max(medians, key=medians.get)
    truth = np.zeros(label.shape, np.uint8)  # pore
    truth[label == 0] = 1  # NMC
    truth[label == carbon_binder] = 2
    return truth, carbon_binder, medians


def segmentpy(model, folder):
    import tifffile
    from libnet_mmdet.analysis import segment_phases
    from libnet_mmdet.apis import predict_phases
    rows = []
    names = sorted((n[:-len('_label.tif')] for n in os.listdir(folder) if n.endswith('_label.tif')), key=int)
    for name in names:
        image = tifffile.imread(osp.join(folder, f'{name}.tif')).astype(np.float32)
        label = tifffile.imread(osp.join(folder, f'{name}_label.tif'))
        truth, carbon_binder, medians = segmentpy_truth(image, label)
        predicted, details = predict_phases(model, image)
        otsu = segment_phases(image[None])[0][0]
        rows.append({'slice': name, 'shape': list(image.shape), 'carbon_binder_label': carbon_binder,
                     'far_median_by_label': medians,
                     'model': phase_iou(predicted, truth), 'multi_otsu': phase_iou(otsu, truth),
                     'surface_pore_weight': details['surface_pore_weight'], 'bulk_cb_share': details['bulk_cb_share']})
        print(f"segmentpy {name}: IoU pore/NMC/CB model {fmt(rows[-1]['model'])} otsu {fmt(rows[-1]['multi_otsu'])}"
              f" (weight {details['surface_pore_weight']:.2f})", flush=True)
    return rows


def matbox(model, path):
    import tifffile
    from libnet_mmdet.analysis import split_particles
    from libnet_mmdet.synth import preset_params, render_volume
    phases = tifffile.imread(path).astype(np.uint8)
    labels = split_particles(phases == 1)
    params = preset_params('typical')
    started = time.perf_counter()
    image = render_volume(labels, phases, params, seed=0)
    render_seconds = time.perf_counter() - started
    candidates, model_details, seconds = model_and_otsu(model, image)
    result = compare_phases(labels, phases, candidates, params.voxel_size_nm)
    result.update(shape_zyx=list(phases.shape), **model_details, render_seconds=round(render_seconds, 1),
                  model_seconds=round(seconds, 1))
    print(f"matbox: IoU model {fmt(result['model']['phase_iou'])} otsu {fmt(result['multi_otsu']['phase_iou'])}; "
          f"detachment truth {result['truth']['mean_detachment']:.3f} model {result['model']['mean_detachment']:.3f}"
          f" otsu {result['multi_otsu']['mean_detachment']:.3f}; r model {result['model']['detachment_correlation']}"
          f" otsu {result['multi_otsu']['detachment_correlation']}; without the specks below {result['min_voxels']} "
          f"voxels ({result['n_sized']} of {result['n_particles']}): r model "
          f"{result['model']['detachment_correlation_sized']} otsu "
          f"{result['multi_otsu']['detachment_correlation_sized']}, damage truth "
          f"{result['truth']['mean_damage_sized']:.4f} model {result['model']['mean_damage_sized']:.4f} otsu "
          f"{result['multi_otsu']['mean_damage_sized']:.4f}", flush=True)
    return result


def load_phase_model(model_dir):
    """``(files, model)``: the phase model built in ``model_dir`` (config and checkpoint paths) loaded on the CPU;
    exits with one line when there is none."""
    sys.path.insert(0, REPO_ROOT)
    from libnet_mmdet.apis import phase_model_files
    from libnet_mmdet.apis.phases import init_phase_model
    files = phase_model_files(model_dir)
    if files is None:
        raise SystemExit(f'{model_dir}: no phase model built there (make model)')
    return files, init_phase_model(*files, device='cpu')


def main(argv=None):
    args = parse_args(argv)
    files, model = load_phase_model(args.model_dir)
    from libnet_mmdet.io import atomic_output
    if args.plots:
        os.makedirs(args.plots, exist_ok=True)
    if args.generalist:
        from libnet_mmdet.apis import generalist_files, init_segmenter
        generalist = generalist_files(None if args.generalist == 'auto' else args.generalist)
        if generalist is None:
            raise SystemExit(f'{args.generalist}: no generalist built there (make model)')
        args.generalist = init_segmenter(*generalist, device='cpu')
    started = time.time()
    report = dict(run_record(), model=files, synthetic=synthetic(model, args))
    segmentpy_dir, matbox_path = (osp.join(args.real_dir, 'segmentpy'),
                                  osp.join(args.real_dir, 'matbox', 'nmc-1-cal_generatedCBD_bridge.tif'))
    if not args.skip_real and osp.isdir(segmentpy_dir):
        report['segmentpy'] = segmentpy(model, segmentpy_dir)
    if not args.skip_real and osp.isfile(matbox_path):
        report['matbox'] = matbox(model, matbox_path)
    with atomic_output(args.out) as f:
        json.dump(finish_record(dict(report, seconds=round(time.time() - started, 1))), f, indent=1)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
