"""benchmarks/bench_stardist.py's training data (the generalist's own pipeline, as label images) and its
worker's augmentation and view layout; the StarDist run itself needs its own TensorFlow environment
(benchmarks/requirements-stardist.txt) and is not part of the suite."""
import numpy as np
import pytest

from helpers import REPO_ROOT, import_benchmark

GENERALIST_CONFIG = REPO_ROOT / 'configs' / 'nmc' / 'mask-rcnn_r18-gn_fpn-c64_cpu-tiny_generalist.py'


@pytest.fixture(scope='module')
def bench():
    return import_benchmark('bench_stardist')


def test_masks_become_one_label_image_the_later_mask_winning(bench):
    masks = np.zeros((2, 4, 5), bool)
    masks[0, :2, :3] = True
    masks[1, 1:3, 2:4] = True
    labels = bench.labels_from_masks(masks)
    expected = np.array([[1, 1, 1, 0, 0], [1, 1, 2, 2, 0], [0, 0, 2, 2, 0], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(labels, expected)
    assert labels.dtype == np.int32
    assert bench.pad_to(labels, (6, 4)).shape == (6, 5)  # padded where short, never cut


def test_training_samples_are_the_generalist_pipeline_draws_as_label_images(bench, tmp_path):
    from libnet_mmdet.synth import write_corpus
    corpus = tmp_path / 'corpus'
    write_corpus(corpus, 1, seed=3, shape_zyx=(16, 96, 96), progress=False, cb_domain_fraction=0.0)
    config = tmp_path / 'config.py'
    config.write_text(f'_base_ = {str(GENERALIST_CONFIG)!r}\n'
                      f"train_dataloader = dict(dataset=dict(data_root={str(corpus) + '/'!r}))\n")

    images, labels = bench.training_samples(str(config), 6, seed=1)

    assert images.shape == labels.shape == (6, 256, 256)
    assert images.dtype == np.float32 and labels.dtype == np.int32
    assert 0.0 <= images.min() and images.max() <= 1.0
    for image, label in zip(images, labels):
        assert label.max() >= 1
        assert not image[label > 0].size or image[label > 0].mean() > image[label == 0].mean()  # particles bright
    again, _ = bench.training_samples(str(config), 6, seed=1)
    np.testing.assert_array_equal(again, images)  # one seed, one draw


def test_side_view_labels_land_where_fuse_views_reads_them(bench, monkeypatch):
    rng = np.random.default_rng(1)
    image = rng.random((5, 7, 9)).astype(np.float32)
    seen = []

    def threshold(args, images, scales):  # a stand-in for the StarDist worker: labels = bright pixels
        seen.extend(image.shape for image in images)
        return [(image > 0.5).astype(np.int32) for image in images], 0.25

    monkeypatch.setattr(bench, 'predict', threshold)
    labels_xz, labels_yz, seconds = bench.view_labels(None, image, 1.0)
    assert seconds == 0.25
    assert seen == [(5, 9)] * 7 + [(5, 7)] * 9  # every xz slice (Z, X), then every yz slice (Z, Y)
    np.testing.assert_array_equal(labels_xz, image > 0.5)
    np.testing.assert_array_equal(labels_yz, image > 0.5)


def test_a_model_folder_trained_otherwise_is_refused_before_anything(bench, tmp_path, capsys):
    import json
    import sys
    record = tmp_path / 'model' / 'stardist' / 'train.json'
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps(dict(samples=1800, epochs=60, steps_per_epoch=100, validation_presets=['hard'],
                                      validation_diameters=[12.0])))
    out = tmp_path / 'out.json'
    generalist = tmp_path / 'generalist'  # a finished build as make model leaves it (files only)
    generalist.mkdir()
    for name in ('config.py', 'model.pth', 'model.json'):
        (generalist / name).write_text('')
    common = ['--stardist-python', sys.executable, '--model-dir', str(tmp_path / 'model'), '--out', str(out),
              '--generalist', str(generalist)]
    assert bench.parse_args(common + ['--presets', 'hard', '--diameters', '12']).epochs == 60  # reused as trained
    for other in (['--epochs', '90'], ['--presets', 'hard', '--diameters', '24']):  # its thresholds fit on 12 px
        with pytest.raises(SystemExit):
            bench.parse_args(common + ['--presets', 'hard', *other])
        assert 'holds a StarDist trained with other settings' in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a corpus volume scored as a test volume
        bench.parse_args(common + ['--presets', 'hard', '--diameters', '12', '--seeds', '5'])
    assert '--seeds: 7000 holds the validation volumes, those below 1000 the training corpus' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(common + ['--diameters', '0'])
    assert '--diameters must be > 0 px' in capsys.readouterr().err
    assert not out.exists()
