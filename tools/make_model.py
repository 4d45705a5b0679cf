"""Build the generalist model (``make model``): a randomised synthetic corpus, then training at every particle size;
or, with ``--recipe phases``, the phase model (pore / carbon-binder / NMC) on a corpus of the same draws.

Usage:
    python tools/make_model.py [--out models/generalist] [--corpus DIR] [--volumes 32]
                               [--seed 0] [--shape Z Y X] [--recipe tiny|tiny-2.5d|r101|phases|phases-r101]
                               [--device cpu|cuda:0] [--iters N] [--ranks N] [--overwrite] [--debug]

Steps (each resumes where an interrupted run stopped; run the same command again):
  1. corpus: ``--volumes`` synthetic volumes with randomly drawn particle sizes, packing, damage, carbon-binder and
     imaging (``libnet_mmdet.synth.write_corpus``, seeds ``--seed`` .. ``--seed + volumes - 1``, recorded in
     ``corpus.json``), into the recipe's ``corpus_root`` with its ``corpus_overrides``: ``data/generalist_corpus``
     without bulk carbon-binder domains for the generalist, ``data/phase_corpus`` (the same draws, domains drawn
     too) for the phase model;
  2. train: the generalist config of ``--recipe`` (``tiny``: the CPU-tiny model, 51 min on the slowest 2-core machine
     measured, in two processes of one image each: ``--ranks``;
     ``tiny-2.5d``: the same reading each slice with its two neighbours, into ``models/generalist-2.5d``; ``r101``:
     the R101 recipe, for a GPU) on every second xy/xz/yz slice of the corpus, each slice rescaled to a random
     typical particle diameter in the config's ``particle_diameter_px`` (``RandomParticleScale``), through
     ``tools/train.py`` (under torchrun when ``--ranks`` is above 1)
     (``phases``: the phase model's config on the corpus's slices and phase volumes, into ``models/phases``;
     ``phases-r101``: the same on the R101 backbone, for a GPU);
  3. install: ``OUT/config.py`` (the full training config, with ``particle_diameter_px``), ``OUT/model.pth`` and
     ``OUT/model.json`` (what was built, how, how long).

``tools/segment.py``, ``tools/demo.py`` and the notebook use ``models/generalist`` when it exists, and
``tools/analyze.py`` and ``tools/segment.py --report`` use ``models/phases`` for the phases. A finished OUT is
kept (the command says so and exits); ``--overwrite`` builds it again, replacing the model files only when the
new ones are ready (a corpus of the same settings is reused, one of other settings made again). An interrupted
build resumes when the same command is run again, ``--overwrite`` or not; a second build of the same OUT while one
runs is refused (``OUT/.build.lock``).
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys
import time

from libnet_mmdet.cli import (add_debug_arg, add_overwrite_arg, device_name, exclusive_lock, exit_on_error,
                              positive_int, run_train_tool, usable_cores)

TOOL = osp.basename(__file__)
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RECIPES = {
    'tiny': osp.join(REPO_ROOT, 'configs', 'nmc', 'mask-rcnn_r18-gn_fpn-c64_cpu-tiny_generalist.py'),
    'tiny-2.5d': osp.join(REPO_ROOT, 'configs', 'nmc', 'mask-rcnn_r18-gn_fpn-c64_cpu-tiny_generalist-2.5d.py'),
    'r101': osp.join(REPO_ROOT, 'configs', 'nmc', 'mask-rcnn_r101_fpn_generalist.py'),
    'phases': osp.join(REPO_ROOT, 'configs', 'nmc', 'phase-fpn_r18-gn_fpn-c64_cpu-tiny_generalist.py'),
    'phases-r101': osp.join(REPO_ROOT, 'configs', 'nmc', 'phase-fpn_r101_fpn_generalist.py'),
}
#: Held in the model folder while a build runs: a second build of the same folder is refused.
LOCK_FILE = '.build.lock'
#: Default model folder of each recipe.
MODEL_DIRS = {'tiny': 'generalist', 'tiny-2.5d': 'generalist-2.5d', 'r101': 'generalist', 'phases': 'phases',
              'phases-r101': 'phases'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', help='model folder (default: models/generalist; models/generalist-2.5d for --recipe '
                        'tiny-2.5d; models/phases for --recipe phases or phases-r101)')
    parser.add_argument('--corpus', help="corpus folder (default: the recipe's corpus_root, data/generalist_corpus "
                        'or data/phase_corpus)')
    parser.add_argument('--volumes', type=positive_int, default=32, help='corpus volumes (default: 32)')
    parser.add_argument('--seed', type=int, default=0, help='first corpus seed (default: 0)')
    parser.add_argument('--shape', nargs=3, type=positive_int, metavar=('Z', 'Y', 'X'),
                        help='one size for every corpus volume (default: sized to each volume\'s particles; a fixed '
                        'small size is for quick trial runs)')
    parser.add_argument('--recipe', choices=sorted(RECIPES), default='tiny',
                        help='tiny: CPU-tiny generalist (default); tiny-2.5d: the same reading each slice with its two '
                        'neighbours (an option, not the default); r101: the R101 generalist (GPU); phases: the phase '
                        'model (pore / carbon-binder / NMC, CPU) on the same draws plus bulk carbon-binder; '
                        'phases-r101: the phase model on the R101 backbone (GPU)')
    parser.add_argument('--device', default='cpu', type=device_name, help="'cpu' (default), 'cuda' or 'cuda:N'")
    parser.add_argument('--iters', type=positive_int, default=None,
                        help="training iterations (default: the recipe's max_iters)")
    parser.add_argument('--ranks', type=positive_int, default=None,
                        help="training processes on a CPU, each with its share of the recipe's batch and of the "
                        "cores (default: the recipe's cpu_train_ranks, 2 for the CPU generalist on 2 or more cores, "
                        '1 for the phase model; on a GPU 1: several GPUs train with tools/dist_train.sh)')
    add_overwrite_arg(parser, help='rebuild a finished model folder')
    add_debug_arg(parser)
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = osp.join(REPO_ROOT, 'models', MODEL_DIRS[args.recipe])
    if args.seed < 0:
        parser.error(f'--seed must be >= 0, got {args.seed}')
    return args


def default_ranks(recipe_cfg, device):
    """Training processes when ``--ranks`` is not given: on a CPU the recipe's ``cpu_train_ranks`` (1 if it has
    none) when the cores and the batch allow it, else 1; on a GPU 1."""
    ranks = recipe_cfg.get('cpu_train_ranks', 1) if device == 'cpu' else 1
    batch = recipe_cfg.train_dataloader.batch_size
    return ranks if usable_cores() >= ranks and batch % ranks == 0 else 1


def check_ranks(recipe_cfg, device, ranks):
    """Refuse ``ranks`` that do not split the recipe's batch evenly, or more than one on a GPU."""
    from libnet_mmdet.io import InputError
    batch = recipe_cfg.train_dataloader.batch_size
    if ranks > 1 and device != 'cpu':
        raise InputError(f'--ranks {ranks}: several processes are for CPUs; on GPUs train with tools/dist_train.sh')
    if batch % ranks:
        raise InputError(f"--ranks {ranks}: the recipe's batch of {batch} images does not split evenly into "
                         f'{ranks} processes')


