"""tools/demo.py's checks, before any work: its arguments, its device, and a folder of another demo or of no demo."""
import json

import pytest

from helpers import import_tool


@pytest.fixture
def demo_tool():
    return import_tool('demo')


@pytest.mark.parametrize('bad, message', [(['--iters', '0'], 'argument --iters: expected an integer >= 1'),
                                          (['--voxel-size-nm', '0'], '--voxel-size-nm must be a number > 0'),
                                          (['--voxel-size-nm', 'nan'], '--voxel-size-nm must be a number > 0'),
                                          (['--device', 'gpu'], "argument --device: expected 'cpu'")])
def test_bad_arguments_are_refused_while_parsing(demo_tool, tmp_path, capsys, bad, message):
    with pytest.raises(SystemExit) as info:
        demo_tool.main(['--out', str(tmp_path / 'demo'), *bad])
    assert info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / 'demo').exists()


def test_a_cuda_device_without_cuda_is_refused_before_anything(demo_tool, tmp_path, monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(SystemExit, match="demo.py: error: device 'cuda:0' \\(--device\\): CUDA is not available"):
        demo_tool.main(['--out', str(tmp_path / 'demo'), '--model', 'own', '--device', 'cuda:0'])
    assert not (tmp_path / 'demo').exists()


def test_a_demo_folder_is_continued_only_with_its_own_settings(demo_tool, tmp_path):
    """A rerun with other settings used to keep the earlier volumes and model while its report named the new ones;
    it is refused now, and --overwrite starts afresh. A folder that no demo made is never used."""
    from libnet_mmdet.io import InputError
    out = tmp_path / 'demo'
    settings = dict(size='small', voxel_size_nm=100.0, recipe='tiny', iters=2, device='cpu')
    demo_tool.prepare_demo_dir(str(out), settings, overwrite=False)
    (out / 'scores.csv').write_text('earlier scores')
    demo_tool.prepare_demo_dir(str(out), settings, overwrite=False)  # the same settings: continued
    assert (out / 'scores.csv').read_text() == 'earlier scores'
    other = dict(settings, voxel_size_nm=50.0, iters=3)
    with pytest.raises(InputError, match=f'{out}: holds a demo made with other settings \\(iters, voxel_size_nm\\)'):
        demo_tool.prepare_demo_dir(str(out), other, overwrite=False)
    assert (out / 'scores.csv').read_text() == 'earlier scores'
    demo_tool.prepare_demo_dir(str(out), other, overwrite=True)
    assert [p.name for p in out.iterdir()] == ['demo.json'] and json.loads((out / 'demo.json').read_text()) == other
    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'pred_labels_xy.tif').write_text('not a demo output')
    for overwrite in (False, True):
        with pytest.raises(InputError, match=f'{mine}: not empty and not a folder of this demo'):
            demo_tool.prepare_demo_dir(str(mine), settings, overwrite=overwrite)
    assert (mine / 'pred_labels_xy.tif').read_text() == 'not a demo output'


def test_a_damaged_demo_record_is_named(demo_tool, tmp_path):
    """A damaged demo.json gave the JSON parser's message alone, without the file."""
    from libnet_mmdet.io import InputError
    out = tmp_path / 'demo'
    out.mkdir()
    (out / 'demo.json').write_text('{bad')
    settings = dict(size='small', voxel_size_nm=100.0, recipe='tiny', iters=2, device='cpu')
    with pytest.raises(InputError, match=f"{out / 'demo.json'}: damaged .*; pass --overwrite to start afresh"):
        demo_tool.prepare_demo_dir(str(out), settings, overwrite=False)
    demo_tool.prepare_demo_dir(str(out), settings, overwrite=True)
    assert json.loads((out / 'demo.json').read_text()) == settings


def test_the_r101_recipe_on_the_cpu_is_refused_before_anything(demo_tool, tmp_path):
    """It started 1000 iterations of the GPU recipe on the CPU without a word."""
    with pytest.raises(SystemExit, match='demo.py: error: --recipe r101: the R101 recipe trains on a GPU'):
        demo_tool.main(['--out', str(tmp_path / 'demo'), '--model', 'own', '--recipe', 'r101'])
    assert not (tmp_path / 'demo').exists()


def test_a_final_checkpoint_cut_short_is_trained_again_not_loaded(demo_tool, tmp_path, monkeypatch):
    """A kill while the last checkpoint was written left iter_N.pth cut short, and the demo took it as trained."""
    work_dir = tmp_path / 'work_dir'
    work_dir.mkdir()
    (work_dir / 'iter_10.pth').write_bytes(b'cut short')
    (work_dir / 'iter_5.pth').write_bytes(b'whole')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_5.pth'))  # the hook's record: 10 never finished
    trained = []
    monkeypatch.setattr(demo_tool, 'run_train_tool', lambda config, work, device: trained.append(work) or 1.0)
    monkeypatch.setattr(demo_tool, 'record_seconds', lambda *args: None)
    demo_tool.train(str(tmp_path), 'configs/nmc/mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py', 10, 'cpu')
    assert trained == [str(work_dir)]  # resumed from iter_5
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_10.pth'))
    demo_tool.train(str(tmp_path), 'configs/nmc/mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py', 10, 'cpu')
    assert trained == [str(work_dir)]  # finished: not trained again
