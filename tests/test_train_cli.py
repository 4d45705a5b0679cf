"""tools/train.py's checks before anything is built: an earlier training's checkpoints are not replaced without
--overwrite, --resume needs a checkpoint, --amp needs a GPU; and, as for tools/test.py, --launcher slurm needs CUDA."""
import pytest

from helpers import TINY_CONFIG, import_tool, write_config


class Built(Exception):
    """Raised by the stand-in ``build_runner``: every check passed."""


@pytest.fixture
def train_tool(monkeypatch):
    tool = import_tool('train')

    def build_runner(cfg):
        raise Built(cfg)
    monkeypatch.setattr(tool, 'build_runner', build_runner)
    return tool


@pytest.fixture
def tiny_config(tiny_coco, tmp_path):
    """The CPU-tiny config pointed at the tiny COCO set (the tool checks the data paths before building)."""
    return str(write_config(tmp_path / 'tiny.py', TINY_CONFIG, tiny_coco))


def test_the_checkpoints_of_an_earlier_training_need_resume_or_overwrite(train_tool, tiny_config, tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'epoch_3.pth').write_bytes(b'an earlier training')
    argv = [tiny_config, '--work-dir', str(work)]
    with pytest.raises(SystemExit, match=f'train.py: error: {work}: holds the checkpoints of an earlier training; '
                       'pass --resume to continue it, --overwrite'):
        train_tool.main(argv)
    (work / 'last_checkpoint').write_text(str(work / 'epoch_3.pth'))
    for extra in (['--resume'], ['--weights', 'last']):
        with pytest.raises(Built) as built:
            train_tool.main(argv + extra)
        assert built.value.args[0].resume, extra
    assert (work / 'epoch_3.pth').read_bytes() == b'an earlier training'
    with pytest.raises(Built) as built:
        train_tool.main(argv + ['--overwrite'])
    assert not built.value.args[0].resume
    assert list(work.iterdir()) == []  # removed first: a later --resume cannot pick up the earlier training


def test_a_missing_load_from_is_refused_before_overwrite_removes_anything(train_tool, tiny_config, tmp_path):
    """``load_from`` of the config (or --cfg-options) naming no file: --overwrite removed the earlier training's
    checkpoints and built the runner before MMEngine failed on it (until 2026-12-07)."""
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'epoch_3.pth').write_bytes(b'an earlier training')
    missing = tmp_path / 'nope.pth'
    with pytest.raises(SystemExit, match=f'train.py: error: load_from \\(the config or --cfg-options\\): checkpoint '
                       f'file not found: {missing}$'):
        train_tool.main([tiny_config, '--work-dir', str(work), '--overwrite', '--cfg-options', f'load_from={missing}'])
    assert (work / 'epoch_3.pth').read_bytes() == b'an earlier training'