def write_train_config(path, recipe_cfg, recipe, corpus, iters, ranks=1):
    """A config inheriting ``recipe`` that trains ``iters`` iterations (None: the recipe's) on ``corpus``; other
    iterations keep the recipe's warm-up (at most a tenth of the run) and move its learning-rate steps to the same
    fractions of the run, or end its decay at the run's end (a decay that starts after the warm-up still does). With
    ``ranks`` processes each loads its share of the recipe's batch (the total batch, and so the learning rate, stay
    the recipe's)."""
    from libnet_mmdet.io import atomic_output
    loader = recipe_cfg.train_dataloader
    share = '' if ranks == 1 else (f'batch_size={loader.batch_size // ranks}, '
                                   f'num_workers={max(1, loader.num_workers // ranks)}, ')
    text = (f"# Written by tools/make_model.py: {osp.basename(recipe)} on the corpus {corpus}.\n"
            f"_base_ = {recipe!r}\n"
            + (f"# {ranks} processes (tools/make_model.py --ranks): each loads 1/{ranks} of the recipe's batch\n"
               if ranks > 1 else '')
            + f"train_dataloader = dict({share}dataset=dict(data_root={osp.abspath(corpus) + '/'!r}))\n"
            "randomness = dict(seed=0)  # the same corpus and command give the same model\n")
    if iters is not None:
        warmup, decay = (dict(item) for item in recipe_cfg.param_scheduler)
        old_iters = recipe_cfg.train_cfg.max_iters
        warmup['end'] = min(warmup['end'], max(iters // 10, 1))
        decay['end'] = iters
        if 'milestones' in decay:  # MultiStepLR
            decay['milestones'] = [max(int(m * iters / old_iters), 1) for m in decay['milestones']]
        if decay.get('begin'):  # PolyLR after the warm-up
            decay['begin'] = warmup['end']
        text += (f"max_iters = {iters}\n"
                 f"train_cfg = dict(max_iters={iters}, val_interval={iters + 1})\n"
                 f"param_scheduler = [{warmup!r}, {decay!r}]\n"
                 f"default_hooks = dict(checkpoint=dict(interval={max(iters // 8, 1)}))\n")
    with atomic_output(path) as f:
        f.write(text)


def install(out, work_dir, facts):
    """Copy the final checkpoint and the full config into ``out`` (each atomically; model.json, which marks a
    finished build, last)."""
    from mmengine.config import Config
    from mmengine.runner import find_latest_checkpoint
    from libnet_mmdet.io import atomic_output, write_json
    checkpoint = find_latest_checkpoint(work_dir)
    cfg = Config.fromfile(osp.join(work_dir, 'train_config.py'))
    if osp.lexists(osp.join(out, 'model.json')):  # a rebuild: no finished mark on a mix of new and old files
        os.remove(osp.join(out, 'model.json'))
    with atomic_output(osp.join(out, 'config.py')) as f:
        f.write(cfg.pretty_text)
    with open(checkpoint, 'rb') as source, atomic_output(osp.join(out, 'model.pth'), 'wb') as target:
        shutil.copyfileobj(source, target)
    write_json(osp.join(out, 'model.json'), dict(facts, checkpoint=osp.basename(checkpoint)), indent=1)


def check_built(out, recipe, iters):
    """True when ``out`` holds a finished build of ``recipe`` (a path relative to the repository) with ``iters``
    iterations; False when it holds no model files or an unfinished build of this tool.

    Raises:
        InputError: ``out`` holds a finished build of another recipe or number of iterations, or a model
            (``config.py`` / ``model.pth``) that this tool did not build; both are replaced only with --overwrite;
            its ``model.json`` is not readable JSON.
    """
    from libnet_mmdet.io import InputError
    facts_path = osp.join(out, 'model.json')
    if osp.isfile(facts_path):
        try:
            with open(facts_path, encoding='utf-8') as f:
                built = json.load(f)
        except ValueError as exc:
            raise InputError(f'{facts_path}: not readable JSON ({exc}); pass --overwrite to rebuild the model') from exc
        if (built.get('recipe'), built.get('iters')) != (recipe, iters):
            raise InputError(f"{out}: holds a model built to {built.get('recipe')} for {built.get('iters')} "
                             f'iterations, not {recipe} for {iters}; pass --overwrite to replace it, or another --out')
        return True
    found = [name for name in ('config.py', 'model.pth') if osp.lexists(osp.join(out, name))]
    if found and not osp.isfile(osp.join(out, 'work_dir', 'build.json')):
        raise InputError(f"{out}: holds {' and '.join(found)} that this tool did not build (no model.json); pass "
                         '--overwrite to replace them, or another --out')
    return False


def prepare_work_dir(work_dir, settings, overwrite):
    """The training folder of this build: resumed when an unfinished build of the same ``settings`` left it (with
    the training seconds it recorded), started afresh otherwise (a finished build's folder, or any with
    ``overwrite``).

    Raises:
        InputError: it holds an unfinished build of other settings and ``overwrite`` is not set, or files of no
            build (with ``overwrite`` too).
    """
    from libnet_mmdet.io import InputError, write_json
    build_path = osp.join(work_dir, 'build.json')
    earlier = None
    if osp.isfile(build_path):
        with open(build_path) as f:
            earlier = json.load(f)
    resumable = earlier is not None and not earlier.get('finished') and earlier['settings'] == settings
    if osp.isdir(work_dir) and not resumable:
        if not overwrite and earlier is not None and not earlier.get('finished'):
            differ = sorted(key for key in settings if earlier['settings'].get(key) != settings[key])
            raise InputError(f'{work_dir}: holds an unfinished build with other settings ({", ".join(differ)}); run '
                             'the earlier command to finish it, or pass --overwrite to start this one')
        if earlier is None and os.listdir(work_dir):  # not ours to remove, even with --overwrite
            raise InputError(f'{work_dir}: holds files that no build of this tool wrote (no build.json); choose '
                             'another --out')
        shutil.rmtree(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    if not resumable:
        write_json(build_path, dict(settings=settings, finished=False, train_seconds=0.0), indent=1)


def add_train_seconds(work_dir, seconds):
    """Add one training run's ``seconds`` to those its build recorded (``build.json``), so that a build interrupted
    and resumed reports all its training time.

    Returns:
        float: the build's training seconds so far.
    """
    from libnet_mmdet.io import write_json
    build_path = osp.join(work_dir, 'build.json')
    with open(build_path) as f:
        build = json.load(f)
    build['train_seconds'] = build.get('train_seconds', 0.0) + seconds
    write_json(build_path, build, indent=1)
    return build['train_seconds']


def run(args):
    from libnet_mmdet.apis import check_device, read_config
    from libnet_mmdet.io import InputError, is_inside
    from libnet_mmdet.synth import check_corpus_dir
    recipe = RECIPES[args.recipe]
    recipe_cfg = read_config(recipe)
    check_device(args.device)
    if args.iters is not None and args.iters < 2:  # a warm-up and a decay of one iteration each at least
        raise InputError(f'--iters must be at least 2, got {args.iters}')
    ranks = args.ranks or default_ranks(recipe_cfg, args.device)
    check_ranks(recipe_cfg, args.device, ranks)
    corpus_dir = args.corpus or osp.join(REPO_ROOT, recipe_cfg.corpus_root)
    overrides = dict(recipe_cfg.corpus_overrides)
    work_dir = osp.join(args.out, 'work_dir')
    if is_inside(corpus_dir, work_dir):  # a rebuild removes the work dir whole
        raise InputError(f'--corpus {corpus_dir}: lies in {work_dir}, which a new build removes; choose a corpus '
                         'folder outside it')
    iters = args.iters or recipe_cfg.train_cfg.max_iters
    if built_already(args, recipe, iters):
        return
    check_corpus_dir(corpus_dir, args.volumes, args.seed, args.shape, args.overwrite, **overrides)
    # every check passed: one build of OUT at a time (a second one would train into the same work folder)
    with exclusive_lock(osp.join(args.out, LOCK_FILE), f'a build of {args.out}'):
        if not built_already(args, recipe, iters):  # a build that held the lock until just now may have finished
            build(args, recipe, recipe_cfg, ranks, corpus_dir, overrides, work_dir, iters)


def built_already(args, recipe, iters):
    """True (and says so) when OUT holds this build finished and ``--overwrite`` is not given."""
    if not args.overwrite and check_built(args.out, osp.relpath(recipe, REPO_ROOT), iters):
        print(f'{args.out}: the model is built already (--overwrite rebuilds it)')
        return True
    return False


def build(args, recipe, recipe_cfg, ranks, corpus_dir, overrides, work_dir, iters):
    """Steps 1-3 of a build (:func:`run`'s checks passed, its lock held)."""
    from libnet_mmdet.io import write_json
    from libnet_mmdet.synth import write_corpus
    # the iterations as trained, not as given: an unfinished build of a recipe whose length has changed since (7000
    # iterations with steps before 2026-12-07) is not resumed into the new schedule
    settings = dict(recipe=osp.relpath(recipe, REPO_ROOT), corpus=osp.abspath(corpus_dir), volumes=args.volumes,
                    seed=args.seed, shape=args.shape, iters=iters, device=args.device, ranks=ranks)
    prepare_work_dir(work_dir, settings, args.overwrite)
    print(f'=== 1/3 corpus: {args.volumes} volumes in {corpus_dir} ===', flush=True)
    started = time.time()
    corpus = write_corpus(corpus_dir, args.volumes, seed=args.seed, shape_zyx=args.shape, overwrite=args.overwrite,
                          **overrides)
    corpus_seconds = time.time() - started
    print(f'=== 2/3 train {osp.basename(recipe)} for {iters} iterations'
          + (f' in {ranks} processes' if ranks > 1 else '') + ' ===', flush=True)
    config = osp.join(work_dir, 'train_config.py')
    write_train_config(config, recipe_cfg, recipe, corpus_dir, args.iters, ranks)
    started = time.time()
    try:
        run_train_tool(config, work_dir, args.device, ranks)
    finally:  # an interrupted run's time counts too: the rerun resumes its training
        train_seconds = add_train_seconds(work_dir, time.time() - started)
    print(f'=== 3/3 install into {args.out} ===', flush=True)
    diameters = recipe_cfg.get('particle_diameter_px')  # None for the phase model (no scale augmentation)
    install(args.out, work_dir, dict(
        recipe=settings['recipe'], iters=iters, device=args.device, ranks=ranks,
        batch_size=recipe_cfg.train_dataloader.batch_size,
        particle_diameter_px=diameters and list(diameters), corpus=settings['corpus'],
        corpus_volumes=corpus['count'], corpus_seed=corpus['seed'], corpus_overrides=overrides,
        corpus_seconds=round(corpus_seconds, 1),
        train_seconds=round(train_seconds, 1), built=time.strftime('%Y-%m-%d %H:%M:%S')))
    write_json(osp.join(work_dir, 'build.json'), dict(settings=settings, finished=True, train_seconds=train_seconds),
               indent=1)
    model_dir = MODEL_DIRS[args.recipe]
    read_by_default = model_dir in ('generalist', 'phases') and \
        osp.abspath(args.out) == osp.join(REPO_ROOT, 'models', model_dir)  # the folders the tools read themselves
    if model_dir == 'phases':
        usage = 'python tools/analyze.py labels.tif --image stack.tif --out report/' + (
            '' if read_by_default else f' --phase-model {args.out}')
    else:
        usage = 'python tools/segment.py stack.tif --out labels.tif' + ('' if read_by_default else (
            f' --config {osp.join(args.out, "config.py")} --checkpoint {osp.join(args.out, "model.pth")}'))
    print(f'{args.out}: config.py + model.pth ({iters} iterations; corpus {corpus_seconds:.0f} s, training '
          f'{train_seconds:.0f} s). Use it: {usage}')


def main(argv=None):
    args = parse_args(argv)
    with exit_on_error(TOOL, args.debug, interrupted='the finished corpus volumes and the last checkpoint are '
                       'kept; run the same command again to continue'):
        run(args)


if __name__ == '__main__':
    sys.exit(main())
