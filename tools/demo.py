"""One-command demo: synthetic nano-CT -> train -> segment a held-out volume in 3D -> score -> analyse -> report.

Usage:
    python tools/demo.py [--out demo_out] [--model auto|generalist|own] [--iters 1000] [--device cpu|cuda:0]
                         [--recipe tiny|r101] [--voxel-size-nm 100] [--size full|small] [--overwrite]

Steps (each skipped when its output already exists, so an interrupted demo continues where it stopped; ``OUT/demo.json``
records the settings, and a run with other settings is refused unless ``--overwrite`` starts the folder afresh):
  1. data:     a synthetic training volume and a separate held-out volume with exact 3D ground truth
  2. model:    the generalist (``models/generalist``, built by ``make model``) when it exists: no training, slices
               rescaled automatically; otherwise train the CPU-tiny config (``--recipe r101`` on a GPU: the real R101
               recipe) on all xy/xz/yz slices of the training volume, through ``tools/train.py``. The demo says which.
  3. segment:  the held-out volume in 3D, xy slices linked (``views=('xy',)``) and xy/xz/yz views fused
  4. baseline: the classic watershed, its settings tuned on the training volume
  5. evaluate: 3D and per-slice instance matching, count and size errors against the ground truth
  6. analyse:  per-particle statistics of the fused result (size, sphericity, damage, carbon-binder contact/detachment) and plots
Writes ``<out>/report.md`` (tables and plots, the labels over three orthogonal slices among them) and prints its path.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import time

from libnet_mmdet.cli import add_debug_arg, add_overwrite_arg, device_name, exit_on_error, positive_int, run_train_tool
from libnet_mmdet.io import InputError
from libnet_mmdet.volume import min_voxels_for_diameter

TOOL = osp.basename(__file__)
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RECIPES = {
    'tiny': osp.join(REPO_ROOT, 'configs', 'nmc', 'mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py'),
    'r101': osp.join(REPO_ROOT, 'configs', 'nmc', 'mask-rcnn_r101_fpn.py'),
}
# Volumes: (Z, Y, X) shapes of the training and the held-out volume, by --size ('small' is for the tests).
VOLUME_SHAPES = {'full': ((64, 192, 192), (48, 160, 160)), 'small': ((24, 96, 96), (16, 80, 80))}
SEEDS = {'train': 1, 'test': 2}
SYNTH_SETTINGS = dict(preset='typical', mean_diameter_vox=22.0)
# Smallest particle kept (smaller fragments of the 3D assembly are merged into the particle they touch): a sphere
# a third of the mean diameter across, what a user would pass as --min-voxels knowing their powder.
MIN_VOXELS = min_voxels_for_diameter(SYNTH_SETTINGS['mean_diameter_vox'])
SMOOTH = 'auto'  # as tools/segment.py: the fused particles' masks smoothed, linked ones not


def step(title):
    print(f'\n=== {title} ===', flush=True)


def make_volume(folder, shape, seed, voxel_size_nm):
    """Generate one synthetic volume into ``folder`` (image.tif, labels.tif, phases.tif, particles.csv)."""
    from libnet_mmdet.synth import generate_volume, preset_params, write_dataset
    if osp.isfile(osp.join(folder, 'params.json')):
        print(f'{folder}: exists, kept')
        return
    params = preset_params(SYNTH_SETTINGS['preset'], mean_diameter_vox=SYNTH_SETTINGS['mean_diameter_vox'],
                           voxel_size_nm=voxel_size_nm)
    volume = generate_volume(shape, params, seed=seed)
    write_dataset(folder, volume, coco=False, via=False, overwrite=True)
    print(f'{folder}: {shape} voxels, {int(volume.labels_zyx.max())} particles')


def write_train_config(path, recipe, train_dir, iters):
    """A config inheriting ``recipe`` that trains ``iters`` iterations on all slices of the training stack."""
    checkpoint_every = max(iters // 4, 1)
    text = f"""# Written by tools/demo.py: {osp.basename(recipe)} trained on the synthetic training volume.
