"""tools/segment.py defaults (issue 15): the generalist model when --config/--checkpoint are not given (a clear error
when it is not built), --scale auto | F [F ...], --views auto (the default) | names, and --report writing the
particle table. The model is a stand-in predictor (``init_segmenter`` patched); a stand-in that fails marks where no
model may be loaded."""
import csv
import runpy

import numpy as np
import pytest
import tifffile

from helpers import REPO_ROOT, never_loaded
from libnet_mmdet.apis import generalist_files
from libnet_mmdet.apis.model import GENERALIST_DIR
from libnet_mmdet.volume.testing import IntensityPredictor, sphere_labels

SEGMENT = 'tools/segment.py'


@pytest.fixture
def stack(tmp_path):
    labels = sphere_labels((12, 48, 48), [((5, 14, 14), 11), ((6, 33, 32), 12)])
    path = tmp_path / 'stack.tif'
    tifffile.imwrite(path, np.array([0, 200, 120], np.uint8)[labels])
    return path


def _written(stack):
    return sorted(p.name for p in stack.parent.iterdir())


@pytest.fixture
def generalist(monkeypatch):
    """The generalist is 'built' (``generalist_files`` patched); ``init_segmenter`` records what it loads and
    returns a predictor that records trained diameters, as the generalist's config does."""
    loaded = []
    predictor = IntensityPredictor()
    predictor.particle_diameter_px = (12, 48)
    monkeypatch.setattr('libnet_mmdet.apis.generalist_files', lambda: ('generalist/config.py', 'generalist/model.pth'))
    monkeypatch.setattr('libnet_mmdet.apis.init_segmenter', lambda *args, **kwargs: loaded.append(args) or predictor)
    return loaded


def test_generalist_files_are_found_when_built(tmp_path):
    assert generalist_files(tmp_path) is None
    (tmp_path / 'config.py').write_text('')
    assert generalist_files(tmp_path) is None  # no checkpoint yet: not built
    (tmp_path / 'model.pth').write_bytes(b'')
    assert generalist_files(tmp_path) is None  # model.json, written last, marks a finished build
    (tmp_path / 'model.json').write_text('{}')
    assert generalist_files(tmp_path) == (str(tmp_path / 'config.py'), str(tmp_path / 'model.pth'))
    assert GENERALIST_DIR == str(REPO_ROOT / 'models' / 'generalist')


def test_without_a_model_the_error_says_how_to_get_one(run_script, stack, monkeypatch):
    monkeypatch.setattr('libnet_mmdet.apis.generalist_files', lambda: None)
    monkeypatch.setattr('libnet_mmdet.apis.init_segmenter', never_loaded)
    out = stack.parent / 'labels.tif'
    with pytest.raises(SystemExit, match=r'segment.py: error: no model: the generalist model is not built '
                                         r'.*run `make model`, or pass --config and --checkpoint'):
        run_script(SEGMENT, stack, '--out', out, '--device', 'cpu')
    with pytest.raises(SystemExit, match='segment.py: error: --config and --checkpoint go together'):
        run_script(SEGMENT, stack, '--out', out, '--device', 'cpu', '--config', 'model.py')
    assert _written(stack) == ['stack.tif']


def test_the_generalist_and_auto_scale_are_the_defaults(run_script, stack, generalist, capsys):
    run_script(SEGMENT, stack, '--out', stack.parent / 'labels.tif', '--device', 'cpu')
    assert generalist == [('generalist/config.py', 'generalist/model.pth')]
    captured = capsys.readouterr()
    assert 'model: the generalist (generalist/config.py, generalist/model.pth)' in captured.err
    assert 'scale: auto -> ' in captured.out and 'model trained for 12-48 px' in captured.out
    assert 'min_voxels: auto -> ' in captured.out and 'smooth: auto -> ' in captured.out
    assert tifffile.imread(stack.parent / 'labels.tif').max() > 0


@pytest.fixture(scope='module')
def segment_functions():
    return runpy.run_path(str(REPO_ROOT / SEGMENT))


@pytest.mark.parametrize('words, scale', [
    ([], None), (['auto'], 'auto'), (['0.5'], 0.5), (['0.25', '0.5'], [0.25, 0.5]),
])
def test_scale_words(segment_functions, stack, words, scale):
    args = segment_functions['parse_args']([str(stack), '--out', str(stack.parent / 'l.tif'), '--config', 'c.py',
                                            '--checkpoint', 'c.pth'] + (['--scale', *words] if words else []))
    assert segment_functions['check_args'](args)['scale'] == scale


