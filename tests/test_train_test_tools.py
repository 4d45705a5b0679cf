"""tools/train.py and tools/test.py end to end on a tiny COCO dataset with the CPU-tiny config."""
import pickle
from pathlib import Path

import pytest

from helpers import TINY_CONFIG, import_tool, run_tool, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def trained(trained_tiny):
    """(config path, work dir) of the session's 1-epoch (2-iteration) CPU-tiny training run."""
    config, checkpoint = trained_tiny
    return config, checkpoint.parent


@pytest.fixture(scope='module')
def test_tool():
    """tools/test.py in this process, for the refusals (no start-up of a new interpreter for a one-line error)."""
    return import_tool('test')


def refusal(tool, *argv):
    """The one error line ``tool.main(argv)`` exits with (it fails the test if the tool does not exit)."""
    with pytest.raises(SystemExit) as exit_info:
        tool.main([str(arg) for arg in argv])
    return str(exit_info.value.code)


def test_train_writes_a_checkpoint(trained):
    _, work_dir = trained
    assert (work_dir / 'epoch_1.pth').is_file()
    assert (work_dir / 'last_checkpoint').read_text().strip().endswith('epoch_1.pth')


def test_test_prints_bbox_and_segm_metrics_and_dumps_results(trained, tmp_path):
    config, work_dir = trained
    out = tmp_path / 'results.pkl'
    (tmp_path / config.name).write_text('# the training config dump')  # the same work dir: not replaced
    result = run_tool('tools/test.py', config, work_dir / 'epoch_1.pth', '--work-dir', tmp_path, '--out', out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / config.name).read_text() == '# the training config dump'
    assert len(list(tmp_path.glob('2*.py'))) == 1  # this run's config, named by its timestamp
    log = result.stdout + result.stderr
    assert 'coco/bbox_mAP' in log and 'coco/segm_mAP' in log
    with open(out, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 2  # the two val images


def test_show_dir_draws_each_slice_of_a_stack_into_its_own_file(trained, tmp_path):
    """mmdet's hook decoded a float32 stack with OpenCV (a traceback), or drew every slice on the first page into one
    file (until 2026-12-07): each z slice now gets its own overlay, drawn on that slice."""
    import numpy as np
    import tifffile
    from PIL import Image
    config, work_dir = trained
    rng = np.random.default_rng(0)
    labels = np.zeros((3, 48, 48), np.uint16)
    for z, (y, x) in enumerate(((12, 12), (24, 30), (36, 20))):  # one particle per slice, each somewhere else
        labels[z, y - 6:y + 6, x - 6:x + 6] = 1
    image = (labels * 5000 + rng.normal(1000, 50, labels.shape)).astype(np.float32)
    tifffile.imwrite(tmp_path / 'image.tif', image, photometric='minisblack')
    tifffile.imwrite(tmp_path / 'labels.tif', labels, photometric='minisblack')
    stack_config = tmp_path / 'stack.py'
    stack_config.write_text(
        f"_base_ = {str(config)!r}\n"
        f"test_dataloader = dict(dataset=dict(_delete_=True, type='LabelTiffDataset', data_root={str(tmp_path)!r}, "
        "data_prefix=dict(img='image.tif', label='labels.tif'), pipeline={{_base_.test_pipeline}}))\n"
        "test_evaluator = dict(_delete_=True, type='InstanceMatchingMetric')\n")
    result = run_tool('tools/test.py', stack_config, work_dir / 'epoch_1.pth', '--work-dir', tmp_path / 'work',
                      '--show-dir', tmp_path / 'vis')
    assert result.returncode == 0, result.stderr[-3000:]
    names = sorted(path.name for path in (tmp_path / 'vis').glob('*.png'))
    assert names == ['image_z0000.png', 'image_z0001.png', 'image_z0002.png']
    for z, name in enumerate(names):  # the ground truth's side of each picture is the slice's own bright square
        picture = np.asarray(Image.open(tmp_path / 'vis' / name).convert('L')).astype(float)
        gray = picture[:, :48]
        assert gray[labels[z] > 0].mean() > gray[labels[z] == 0].mean() + 50, name


@pytest.mark.parametrize('how', ['resume', 'weights-last'])
def test_resume_continues_from_the_checkpoint(trained, tmp_path, how):
    import shutil
    config, work_dir = trained
    resume_dir = tmp_path / 'work'
    shutil.copytree(work_dir, resume_dir)
    flag = ['--resume'] if how == 'resume' else ['--weights', 'last']
    result = run_tool('tools/train.py', config, '--work-dir', resume_dir, *flag,
                      '--cfg-options', 'train_cfg.max_epochs=2')
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert 'resumed epoch: 1' in log
    assert (resume_dir / 'epoch_2.pth').is_file()


@pytest.mark.parametrize('how', ['load_from', 'weights-path'])
def test_fine_tune_loads_weights(trained, tmp_path, how):
    config, work_dir = trained
    ckpt = work_dir / 'epoch_1.pth'
    flag = (['--cfg-options', f'load_from={ckpt}', 'train_cfg.max_epochs=1'] if how == 'load_from'
            else ['--weights', ckpt, '--cfg-options', 'train_cfg.max_epochs=1'])
    result = run_tool('tools/train.py', config, '--work-dir', tmp_path / 'work', *flag)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert f'Load checkpoint from {ckpt}' in log
    assert 'resumed epoch' not in log  # fine-tuning starts a new schedule
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()


def test_missing_checkpoint_is_named(tiny_coco, tmp_path):
    config = write_config(tmp_path / 'cfg.py', TINY_CONFIG, tiny_coco)
    result = run_tool('tools/test.py', config, tmp_path / 'missing.pth')
    assert result.returncode != 0
    assert f"checkpoint file not found: {tmp_path / 'missing.pth'}" in result.stderr


def test_a_checkpoint_of_another_model_or_no_checkpoint_is_one_line(trained, tmp_path, tiny_coco, test_tool):
    """tools/test.py used to score a checkpoint of another config (MMEngine loads leniently: a partly untrained
    model) and to give a traceback for a file that is not a checkpoint, both after building the runner."""
    from helpers import R101_CONFIG
    config, work_dir = trained
    r101 = write_config(tmp_path / 'r101.py', R101_CONFIG, tiny_coco)
    line = refusal(test_tool, r101, work_dir / 'epoch_1.pth', '--work-dir', tmp_path)
    assert line.startswith('test.py: error: config/checkpoint mismatch')
    bad = tmp_path / 'bad.pth'
    bad.write_text('x')
    line = refusal(test_tool, config, bad, '--work-dir', tmp_path)
    assert line.startswith(f'test.py: error: {bad}: not a readable checkpoint file')


def test_show_dir_outside_the_work_dir_never_holds_or_enters_the_test_data(trained, tmp_path, tiny_coco, test_tool):
    config, work_dir = trained
    images = tiny_coco / 'images' / 'val'
    before = sorted(p.name for p in images.iterdir())
    for show_dir in (images, images / 'overlays', tiny_coco):
        line = refusal(test_tool, config, work_dir / 'epoch_1.pth', '--work-dir', tmp_path, '--show-dir', show_dir,
                       '--overwrite')
        assert line.startswith('test.py: error:'), show_dir
        assert 'lies inside the input folder' in line or 'holds the input' in line
    assert sorted(p.name for p in images.iterdir()) == before


def test_a_show_dir_out_of_the_run_s_own_folder_is_checked(trained, tmp_path, tiny_coco, test_tool):
    """mmdet writes --show-dir to WORK_DIR/<timestamp>/DIR: an absolute path inside the work dir and '../vis'
    (WORK_DIR/vis, the same for every run) passed unchecked, so overlays could replace the test images or an earlier
    run's overlays."""
    config, work_dir = trained
    images = tiny_coco / 'images' / 'val'
    before = sorted(p.name for p in images.iterdir())
    line = refusal(test_tool, config, work_dir / 'epoch_1.pth', '--work-dir', tiny_coco, '--show-dir', images,
                   '--overwrite')
    assert line.startswith('test.py: error:') and ('lies inside the input folder' in line or 'holds the input' in line)
    assert sorted(p.name for p in images.iterdir()) == before
    earlier = tmp_path / 'work' / 'vis'
    earlier.mkdir(parents=True)
    (earlier / 'earlier.png').write_bytes(b'an earlier overlay')
    line = refusal(test_tool, config, work_dir / 'epoch_1.pth', '--work-dir', tmp_path / 'work', '--show-dir', '../vis')
    assert line.startswith(f'test.py: error: {earlier}: folder is not empty'), line
    assert (earlier / 'earlier.png').read_bytes() == b'an earlier overlay'


def test_an_earlier_show_dir_is_emptied_only_once_the_checkpoint_fits(trained, tmp_path, test_tool):
    """--show-dir DIR --overwrite emptied DIR (an earlier run's overlays) before the checkpoint check failed."""
    from libnet_mmdet.io import prepare_output_dir
    config, _ = trained
    show_dir = tmp_path / 'overlays'
    prepare_output_dir(show_dir)
    (show_dir / 'earlier.png').write_bytes(b'an earlier overlay')
    bad = tmp_path / 'bad.pth'
    bad.write_text('x')
    line = refusal(test_tool, config, bad, '--work-dir', tmp_path / 'work', '--show-dir', show_dir, '--overwrite')
    assert line.startswith('test.py: error:') and f'{bad}: not a readable checkpoint file' in line
    assert (show_dir / 'earlier.png').read_bytes() == b'an earlier overlay'


def test_a_show_dir_holding_the_model_files_is_refused(trained, tmp_path, test_tool):
    """The config and checkpoint kept in an earlier --show-dir of ours: --overwrite emptied it before the test ran
    (until 2026-12-07), so the run failed on a checkpoint it had just removed."""
    import shutil
    from libnet_mmdet.io import prepare_output_dir
    config, work_dir = trained
    show_dir = prepare_output_dir(tmp_path / 'overlays')
    kept = shutil.copy(work_dir / 'epoch_1.pth', tmp_path / 'overlays' / 'model.pth')
    line = refusal(test_tool, config, kept, '--work-dir', tmp_path / 'work', '--show-dir', show_dir, '--overwrite')
    assert line == f'test.py: error: {show_dir}: the output folder holds the input {kept}; choose another folder'
    assert Path(kept).is_file()