_base_ = {recipe!r}
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LabelTiffDataset',  # every xy, xz and yz slice of the training stack is a sample
        data_root={train_dir + '/'!r},
        data_prefix=dict(img='image.tif', label='labels.tif'),
        slice_axes=('z', 'y', 'x'),
        skip_empty=True,
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline={{{{_base_.train_pipeline}}}}))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={iters}, val_interval={iters + 1})
val_cfg = None  # the held-out volume is scored in 3D by the demo itself
val_dataloader = None
val_evaluator = None
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end={min(50, iters)}),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end={iters}, milestones=[{int(iters * 0.8)}], gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval={checkpoint_every}, max_keep_ckpts=2, save_best=None))
log_processor = dict(by_epoch=False)
"""
    from libnet_mmdet.io import atomic_output
    with atomic_output(path) as f:
        f.write(text)


def train(out, recipe, iters, device):
    """Train through tools/train.py (resuming an interrupted run); return the final checkpoint path."""
    from mmengine.runner import find_latest_checkpoint
    work_dir = osp.join(out, 'work_dir')
    final = osp.join(work_dir, f'iter_{iters}.pth')
    # finished when the hook recorded the final checkpoint as saved (a file cut short by a kill: resumed, not loaded)
    if osp.isdir(work_dir) and osp.abspath(find_latest_checkpoint(work_dir) or '') == osp.abspath(final):
        print(f'{final}: exists, training skipped')
        return final
    config = osp.join(out, 'train_config.py')
    write_train_config(config, recipe, osp.abspath(osp.join(out, 'train')), iters)
    seconds = run_train_tool(config, work_dir, device)
    record_seconds(out, 'train', seconds)
    print(f'trained {iters} iterations in {seconds:.0f} s')
    return final


def choose_model(args):
    """``{'kind', 'config', 'checkpoint'}``: the generalist (``make model``) when it is built and ``--model`` is
    ``auto`` or ``generalist``, else the demo's own short training (step 2)."""
    from libnet_mmdet.apis import generalist_files
    files = generalist_files()
    if args.model == 'generalist' and files is None:
        raise FileNotFoundError('--model generalist: models/generalist is not built; run `make model` first')
    if files is not None and args.model != 'own':
        with open(osp.join(osp.dirname(files[1]), 'model.json')) as f:
            built = json.load(f).get('built')  # a rebuilt generalist has the same paths
        return dict(kind='generalist', config=files[0], checkpoint=files[1], built=built)
    return dict(kind='own', config=osp.join(args.out, 'train_config.py'), checkpoint=None)


def forget_other_predictions(out, made_with):
    """Remove the predictions of an earlier run that were made otherwise: ``made_with`` (the model files and the
    segmentation settings, recorded in ``OUT/model.json``) differs (own training / a generalist built at another
    time, another smoothing)."""
    from libnet_mmdet.io import write_json
    path = osp.join(out, 'model.json')
    if osp.isfile(path):
        with open(path) as f:
            if json.load(f) == made_with:
                return
    for name in ('pred_labels_xy.tif', 'pred_labels_xyz.tif', 'scores.csv'):
        if osp.isfile(osp.join(out, name)):
            os.remove(osp.join(out, name))
    write_json(path, made_with)


def segment(out, model_files, device, voxel_size_nm):
    """Segment the held-out volume with xy linking and with xy/xz/yz fusion; return {name: (path, seconds)}."""
    from libnet_mmdet.apis import init_segmenter, segment_volume
    model = init_segmenter(model_files['config'], model_files['checkpoint'], device=device)
    results = {}
    for name, views in (('xy', ('xy',)), ('xyz', ('xy', 'xz', 'yz'))):
        path = osp.join(out, f'pred_labels_{name}.tif')
        if not osp.isfile(path):
            started = time.time()
            segment_volume(model, osp.join(out, 'test', 'image.tif'), out=path, views=views,
                           voxel_size_nm=voxel_size_nm, min_voxels=MIN_VOXELS, smooth=SMOOTH)
            record_seconds(out, name, time.time() - started)
        results[name] = path
        print(f'{path}: views {views}')
    return results


