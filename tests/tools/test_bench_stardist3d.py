"""benchmarks/bench_stardist3d.py's training volumes (the generalist's corpus resized into auto's target band), its
crops and its refusals; the StarDist run itself needs its own TensorFlow environment
(benchmarks/requirements-stardist.txt) and is not part of the suite."""
import json
import sys

import numpy as np
import pytest
from mmengine.config import Config

from helpers import import_benchmark


@pytest.fixture(scope='module')
def bench():
    return import_benchmark('bench_stardist3d')


class Generalist:
    """What the benchmark reads of the generalist: its trained diameters and its training corpus."""
    particle_diameter_px = (12, 48)

    def __init__(self, corpus):
        self.cfg = Config(dict(train_dataloader=dict(dataset=dict(data_root=str(corpus) + '/'))))


def test_the_target_band_is_where_auto_brings_particles(bench, tmp_path):
    assert bench.target_band(Generalist(tmp_path)) == (24.0, 36.0)


def test_training_volumes_are_the_corpus_resized_into_the_band(bench, tmp_path):
    from libnet_mmdet.synth import write_corpus
    corpus = tmp_path / 'corpus'
    write_corpus(corpus, 2, seed=3, shape_zyx=(16, 64, 64), progress=False, cb_domain_fraction=0.0,
                 mean_diameter_vox=10.0)
    listed = json.loads((corpus / 'corpus.json').read_text())['volumes']

    images, labels, record = bench.training_volumes(Generalist(corpus), seed=1)

    assert len(images) == len(labels) == len(record) == 2
    for image, label, entry, volume in zip(images, labels, record, listed):
        assert image.dtype == np.float32 and label.dtype == np.int32
        assert image.shape == label.shape == tuple(entry['shape_zyx'])
        assert all(have >= want for have, want in zip(image.shape, bench.PATCH_ZYX))  # a patch fits
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert 24.0 <= entry['factor'] * volume['params']['mean_diameter_vox'] <= 36.0
        ids = np.unique(label[label > 0])
        assert len(ids) >= 3
        assert image[label > 0].mean() > image[label == 0].mean()  # the labels still sit on the particles
    again, _, _ = bench.training_volumes(Generalist(corpus), seed=1)
    np.testing.assert_array_equal(again[0], images[0])  # one seed, one draw


def test_a_thin_volume_of_large_particles_is_grown_to_hold_a_patch(bench, tmp_path):
    from libnet_mmdet.synth import write_corpus
    corpus = tmp_path / 'corpus'
    write_corpus(corpus, 1, seed=5, shape_zyx=(16, 64, 64), progress=False, cb_domain_fraction=0.0,
                 mean_diameter_vox=30.0)  # the band alone would resize by 0.8-1.2: too thin for a 32-slice patch
    images, labels, record = bench.training_volumes(Generalist(corpus), seed=1)
    assert record[0]['factor'] == pytest.approx(2.0)  # 32 / 16 slices
    assert images[0].shape == labels[0].shape == (32, 128, 128)


def test_resizing_keeps_labels_whole_numbers_on_their_voxels(bench):
    labels = np.zeros((4, 6, 6), np.int32)
    labels[:2, :3, :3] = 7
    image = (labels > 0).astype(np.float32)
    big_image, big_labels = bench.resized(image, labels, 2.0)
    assert big_labels.shape == big_image.shape == (8, 12, 12)
    assert set(np.unique(big_labels)) == {0, 7}
    np.testing.assert_array_equal(big_labels[:4, :6, :6], 7)
    np.testing.assert_array_equal(bench.middle(np.arange(10)[:, None, None] * np.ones((1, 3, 3)), (4, 8, 8))[:, 0, 0],
                                  [3, 4, 5, 6])  # the middle, and all of an axis shorter than asked


@pytest.mark.parametrize('shape, orientations', [((8, 6), 8), ((4, 8, 6), 16)])
def test_the_worker_turns_and_flips_patches_with_their_labels(shape, orientations):
    worker = import_benchmark('stardist_worker')
    rng = np.random.default_rng(0)
    image = rng.random(shape).astype(np.float32)
    labels = (image * 100).astype(np.int32)  # labels a function of the pixel: any misalignment shows
    np.random.seed(0)
    seen = set()
    for _ in range(200):
        turned_image, turned_labels = worker.augment_patch(image, labels)
        np.testing.assert_array_equal(turned_labels, (turned_image * 100).astype(np.int32))
        if len(shape) == 3:
            assert {tuple(np.sort(s.ravel())) for s in turned_image} == {tuple(np.sort(s.ravel())) for s in image}
        seen.add(turned_image.tobytes() + bytes(turned_image.shape))
    # 2D: the four turns, each flipped or not; 3D: those in y-x, each with z flipped or not (slices stay slices)
    assert len(seen) == orientations


def test_a_model_folder_trained_otherwise_is_refused_before_anything(bench, tmp_path, capsys):
    record = tmp_path / 'model' / 'stardist' / 'train.json'
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps(dict(dims=2, epochs=40, steps_per_epoch=50)))  # the 2D benchmark's model
    out = tmp_path / 'out.json'
    common = ['--stardist-python', sys.executable, '--model-dir', str(tmp_path / 'model'), '--out', str(out)]
    with pytest.raises(SystemExit):
        bench.parse_args(common)
    assert 'holds a StarDist trained with other settings' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(common + ['--seeds', '7000'])
    assert '7000 holds the validation volumes' in capsys.readouterr().err
    assert not out.exists()


def test_a_finished_3d_training_of_the_same_settings_is_reused(bench, tmp_path):
    record = tmp_path / 'model' / 'stardist' / 'train.json'
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps(dict(dims=3, epochs=40, steps_per_epoch=50,
                                      validation_presets=['clean', 'typical', 'hard'],
                                      validation_diameters=[12.0, 24.0, 48.0])))
    generalist = tmp_path / 'generalist'  # a finished build as make model leaves it (files only)
    generalist.mkdir()
    for name in ('config.py', 'model.pth', 'model.json'):
        (generalist / name).write_text('')
    args = bench.parse_args(['--stardist-python', sys.executable, '--model-dir', str(tmp_path / 'model'),
                             '--generalist', str(generalist), '--out', str(tmp_path / 'out.json')])
    assert (args.epochs, args.steps, args.seeds) == (40, 50, [5000])