@pytest.mark.parametrize('words, views', [
    ([], 'auto'), (['auto'], 'auto'), (['xy'], ('xy',)), (['xy', 'xz', 'yz'], ('xy', 'xz', 'yz')),
])
def test_views_words(segment_functions, stack, words, views):
    args = segment_functions['parse_args']([str(stack), '--out', str(stack.parent / 'l.tif'), '--config', 'c.py',
                                            '--checkpoint', 'c.pth'] + (['--views', *words] if words else []))
    assert segment_functions['check_args'](args)['views'] == views


@pytest.mark.parametrize('words, min_voxels', [([], None), (['auto'], 'auto'), (['100'], 100)])
def test_min_voxels_words(segment_functions, stack, words, min_voxels):
    args = segment_functions['parse_args']([str(stack), '--out', str(stack.parent / 'l.tif'), '--config', 'c.py',
                                            '--checkpoint', 'c.pth'] + (['--min-voxels', *words] if words else []))
    assert segment_functions['check_args'](args)['min_voxels'] == min_voxels


@pytest.mark.parametrize('words, smooth', [([], 'auto'), (['auto'], 'auto'), (['1.5'], 1.5), (['0'], 0)])
def test_smooth_words(segment_functions, stack, words, smooth):
    args = segment_functions['parse_args']([str(stack), '--out', str(stack.parent / 'l.tif'), '--config', 'c.py',
                                            '--checkpoint', 'c.pth'] + (['--smooth', *words] if words else []))
    assert segment_functions['check_args'](args)['smooth'] == smooth


@pytest.mark.parametrize('words, message', [
    (['auto', '0.5'], r'scale \(--scale\): give auto or numbers, not both'),
    (['0'], r'scale must be in \(0, 16\]'),
    (['0.5', '-1'], r'scale must be in \(0, 16\]'),
])
def test_bad_scale_words_are_refused_before_the_model_is_loaded(run_script, stack, monkeypatch, words, message):
    monkeypatch.setattr('libnet_mmdet.apis.init_segmenter', never_loaded)
    with pytest.raises(SystemExit, match=f'segment.py: error: {message}'):
        run_script(SEGMENT, stack, '--out', stack.parent / 'l.tif', '--config', 'c.py', '--checkpoint', 'c.pth',
                   '--scale', *words)
    assert _written(stack) == ['stack.tif']


def test_scale_that_is_not_a_number_is_an_argparse_error(segment_functions, stack, capsys):
    with pytest.raises(SystemExit) as info:
        segment_functions['parse_args']([str(stack), '--out', 'l.tif', '--scale', 'big'])
    assert info.value.code == 2 and "expected 'auto' or a number, got 'big'" in capsys.readouterr().err


def test_report_writes_the_particle_table(run_script, stack, generalist, capsys):
    report = stack.parent / 'report'
    run_script(SEGMENT, stack, '--out', stack.parent / 'labels.tif', '--device', 'cpu', '--scale', '1',
               '--voxel-size-nm', '50', '--report', report, '--phase-model', 'none')  # multi-Otsu: no phase model
    with open(report / 'particles.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and float(rows[0]['esd_um']) > 0
    assert {'summary.json', 'summary.md', 'esd_histogram.png'} <= {p.name for p in report.iterdir()}
    assert f'wrote the particle report (2 particles) to {report}' in capsys.readouterr().out


@pytest.mark.parametrize('report, extra, message', [
    ('new', [], r'--report: .*stack.tif records no voxel size; pass --voxel-size-nm'),
    ('used', ['--voxel-size-nm', '50'], r'used: folder is not empty; pass --overwrite'),
    ('.', ['--voxel-size-nm', '50'], r'the output folder holds the input'),
])
def test_report_folder_and_voxel_size_are_checked_before_the_model_is_loaded(run_script, stack, monkeypatch,
                                                                             report, extra, message):
    monkeypatch.setattr('libnet_mmdet.apis.init_segmenter', never_loaded)
    (stack.parent / 'used').mkdir()
    (stack.parent / 'used' / 'mine.txt').write_text('keep')
    with pytest.raises(SystemExit, match=f'segment.py: error: .*{message}'):
        run_script(SEGMENT, stack, '--out', stack.parent / 'labels.tif', '--config', 'c.py', '--checkpoint',
                   'c.pth', '--report', stack.parent / report, *extra)
    assert _written(stack) == ['stack.tif', 'used'] and (stack.parent / 'used' / 'mine.txt').read_text() == 'keep'