def baseline(out, voxel_size_nm):
    """Tune the watershed on the training volume, run it on the held-out one; return (path, settings)."""
    import tifffile
    from libnet_mmdet.analysis import tune_watershed, watershed_segment
    from libnet_mmdet.io import write_json
    path = osp.join(out, 'pred_labels_watershed.tif')
    settings_path = osp.join(out, 'watershed_settings.json')
    if osp.isfile(path) and osp.isfile(settings_path):
        print(f'{path}: exists, kept')
        with open(settings_path) as f:
            return path, json.load(f)
    started = time.time()
    settings, table = tune_watershed(tifffile.imread(osp.join(out, 'train', 'image.tif')),
                                     tifffile.imread(osp.join(out, 'train', 'labels.tif')), voxel_size_nm)
    print(table.round(3).head(5).to_string())
    record_seconds(out, 'watershed_tuning', time.time() - started)
    started = time.time()
    labels = watershed_segment(tifffile.imread(osp.join(out, 'test', 'image.tif')), **settings)
    record_seconds(out, 'watershed', time.time() - started)
    write_labels(path, labels, voxel_size_nm)
    write_json(settings_path, settings)
    print(f'{path}: watershed {settings}')
    return path, settings


def record_seconds(out, step_name, seconds):
    """Keep how long a step took in ``<out>/timings.json``, so a resumed demo still reports it."""
    from libnet_mmdet.io import write_json
    timings = load_seconds(out)
    timings[step_name] = round(seconds, 1)
    write_json(osp.join(out, 'timings.json'), timings, indent=1)


def load_seconds(out):
    path = osp.join(out, 'timings.json')
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def write_labels(path, labels_zyx, voxel_size_nm):
    from libnet_mmdet.io import write_tiff
    write_tiff(path, labels_zyx, voxel_size_nm, overwrite=True)  # this demo's own, of a stopped run


def evaluate(out, predictions, voxel_size_nm):
    """Score every prediction against the held-out ground truth; return the table (one row per method)."""
    import tifffile
    from libnet_mmdet.evaluation import compare_methods
    gt = tifffile.imread(osp.join(out, 'test', 'labels.tif'))
    from libnet_mmdet.io import atomic_output
    table = compare_methods(gt, {name: tifffile.imread(path) for name, path in predictions.items()}, voxel_size_nm)
    with atomic_output(osp.join(out, 'scores.csv')) as f:
        table.to_csv(f)
    print(table.round(3).to_string())
    return table


def analyse(out, pred_path, voxel_size_nm, device):
    """Particle statistics of the prediction (phases from the image: the phase model of ``make model`` when built,
    else multi-Otsu, approximate) and of the ground truth."""
    import tifffile
    from libnet_mmdet.analysis import PHASES_GIVEN, PHASES_MODEL, particle_table, summarize, write_report
    from libnet_mmdet.apis import init_phase_model, phase_model_files, predict_phases
    gt_labels = tifffile.imread(osp.join(out, 'test', 'labels.tif'))
    phases = tifffile.imread(osp.join(out, 'test', 'phases.tif'))
    truth = summarize(particle_table(gt_labels, phases_zyx=phases, voxel_size_nm=voxel_size_nm))
    labels = tifffile.imread(pred_path)
    if not labels.any():
        print('the model found no particle (a model trained here: train longer, --iters)')
        return None, truth
    image = tifffile.imread(osp.join(out, 'test', 'image.tif'))
    phase_files, predicted_phases, phase_source = phase_model_files(), None, PHASES_GIVEN
    if phase_files:
        print(f'phases: the phase model in {osp.dirname(phase_files[0])}')
        predicted_phases = predict_phases(init_phase_model(*phase_files, device=device), image)[0]
        phase_source = PHASES_MODEL
    else:
        print('phases: multi-Otsu of the image (approximate; `make model` builds the phase model)')
    predicted = particle_table(labels, phases_zyx=predicted_phases, image_zyx=image, voxel_size_nm=voxel_size_nm,
                               phase_source=phase_source)
    summary = write_report(predicted, osp.join(out, 'analysis'), labels_zyx=labels, image_zyx=image,
                           phases_zyx=predicted_phases, overwrite=True)  # the demo's own folder, recomputed
    return summary, truth


