"""tools/make_model.py (``make model``) end to end at a tiny size: corpus -> training -> models/ folder that
init_segmenter loads with its trained particle diameters; a rerun keeps the model; bad arguments; the training
split over processes."""
import json
import os

import pytest

from helpers import REPO_ROOT, import_tool, run_tool
from libnet_mmdet.cli import usable_cores


@pytest.mark.slow
def test_make_model_builds_a_loadable_generalist_and_keeps_it(tmp_path):
    out, corpus = tmp_path / 'model', tmp_path / 'corpus'
    args = ('tools/make_model.py', '--out', out, '--corpus', corpus, '--volumes', '2', '--shape', '32', '64', '64',
            '--iters', '2')
    result = run_tool(*args, timeout=900)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    assert {'config.py', 'model.pth', 'model.json'} <= {path.name for path in out.iterdir()}
    # not the folder tools/segment.py reads by default: the usage line names the files
    assert f'--config {out / "config.py"} --checkpoint {out / "model.pth"}' in result.stdout
    facts = json.loads((out / 'model.json').read_text())
    assert facts['iters'] == 2 and facts['corpus_volumes'] == 2 and facts['particle_diameter_px'] == [12, 48]
    # two processes of one image each on a CPU of two or more cores (torchrun, gloo), the recipe's batch of 2 in all
    assert facts['batch_size'] == 2 and facts['ranks'] == (2 if usable_cores() >= 2 else 1)
    written = json.loads((corpus / 'corpus.json').read_text())
    assert len(written['volumes']) == 2
    assert written['overrides'] == facts['corpus_overrides'] == {'cb_domain_fraction': 0.0}  # the recipe's

    from libnet_mmdet.apis import init_segmenter, trained_diameter_range
    model = init_segmenter(str(out / 'config.py'), str(out / 'model.pth'), device='cpu')
    assert trained_diameter_range(model) == (12, 48)  # what scale='auto' reads
    assert str(corpus) in (out / 'config.py').read_text()  # trained on this corpus, not the default one

    again = run_tool(*args, timeout=300)
    assert again.returncode == 0 and 'built already' in again.stdout
    assert json.loads((out / 'model.json').read_text()) == facts  # nothing rebuilt