def test_an_init_checkpoint_in_the_work_dir_is_refused_before_overwrite_removes_it(train_tool, tiny_config,
                                                                                     tmp_path):
    """A backbone pretrained from an earlier training's checkpoint in the same work dir (``init_cfg`` of type
    ``Pretrained``, as train.py's own hint suggests): --overwrite removed it, then MMEngine could not find it."""
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'epoch_12.pth').write_bytes(b'an earlier training')
    config = tmp_path / 'pretrained.py'
    config.write_text(f"_base_ = {tiny_config!r}\nmodel = dict(backbone=dict(init_cfg=dict(\n    _delete_=True, "
                      f"type='Pretrained', checkpoint={str(work / 'epoch_12.pth')!r}, prefix='backbone.')))\n")
    with pytest.raises(SystemExit, match=f"train.py: error: {work / 'epoch_12.pth'}: an init_cfg checkpoint of the "
                       'config lies in the work dir whose checkpoints --overwrite removes'):
        train_tool.main([str(config), '--work-dir', str(work), '--overwrite'])
    assert (work / 'epoch_12.pth').read_bytes() == b'an earlier training'
    assert train_tool.init_checkpoints([dict(init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
                                        dict(type='Pretrained', checkpoint='a.pth')]) == ['a.pth']


def test_resume_without_a_checkpoint_is_refused(train_tool, tiny_config, tmp_path):
    """MMEngine's resume=True quietly trains from scratch when the work dir has no checkpoint (a mistyped
    --work-dir); --resume now refuses, as --weights last does."""
    with pytest.raises(SystemExit, match=f'train.py: error: --resume: no checkpoint \\(\\*.pth\\) in the work dir '
                       f'{tmp_path}; leave --resume out'):
        train_tool.main([tiny_config, '--work-dir', str(tmp_path), '--resume'])
    with pytest.raises(Built):
        train_tool.main([tiny_config, '--work-dir', str(tmp_path)])  # a new training there is fine


def test_amp_without_a_gpu_is_refused_before_anything_is_built(train_tool, tiny_config, tmp_path, monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(SystemExit, match='train.py: error: --amp: mixed-precision training needs a GPU'):
        train_tool.main([tiny_config, '--work-dir', str(tmp_path), '--amp'])


@pytest.mark.parametrize('tool_name', ['train', 'test'])
@pytest.mark.parametrize('launcher', ['slurm', 'mpi'])
def test_a_slurm_or_mpi_launch_without_cuda_is_one_line_before_the_config_is_read(tool_name, launcher, tmp_path,
                                                                                   monkeypatch):
    """MMEngine's Slurm path would fail with a KeyError (no SLURM_PROCID) or a CUDA error; torchrun is the CPU way."""
    import torch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    tool = import_tool(tool_name)
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'not read')
    argv = [str(tmp_path / 'missing_config.py')] + ([str(checkpoint)] if tool_name == 'test' else [])
    with pytest.raises(SystemExit, match=f'{tool_name}.py: error: --launcher {launcher} needs CUDA; on CPUs start the '
                       'job with torchrun \\(tools/dist_train.sh, dist_test.sh or dist_segment.sh: '
                       '--launcher pytorch\\)'):
        tool.main(argv + ['--launcher', launcher])


def test_ctrl_c_says_how_to_continue(train_tool, tiny_config, tmp_path, monkeypatch, capsys):
    def interrupted(cfg):
        raise KeyboardInterrupt
    monkeypatch.setattr(train_tool, 'build_runner', interrupted)
    for extra, again in (([], 'the same command with --resume'), (['--weights', 'imagenet'],
                         'it again with --resume in place of --weights imagenet')):
        with pytest.raises(SystemExit) as info:
            train_tool.main([tiny_config, '--work-dir', str(tmp_path), *extra])
        assert info.value.code == 130
        assert capsys.readouterr().err.splitlines()[-1] == ('train.py: interrupted: the checkpoints saved so far are '
                                                            f'kept in the work dir; run {again} to continue')


def test_overwrite_removes_nothing_before_the_other_checks(train_tool, tiny_config, tmp_path):
    """--overwrite removed the earlier checkpoints first, the one --weights named among them (the tool's own hint
    leads there), and then failed on it; a file that is not a checkpoint was a traceback after the model was built;
    --resume with checkpoints but no last_checkpoint trained afresh over them without a word."""
    work = tmp_path / 'work'
    work.mkdir()
    best = work / 'best_coco_segm_mAP_epoch_1.pth'
    best.write_bytes(b'the earlier training')
    argv = [tiny_config, '--work-dir', str(work), '--overwrite']
    with pytest.raises(SystemExit, match=f'train.py: error: {best}: not a readable checkpoint file'):
        train_tool.main(argv + ['--weights', str(best)])
    notes = tmp_path / 'notes.txt'
    notes.write_text('not weights')
    with pytest.raises(SystemExit, match=f'train.py: error: {notes}: not a readable checkpoint file'):
        train_tool.main(argv + ['--weights', str(notes)])
    with pytest.raises(SystemExit, match=f'train.py: error: --resume: {work} has no last_checkpoint .*; give the '
                       f'checkpoint: --resume {best}'):
        train_tool.main([tiny_config, '--work-dir', str(work), '--resume'])
    assert best.read_bytes() == b'the earlier training'


def test_a_weights_file_in_the_work_dir_is_not_removed_by_overwrite(train_tool, tiny_config, tmp_path, monkeypatch):
    work = tmp_path / 'work'
    work.mkdir()
    best = work / 'best.pth'
    best.write_bytes(b'the earlier training')
    monkeypatch.setattr(train_tool, 'read_checkpoint', lambda path: {})  # a readable checkpoint, for this test
    monkeypatch.setattr(train_tool, 'check_weights_fit', lambda *args, **kwargs: None)  # ... that fits
    with pytest.raises(SystemExit, match=f'train.py: error: --weights {best}: lies in the work dir whose checkpoints '
                       '--overwrite removes'):
        train_tool.main([tiny_config, '--work-dir', str(work), '--overwrite', '--weights', str(best)])
    assert best.read_bytes() == b'the earlier training'


def test_cfg_options_without_a_value_and_a_bad_process_count_are_usage_errors(train_tool, capsys):
    import subprocess
    from helpers import REPO_ROOT
    with pytest.raises(SystemExit) as info:
        train_tool.main([str(TINY_CONFIG), '--cfg-options', 'train_cfg.max_epochs'])
    assert info.value.code == 2
    assert "argument --cfg-options: expected key=value pairs, got 'train_cfg.max_epochs'" in capsys.readouterr().err
    for script, argv in (('dist_train.sh', [str(TINY_CONFIG), 'abc']), ('dist_test.sh', [str(TINY_CONFIG), '0', 'x'])):
        result = subprocess.run(['bash', str(REPO_ROOT / 'tools' / script), *argv], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 2 and result.stderr.startswith('train.py: error: GPUS' if 'train' in script
                                                                   else 'test.py: error: GPUS'), result.stderr


def test_the_launchers_become_torchrun_and_pick_a_free_port(tmp_path):
    """dist_run.sh ran torchrun as a child: a kill (a workflow manager's terminate, Popen.terminate) ended the shell
    and left every rank running; one node always took port 29500, so a second job on the machine failed; NNODES=2
    without MASTER_ADDR waited for peers on 127.0.0.1 (until 2026-12-07)."""
    import os
    import subprocess
    import time
    from helpers import REPO_ROOT
    stub = tmp_path / 'python.sh'  # stands in for python: records its pid and arguments, then waits
    stub.write_text('#!/bin/sh\necho "$$ $*" > "$STUB_OUT"\nexec sleep 60\n')
    stub.chmod(0o755)
    out = tmp_path / 'out'
    script = str(REPO_ROOT / 'tools' / 'dist_train.sh')
    env = dict(os.environ, PYTHON=str(stub), STUB_OUT=str(out))
    env.pop('PORT', None)
    launcher = subprocess.Popen(['bash', script, 'cfg.py', '2', '--work-dir', 'a b'], env=env)
    try:
        for _ in range(100):
            if out.exists() and out.read_text():
                break
            time.sleep(0.05)
        pid, *args = out.read_text().split(' ', 1)
        assert int(pid) == launcher.pid  # the launcher is torchrun: a kill reaches it
        assert args[0].split()[:4] == ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2']
    finally:
        launcher.terminate()
        launcher.wait(timeout=10)
    result = subprocess.run(['bash', script, 'cfg.py', '2'], env=dict(env, NNODES='2'), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.strip() == ('train.py: error: NNODES=2: set MASTER_ADDR (the host '
                                                                'of node 0) and NODE_RANK on every node')


def test_slurm_reserves_the_gpus_a_small_job_asks_for(tmp_path):
    """GPUS=1 asked srun for --gres=gpu:8 (a whole node of 8, never scheduled on 4-GPU partitions) until
    2026-12-07; srun replaces the launcher as torchrun does."""
    import os
    import subprocess
    from helpers import REPO_ROOT
    srun = tmp_path / 'srun'  # stands in for srun: records its arguments
    srun.write_text('#!/bin/sh\necho "$$ $*" > "$STUB_OUT"\n')
    srun.chmod(0o755)
    out = tmp_path / 'out'
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}", STUB_OUT=str(out), GPUS='1')
    env.pop('GPUS_PER_NODE', None)
    result = subprocess.run(['bash', str(REPO_ROOT / 'tools' / 'slurm_train.sh'), 'part', 'job', 'cfg.py', 'work'],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    words = out.read_text().split()
    assert '--gres=gpu:1' in words and '--ntasks=1' in words and '--ntasks-per-node=1' in words


@pytest.mark.parametrize('tool_name', ['train', 'test'])
def test_a_missing_data_path_is_one_line_before_anything_is_built_or_written(tool_name, tiny_coco, tmp_path,
                                                                            monkeypatch):
    """The datasets named a wrong path only when the Runner built them: after the model was built, the work dir
    written and (test.py) the checkpoint loaded."""
    import shutil
    tool = import_tool(tool_name)
    monkeypatch.setattr(tool, 'build_runner', lambda cfg: pytest.fail('built'))
    root = tmp_path / 'data'
    shutil.copytree(tiny_coco, root)
    config = write_config(tmp_path / 'cfg.py', TINY_CONFIG, root)
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'never read')
    argv = [str(config)] + ([str(checkpoint)] if tool_name == 'test' else []) + ['--work-dir', str(tmp_path / 'w')]
    split = 'train' if tool_name == 'train' else 'test'
    ann = 'train' if tool_name == 'train' else 'val'
    (root / 'annotations' / f'{ann}.json').rename(tmp_path / 'ann.json')
    with pytest.raises(SystemExit, match=f'{tool_name}.py: error: {config}: {split}_dataloader.dataset ann_file not '
                       f'found: {root}/annotations/{ann}.json '):
        tool.main(argv)
    (tmp_path / 'ann.json').rename(root / 'annotations' / f'{ann}.json')
    shutil.rmtree(root / 'images' / ann)
    with pytest.raises(SystemExit, match=f'{split}_dataloader.dataset data_prefix.img not found: {root}/images/{ann}/'):
        tool.main(argv)
    shutil.rmtree(root)
    with pytest.raises(SystemExit, match=f'{split}_dataloader.dataset data_root not found: {root}/'):
        tool.main(argv)
    assert not (tmp_path / 'w').exists()


def test_weights_of_another_model_are_refused_before_training(train_tool, tiny_config, tmp_path):
    """MMEngine's load_from is lenient: a phase model's checkpoint trained the detector with random heads, after a
    warning in the log. A checkpoint of this model fits, also with other last layers (a new class count)."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    weights = MODELS.build(Config.fromfile(tiny_config).model).state_dict()
    full, other_classes, backbone = tmp_path / 'full.pth', tmp_path / 'classes.pth', tmp_path / 'backbone.pth'
    torch.save(dict(state_dict=weights), full)
    torch.save({key: value[:1] if 'fc_cls' in key or 'conv_logits' in key else value for key, value in weights.items()},
               other_classes)
    backbone_weights = {f'module.{key}': value for key, value in weights.items() if key.startswith('backbone')}
    torch.save(dict(state_dict=backbone_weights), backbone)
    for checkpoint in (full, other_classes):
        with pytest.raises(Built):
            train_tool.main([tiny_config, '--work-dir', str(tmp_path / 'w'), '--weights', str(checkpoint)])
    with pytest.raises(SystemExit, match=f"train.py: error: {backbone}: holds too few weights of this config's model "
                       'to fine-tune from \\(share of each part it fills: neck 0%, rpn_head 0%, roi_head 0%\\)'):
        train_tool.main([tiny_config, '--work-dir', str(tmp_path / 'w'), '--weights', str(backbone)])
    # --resume also restores the optimizer state: only a checkpoint of this very model (the model loads leniently, the
    # AdamW state of other class counts fails at the first step)
    with pytest.raises(Built):
        train_tool.main([tiny_config, '--work-dir', str(tmp_path / 'w'), '--resume', str(full)])
    for checkpoint, partial in ((other_classes, 'roi_head 99.9%'), (backbone, 'neck 0%, rpn_head 0%, roi_head 0%')):
        with pytest.raises(SystemExit, match=f"train.py: error: {checkpoint}: is not a checkpoint of this config's "
                           f'model \\(share of each part it fills: {partial}\\), so the training cannot resume '
                           'from it; fine-tune from it with --weights instead'):
            train_tool.main([tiny_config, '--work-dir', str(tmp_path / 'w'), '--resume', str(checkpoint)])
    deeper = tmp_path / 'r34.py'  # ResNet-18 weights into ResNet-34: over half of its backbone filled
    deeper.write_text(f'_base_ = {tiny_config!r}\nmodel = dict(backbone=dict(depth=34))\n')
    with pytest.raises(SystemExit, match=f"train.py: error: {full}: holds too few weights .* \\(share of each part it "
                       'fills: backbone [5-9][0-9]%\\)'):
        train_tool.main([str(deeper), '--work-dir', str(tmp_path / 'w'), '--weights', str(full)])