PHASE_SOURCES = {'model': 'from the phase model of `make model` (models/phases)',
                 'multi_otsu_approximate': 'from a multi-Otsu segmentation of the image (approximate; `make model` '
                 'builds the phase model)'}
SUMMARY_ROWS = [
    ('particles', lambda s: s['n_particles']),
    ('ESD D10 (µm)', lambda s: s['esd_um']['d10']),
    ('ESD D50 (µm)', lambda s: s['esd_um']['d50']),
    ('ESD D90 (µm)', lambda s: s['esd_um']['d90']),
    ('mean sphericity', lambda s: s['mean_sphericity']),
    ('mean damage', lambda s: s['mean_damage']),
    ('mean carbon-binder contact', lambda s: s['mean_contact_carbon_binder']),
    ('mean detachment (pore contact)', lambda s: s['mean_detachment']),
]


def markdown_table(rows, columns):
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(format_cell(value) for value in row) + ' |' for row in rows]
    return '\n'.join(lines)


def format_cell(value):
    if isinstance(value, float):
        return f'{value:.3f}'
    return str(value)


def describe_model(out, args, model_files):
    """The report's paragraph on the model used."""
    if model_files['kind'] == 'generalist':
        with open(osp.join(osp.dirname(model_files['checkpoint']), 'model.json')) as f:
            facts = json.load(f)
        return (f"The generalist (`make model`, `{osp.relpath(osp.dirname(model_files['checkpoint']), REPO_ROOT)}`): "
                f"`{facts['recipe']}`, {facts['iters']} iterations on {facts['corpus_volumes']} randomised synthetic "
                f"volumes (built {facts['built']}); it never saw these volumes. Slices rescaled automatically "
                f"(`scale='auto'`, particles {facts['particle_diameter_px'][0]}-{facts['particle_diameter_px'][1]} "
                'px as the model sees them).')
    timings = load_seconds(out)
    return (f"Trained by this demo (no generalist built: `make model`): `{osp.relpath(RECIPES[args.recipe], REPO_ROOT)}`, "
            f"{args.iters} iterations on all xy/xz/yz slices of the training volume ({timings.get('train', '?')} s on "
            f"this machine). Checkpoint: `{osp.relpath(model_files['checkpoint'], args.out)}`.")


