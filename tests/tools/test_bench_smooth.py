"""benchmarks/bench_smooth.py: linked or fused views, every N-th slice with the voxel size a scan would record, and
the smoothed labels scored beside the plain ones (the segmentation replaced by the truth: no model needed)."""
import json
import types

import numpy as np
import pytest

import libnet_mmdet.apis
from helpers import import_benchmark


@pytest.fixture(scope='module')
def bench():
    return import_benchmark('bench_smooth')


def balls(shape=(16, 40, 40), radius=6):
    """Two balls of ids 1 and 2 in a (Z, Y, X) volume, and an image of them."""
    zz, yy, xx = np.indices(shape)
    labels_zyx = np.zeros(shape, np.uint16)
    for k, x in enumerate((12, 28), 1):
        labels_zyx[(zz - 8) ** 2 + (yy - 20) ** 2 + (xx - x) ** 2 <= radius ** 2] = k
    return types.SimpleNamespace(labels_zyx=labels_zyx, image_zyx=(labels_zyx > 0).astype(np.float32))


def test_linked_views_on_every_second_slice(bench, tmp_path, monkeypatch):
    volume = balls()
    calls = []

    clock = iter(range(100))  # the run record's clock: one tick per reading
    monkeypatch.setattr(bench, 'run_record', lambda: dict(started=next(clock)))
    monkeypatch.setattr(bench, 'finish_record', lambda record: dict(record, finished=next(clock)))

    def segment(model, image_zyx, views, scale, min_voxels, smooth, voxel_size_nm):
        next(clock)  # the segmentation takes time
        calls.append((image_zyx.shape, views, smooth, voxel_size_nm))
        return volume.labels_zyx[::2], 1.0, 1.0  # a perfect segmentation of the slices it was given

    monkeypatch.setattr(bench, 'make_volume', lambda preset, diameter, seed: volume)
    monkeypatch.setattr(bench, 'segment_timed', segment)
    monkeypatch.setattr(libnet_mmdet.apis, 'generalist_files', lambda folder: ('config.py', 'model.pth'))
    monkeypatch.setattr(libnet_mmdet.apis, 'init_segmenter', lambda *files, device: None)
    out = tmp_path / 'smooth.json'

    bench.main(['--views', 'linked', '--z-step', '2', '--presets', 'clean', '--diameters', '12', '--seeds', '1',
                '--sigmas', '0.75', '--out', str(out)])

    assert calls == [((8, 40, 40), ('xy',), 'none', (200.0, 100.0, 100.0))]
    result = json.loads(out.read_text())
    assert (result['started'], result['finished']) == (0, 2)  # started before the run (was taken at its end)
    cell = result['cells']['clean 12 px']
    assert cell['none'] == {'f1_50': 1.0, 'f1_50_2d': 1.0}
    assert cell['sigma 0.75']['f1_50'] == 1.0  # two balls smoothed stay two balls


def test_z_step_below_one_is_refused(bench):
    with pytest.raises(SystemExit):
        bench.parse_args(['--z-step', '0'])