@pytest.mark.parametrize('bad, message', [
    (['--volumes', '0'], "argument --volumes: expected an integer >= 1, got '0'"),
    (['--seed', '-1'], '--seed must be >= 0, got -1'),
    (['--recipe', 'huge'], "argument --recipe: invalid choice: 'huge'"),
    (['--iters', '0'], "argument --iters: expected an integer >= 1, got '0'"),
    (['--iters', '1'], '--iters must be at least 2, got 1'),  # refused by the scheduler only after the corpus
    (['--device', 'gpu'], "argument --device: expected 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    (['--shape', '4', '4', '40'], 'shape_zyx=(4, 4, 40) is invalid: Y and X must be >= 8 voxels'),
    (['--ranks', '0'], "argument --ranks: expected an integer >= 1, got '0'"),
    (['--ranks', '3'], "--ranks 3: the recipe's batch of 2 images does not split evenly into 3 processes")])
def test_make_model_refuses_bad_arguments_before_doing_anything(run_script, tmp_path, capsys, bad, message):
    with pytest.raises(SystemExit) as exit_info:
        run_script('tools/make_model.py', '--out', tmp_path / 'model', '--corpus', tmp_path / 'corpus', *bad)
    code = exit_info.value.code  # 2: argparse usage error; a message: one error line (cli.exit_on_error)
    # the error line itself (argparse's usage line above it names every option)
    error = capsys.readouterr().err.strip().splitlines()[-1] if code == 2 else str(code)
    assert message in error
    assert not (tmp_path / 'model').exists() and not (tmp_path / 'corpus').exists()


def test_a_corpus_inside_the_work_dir_a_rebuild_removes_is_refused(run_script, tmp_path):
    work_dir = tmp_path / 'model' / 'work_dir'
    with pytest.raises(SystemExit, match=f"make_model.py: error: --corpus {work_dir / 'corpus'}: lies in {work_dir}, "
                       'which a new build removes'):
        run_script('tools/make_model.py', '--out', tmp_path / 'model', '--corpus', work_dir / 'corpus')
    assert not (tmp_path / 'model').exists()


def test_an_interrupted_build_resumes_and_other_settings_need_overwrite(tmp_path):
    """The work folder of an unfinished build is kept for the same settings (resume, with --overwrite too),
    refused for other settings, and started afresh with --overwrite or after a finished build."""
    from libnet_mmdet.io import InputError
    tool = import_tool('make_model')
    work = tmp_path / 'work_dir'
    settings = dict(recipe='tiny', iters=2)
    tool.prepare_work_dir(str(work), settings, overwrite=False)
    (work / 'iter_1.pth').write_bytes(b'checkpoint')
    assert tool.add_train_seconds(str(work), 10.0) == 10.0  # the interrupted run's training time
    for overwrite in (False, True):
        tool.prepare_work_dir(str(work), settings, overwrite=overwrite)
        assert (work / 'iter_1.pth').is_file()  # resumed
    assert tool.add_train_seconds(str(work), 5.0) == 15.0  # the resumed run adds its own
    with pytest.raises(InputError, match='unfinished build with other settings \\(iters\\)'):
        tool.prepare_work_dir(str(work), dict(settings, iters=3), overwrite=False)
    tool.prepare_work_dir(str(work), dict(settings, iters=3), overwrite=True)
    assert not (work / 'iter_1.pth').exists()  # started afresh
    assert tool.add_train_seconds(str(work), 1.0) == 1.0
    (work / 'iter_1.pth').write_bytes(b'checkpoint')
    (work / 'build.json').write_text(json.dumps(dict(settings=dict(settings, iters=3), finished=True)))
    tool.prepare_work_dir(str(work), dict(settings, iters=3), overwrite=True)  # a finished build: rebuilt
    assert not (work / 'iter_1.pth').exists()


def test_an_unfinished_build_of_another_recipe_length_is_not_resumed(run_script, tmp_path, monkeypatch):
    """A build interrupted before an update changed the recipe's iterations (7000 with steps until 2026-12-07) is
    other settings, not resumed into the new schedule: the settings hold the iterations trained, not those given
    (the tool wrote None for a recipe's own length until then, so such a build's folder says None here)."""
    import libnet_mmdet.synth
    from libnet_mmdet.apis import read_config
    tool = import_tool('make_model')
    out, corpus = tmp_path / 'model', tmp_path / 'corpus'
    settings = dict(recipe=os.path.relpath(tool.RECIPES['tiny'], REPO_ROOT), corpus=str(corpus), volumes=32, seed=0,
                    shape=None, iters=None, device='cpu',
                    ranks=tool.default_ranks(read_config(tool.RECIPES['tiny']), 'cpu'))
    (out / 'work_dir').mkdir(parents=True)
    (out / 'work_dir' / 'build.json').write_text(json.dumps(dict(settings=settings, finished=False)))

    def resumed(*args, **kwargs):  # a failure here stops at once instead of building a model
        raise AssertionError('the build was resumed: its corpus step was reached')
    monkeypatch.setattr(libnet_mmdet.synth, 'write_corpus', resumed)
    with pytest.raises(SystemExit, match=r'work_dir: holds an unfinished build with other settings \(iters\)'):
        run_script('tools/make_model.py', '--out', out, '--corpus', corpus)
    assert not corpus.exists()  # refused before the corpus is written


def test_a_work_folder_no_build_wrote_is_not_removed_without_overwrite(tmp_path):
    """A ``work_dir`` holding files of something else (the demo trains into OUT/work_dir too) is refused, not
    deleted, even with --overwrite (as an output folder that is not ours)."""
    from libnet_mmdet.io import InputError
    tool = import_tool('make_model')
    work = tmp_path / 'work_dir'
    work.mkdir()
    (work / 'iter_1000.pth').write_bytes(b'the demo model')
    for overwrite in (False, True):
        with pytest.raises(InputError, match='holds files that no build of this tool wrote'):
            tool.prepare_work_dir(str(work), dict(recipe='tiny'), overwrite=overwrite)
    assert (work / 'iter_1000.pth').read_bytes() == b'the demo model'


def test_a_corpus_of_other_settings_is_refused_before_the_build_is_recorded(run_script, tmp_path):
    """The corpus folder is checked before OUT/work_dir/build.json is written: a refused command leaves nothing
    that would block the next one."""
    from libnet_mmdet.synth import write_corpus
    corpus = tmp_path / 'corpus'
    write_corpus(corpus, 1, seed=5, shape_zyx=(8, 16, 16), progress=False)
    with pytest.raises(SystemExit, match='make_model.py: error: .*corpus.json: holds a corpus made with other '
                       'settings \\(count, seed, shape_zyx, overrides\\)'):
        run_script('tools/make_model.py', '--out', tmp_path / 'model', '--corpus', corpus, '--volumes', '2')
    assert not (tmp_path / 'model').exists()


def test_a_second_build_of_the_same_folder_is_refused_while_the_first_runs(run_script, tmp_path):
    """Two `make model` at once (a second terminal, a job resubmitted) trained into one work folder (until
    2026-12-07): the second now stops at once, naming the first; the lock ends with the build that holds it."""
    from libnet_mmdet.cli import exclusive_lock
    lock = tmp_path / 'model' / '.build.lock'
    args = ('tools/make_model.py', '--out', tmp_path / 'model', '--corpus', tmp_path / 'corpus', '--volumes', '1')
    with exclusive_lock(lock, 'a build'):  # the first build, in this process
        with pytest.raises(SystemExit, match=rf"make_model.py: error: {lock}: a build of {tmp_path / 'model'} is "
                           rf'running already \(pid {os.getpid()}\); wait for it to end$'):
            run_script(*args)
    assert sorted(path.name for path in (tmp_path / 'model').iterdir()) == ['.build.lock']
    assert not (tmp_path / 'corpus').exists()
    with exclusive_lock(lock, 'a build'):  # released: taken again
        pass


def test_a_filesystem_without_locks_warns_and_builds_unguarded(tmp_path, monkeypatch):
    """Lustre without -o flock, NFS without lockd: flock fails with ENOLCK / ENOSYS; the build goes on (with a
    warning), it is not stopped by the guard."""
    import errno
    import fcntl
    from libnet_mmdet.cli import exclusive_lock

    def refused(*args):
        raise OSError(errno.ENOLCK, 'No locks available')
    monkeypatch.setattr(fcntl, 'flock', refused)
    ran = []
    with pytest.warns(UserWarning, match=r'\.build\.lock: cannot lock \(.*No locks available\); a build goes on '
                      'unguarded: run one at a time'):
        with exclusive_lock(tmp_path / '.build.lock', 'a build'):
            ran.append(True)
    assert ran == [True]


def test_a_cuda_device_without_cuda_is_refused_before_anything(run_script, tmp_path, monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(SystemExit, match="make_model.py: error: device 'cuda:0' \\(--device\\): CUDA is not "
                       'available here'):
        run_script('tools/make_model.py', '--out', tmp_path / 'model', '--corpus', tmp_path / 'corpus',
                   '--recipe', 'r101', '--device', 'cuda:0')
    assert not (tmp_path / 'model').exists() and not (tmp_path / 'corpus').exists()


def test_each_process_loads_its_share_of_the_recipes_batch(tmp_path):
    """``--ranks 2`` writes a training config whose loader gives each process half the recipe's batch and workers;
    the learning rate and everything else stay the recipe's. More than one process on a GPU is refused. By default
    the CPU generalist trains in 2 processes (its config's ``cpu_train_ranks``), the phase model in 1."""
    from mmengine.config import Config
    from libnet_mmdet.apis import read_config
    from libnet_mmdet.io import InputError
    tool = import_tool('make_model')
    recipe = tool.RECIPES['phases']
    recipe_cfg = read_config(recipe)
    assert recipe_cfg.train_dataloader.batch_size == 4 and recipe_cfg.train_dataloader.num_workers == 2
    for ranks, batch, workers in ((1, 4, 2), (2, 2, 1), (4, 1, 1)):
        path = tmp_path / f'train_{ranks}.py'
        tool.write_train_config(str(path), recipe_cfg, recipe, str(tmp_path / 'corpus'), 10, ranks)
        cfg = Config.fromfile(str(path))
        assert (cfg.train_dataloader.batch_size, cfg.train_dataloader.num_workers) == (batch, workers)
        assert cfg.train_dataloader.dataset.data_root == str(tmp_path / 'corpus') + '/'
        assert cfg.optim_wrapper.optimizer.lr == recipe_cfg.optim_wrapper.optimizer.lr
    tool.check_ranks(recipe_cfg, 'cpu', 4)
    with pytest.raises(InputError, match='does not split evenly into 3 processes'):
        tool.check_ranks(recipe_cfg, 'cpu', 3)
    with pytest.raises(InputError, match='--ranks 2: several processes are for CPUs; on GPUs train with '
                       'tools/dist_train.sh'):
        tool.check_ranks(recipe_cfg, 'cuda:0', 2)
    assert tool.default_ranks(recipe_cfg, 'cuda:0') == tool.default_ranks(recipe_cfg, 'cpu') == 1  # not validated
    generalist_cfg = read_config(tool.RECIPES['tiny'])
    assert tool.default_ranks(generalist_cfg, 'cpu') == (2 if usable_cores() >= 2 else 1)
    assert tool.default_ranks(generalist_cfg, 'cuda:0') == 1


def test_other_iterations_keep_the_shape_of_the_recipes_schedule(tmp_path):
    """``--iters N``: the warm-up stays (at most a tenth of the run); the phase recipe's learning-rate steps move to
    the same fractions of the run, the generalist's linear decay starts at the warm-up's end and ends at the run's."""
    from mmengine.config import Config
    from libnet_mmdet.apis import read_config
    tool = import_tool('make_model')
    for name, iters, expected in (('phases', 900, dict(type='MultiStepLR', begin=0, end=900, milestones=[690, 810])),
                                  ('tiny', 2000, dict(type='PolyLR', begin=100, end=2000, power=1.0)),
                                  ('tiny', 2, dict(type='PolyLR', begin=1, end=2))):
        recipe = tool.RECIPES[name]
        recipe_cfg = read_config(recipe)
        path = tmp_path / f'{name}_{iters}.py'
        tool.write_train_config(str(path), recipe_cfg, recipe, str(tmp_path / 'corpus'), iters)
        cfg = Config.fromfile(str(path))
        warmup, decay = cfg.param_scheduler
        assert (warmup.type, warmup.begin) == ('LinearLR', 0)
        assert warmup.end == min(recipe_cfg.param_scheduler[0]['end'], max(iters // 10, 1))
        assert {key: decay[key] for key in expected} == expected
        assert cfg.train_cfg.max_iters == iters


def test_the_default_model_folders_are_git_ignored():
    ignored = (REPO_ROOT / '.gitignore').read_text().split()
    assert '/models/' in ignored and '/data/generalist_corpus/' in ignored  # anchored: libnet_mmdet/models/ is code
    assert '/data/phase_corpus/' in ignored


def test_the_phase_recipes_draw_binder_domains_the_generalists_do_not():
    from libnet_mmdet.apis import read_config
    tool = import_tool('make_model')
    for recipe, path in tool.RECIPES.items():
        cfg = read_config(path)
        phases = tool.MODEL_DIRS[recipe] == 'phases'
        assert cfg.corpus_root == ('data/phase_corpus/' if phases else 'data/generalist_corpus/'), recipe
        assert cfg.train_dataloader.dataset.data_root == cfg.corpus_root, recipe
        assert dict(cfg.corpus_overrides) == ({} if phases else {'cb_domain_fraction': 0.0}), recipe


def test_a_model_folder_of_another_build_or_of_no_build_is_not_replaced_without_overwrite(tmp_path):
    """A finished build of another recipe said "built already" and exited 0 (a chained segment.py then used the
    wrong model); model files this tool did not build were replaced without --overwrite."""
    from libnet_mmdet.io import InputError
    tool = import_tool('make_model')
    out = tmp_path / 'generalist'
    out.mkdir()
    assert tool.check_built(str(out), 'configs/nmc/tiny.py', 7000) is False  # nothing there: build
    (out / 'model.pth').write_bytes(b'my own weights')
    with pytest.raises(InputError, match=f'{out}: holds model.pth that this tool did not build \\(no model.json\\); '
                       'pass --overwrite to replace them'):
        tool.check_built(str(out), 'configs/nmc/tiny.py', 7000)
    (out / 'work_dir').mkdir()
    (out / 'work_dir' / 'build.json').write_text('{}')  # a build stopped while installing its files: ours
    assert tool.check_built(str(out), 'configs/nmc/tiny.py', 7000) is False
    (out / 'model.json').write_text(json.dumps(dict(recipe='configs/nmc/tiny.py', iters=7000)))
    assert tool.check_built(str(out), 'configs/nmc/tiny.py', 7000) is True
    for recipe, iters in (('configs/nmc/r101.py', 7000), ('configs/nmc/tiny.py', 200)):
        with pytest.raises(InputError, match=f'{out}: holds a model built to configs/nmc/tiny.py for 7000 iterations, '
                           f'not {recipe} for {iters}; pass --overwrite to replace it'):
            tool.check_built(str(out), recipe, iters)
    (out / 'model.json').write_text('{"recipe": ')
    with pytest.raises(InputError, match=f"{out / 'model.json'}: not readable JSON"):
        tool.check_built(str(out), 'configs/nmc/tiny.py', 7000)


def test_a_rebuild_stopped_while_installing_leaves_no_finished_mark(tmp_path, monkeypatch):
    """--overwrite over a finished model: a copy failing after config.py was replaced left the new config.py, the
    old model.pth and the old model.json, which every tool took for a finished model."""
    import shutil
    tool = import_tool('make_model')
    out, work_dir = tmp_path / 'generalist', tmp_path / 'generalist' / 'work_dir'
    work_dir.mkdir(parents=True)
    (work_dir / 'train_config.py').write_text("max_iters = 200\n")
    (work_dir / 'build.json').write_text('{"settings": {}, "finished": false}')
    (work_dir / 'iter_200.pth').write_bytes(b'new weights')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_200.pth'))
    for name, text in (('config.py', 'old = 1\n'), ('model.pth', 'old weights'), ('model.json', '{"iters": 7000}')):
        (out / name).write_text(text)

    def full_disk(source, target):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(shutil, 'copyfileobj', full_disk)
    with pytest.raises(OSError, match='No space left'):
        tool.install(str(out), str(work_dir), dict(iters=200))
    assert not (out / 'model.json').exists() and (out / 'model.pth').read_text() == 'old weights'
    assert tool.check_built(str(out), 'configs/nmc/tiny.py', 200) is False  # not built: the rerun resumes


def test_a_refused_argument_is_the_only_line_on_stderr(tmp_path):
    """mmengine's import of pkg_resources (setuptools 81 deprecates it) put two warnings with their source lines
    before the one-line error of every tool that loads a shipped config."""
    done = run_tool('tools/make_model.py', '--iters', '1', '--out', tmp_path / 'model', timeout=120)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[-1] == 'make_model.py: error: --iters must be at least 2, got 1'
    assert not any('pkg_resources' in line for line in lines)  # others only where PYTHONWARNINGS asks for them