def write_report(out, args, scores, model_files, watershed_settings, summary, truth):
    timings = load_seconds(out)
    method_names = {'xy': 'ours, xy slices linked', 'xyz': 'ours, xy/xz/yz fused',
                    'watershed': f'classic watershed (tuned: {watershed_settings})'}
    columns = ['method', 'F1@0.5 (3D)', 'F1@0.75 (3D)', 'mean acc. (3D)', 'PQ (3D)', 'count error',
               'D50 rel. error', 'F1@0.5 (2D)', 'mean acc. (2D)', 'seconds (held-out volume)']
    keys = ['f1_50', 'f1_75', 'accuracy_mean', 'pq_50', 'count_error', 'd50_relative_error', 'f1_50_2d',
            'accuracy_mean_2d']
    rows = [[method_names[name]] + [scores.loc[name, key] for key in keys] + [timings.get(name, '?')]
            for name in scores.index]
    stat_rows = [[name, pick(summary) if summary else 'no particle found', pick(truth)]
                 for name, pick in SUMMARY_ROWS]
    text = f"""# libnet-mmdet demo report

Generated by `python tools/demo.py --out {args.out} --model {args.model} --iters {args.iters} --device {args.device} --recipe {args.recipe} --size {args.size}`
on {time.strftime('%Y-%m-%d %H:%M')}; every number below comes from this run.

## Data
Synthetic NMC nano-CT (`libnet_mmdet.synth`, preset `{SYNTH_SETTINGS['preset']}`, mean diameter
{SYNTH_SETTINGS['mean_diameter_vox']} voxels, voxel {args.voxel_size_nm} nm): training volume
{VOLUME_SHAPES[args.size][0]} (seed {SEEDS['train']}), held-out volume {VOLUME_SHAPES[args.size][1]}
(seed {SEEDS['test']}), both with exact 3D instance ground truth.

## Model
{describe_model(out, args, model_files)}
The watershed's settings were tuned on the training volume ({timings.get('watershed_tuning', '?')} s).

## Accuracy on the held-out volume
3D: one-to-one instance matching of the 3D particles (StarDist semantics); 2D: the same pooled over all xy
slices. Mean accuracy is averaged over IoU 0.50:0.05:0.95. Count error = predicted − true particles.
Our 3D results merge fragments smaller than {MIN_VOXELS} voxels (a sphere a third of the mean diameter across)
into the particle they touch most (`min_voxels`); the fused particles' masks are then smoothed as
`tools/segment.py` does by default (`smooth='auto'`: each mask blurred a little, cut at one half).

{markdown_table(rows, columns)}

## Particle statistics (ours, xy/xz/yz fused) vs ground truth
Predicted: carbon-binder/pore {PHASE_SOURCES.get(summary['phase_source'] if summary else '', 'not computed')}.
Ground truth: exact labels and phases.

{markdown_table(stat_rows, ['statistic', 'predicted', 'ground truth'])}

Per-particle table: [analysis/particles.csv](analysis/particles.csv); summary:
[analysis/summary.md](analysis/summary.md).

## Plots
"""
    plots = sorted(os.listdir(osp.join(out, 'analysis'))) if osp.isdir(osp.join(out, 'analysis')) else []
    for name in plots:
        if name.endswith('.png'):
            text += f'\n![{name}](analysis/{name})\n'
    from libnet_mmdet.io import atomic_output
    with atomic_output(osp.join(out, 'report.md')) as f:
        f.write(text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='demo_out', help='output folder (default: demo_out)')
    parser.add_argument('--model', choices=('auto', 'generalist', 'own'), default='auto',
                        help='auto (default): the generalist when `make model` has built it, else train one here; '
                        'generalist: require it; own: always train one here')
    parser.add_argument('--iters', type=positive_int, default=1000,
                        help='training iterations of an own model (default: 1000)')
    parser.add_argument('--device', default='cpu', type=device_name, help="'cpu', 'cuda' or 'cuda:N'")
    parser.add_argument('--recipe', choices=sorted(RECIPES), default='tiny',
                        help='tiny: CPU-tiny config; r101: the real R101 recipe (GPU, ImageNet weights download)')
    parser.add_argument('--voxel-size-nm', type=float, default=100.0,
                        help='voxel size of the synthetic volumes in nm (default: 100)')
    parser.add_argument('--size', choices=sorted(VOLUME_SHAPES), default='full',
                        help='volume sizes: full (the demo) or small (a quick smoke run)')
    add_overwrite_arg(parser, help='start afresh in an --out folder of a demo with other settings')
    add_debug_arg(parser)
    args = parser.parse_args(argv)
    if not (0 < args.voxel_size_nm < float('inf')):
        parser.error(f'--voxel-size-nm must be a number > 0, got {args.voxel_size_nm}')
    return args


def prepare_demo_dir(out, settings, overwrite):
    """The demo folder ``out``: continued when an earlier run of the same ``settings`` made it (``demo.json``),
    emptied with ``overwrite`` when a run with other settings did, created when missing.

    Raises:
        InputError: ``out`` holds a demo of other settings (without ``overwrite``), or is a non-empty folder that
            no demo made.
    """
    from libnet_mmdet.io import write_json
    path = osp.join(out, 'demo.json')
    if osp.isfile(path):
        try:
            with open(path, encoding='utf-8') as f:
                earlier = json.load(f)
        except ValueError as exc:  # JSON or UTF-8 decoding: a damaged record of an earlier demo
            if not overwrite:
                raise InputError(f'{path}: damaged ({exc}); pass --overwrite to start afresh in {out}, or choose '
                                 'another --out') from exc
            earlier = {}
        if earlier == settings:
            return
        if not overwrite:
            differ = sorted(key for key in settings if earlier.get(key) != settings[key])
            raise InputError(f'{out}: holds a demo made with other settings ({", ".join(differ)}); pass --overwrite '
                             'to start afresh there, or choose another --out')
        shutil.rmtree(out)
    elif osp.isdir(out) and os.listdir(out):
        raise InputError(f'{out}: not empty and not a folder of this demo (no demo.json); choose another --out '
                         '(`make clean` removes demo_out)')
    os.makedirs(out, exist_ok=True)
    write_json(path, settings, indent=1)


def run(args):
    """The six steps of the demo; each one skips what an earlier (interrupted) run finished."""
    from libnet_mmdet.apis import check_device
    check_device(args.device)
    model_files = choose_model(args)  # before any work: --model generalist needs `make model` first
    if model_files['kind'] == 'own' and args.recipe == 'r101' and args.device == 'cpu':
        raise InputError('--recipe r101: the R101 recipe trains on a GPU (its batch and learning rate are set for '
                         'one); give --device cuda:0, or leave --recipe out for the CPU-tiny config')
    prepare_demo_dir(args.out, dict(size=args.size, voxel_size_nm=args.voxel_size_nm, recipe=args.recipe,
                                    iters=args.iters, device=args.device), args.overwrite)
    step('1/6 synthetic data')
    for split, shape in zip(('train', 'test'), VOLUME_SHAPES[args.size]):
        make_volume(osp.join(args.out, split), shape, SEEDS[split], args.voxel_size_nm)
    if model_files['kind'] == 'generalist':
        step(f"2/6 model: the generalist in {osp.dirname(model_files['checkpoint'])} (built by `make model`; "
             'no training here)')
    else:
        step(f'2/6 no generalist built (`make model`): train {osp.basename(RECIPES[args.recipe])} for '
             f'{args.iters} iterations')
        model_files['checkpoint'] = train(args.out, RECIPES[args.recipe], args.iters, args.device)
    forget_other_predictions(args.out, dict(model_files, smooth=SMOOTH))
    step('3/6 segment the held-out volume in 3D')
    predictions = segment(args.out, model_files, args.device, args.voxel_size_nm)
    step('4/6 classic watershed baseline (tuned on the training volume)')
    predictions['watershed'], watershed_settings = baseline(args.out, args.voxel_size_nm)
    step('5/6 score against the ground truth')
    scores = evaluate(args.out, predictions, args.voxel_size_nm)
    step('6/6 particle analysis')
    summary, truth = analyse(args.out, predictions['xyz'], args.voxel_size_nm, args.device)
    write_report(args.out, args, scores, model_files, watershed_settings, summary, truth)
    print(f'\nReport: {osp.abspath(osp.join(args.out, "report.md"))}')


def main(argv=None):
    args = parse_args(argv)
    with exit_on_error(TOOL, args.debug, interrupted=f'the finished steps are kept in {args.out}; run the same '
                       'command again to continue'):
        run(args)


if __name__ == '__main__':
    main()
