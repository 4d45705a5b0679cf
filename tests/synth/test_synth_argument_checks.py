"""synth functions that wrote before checking, or failed deep inside on a wrong type."""
import numpy as np
import pytest

from libnet_mmdet.synth import generate_volume, preset_params, render_volume, write_dataset


def test_write_dataset_checks_its_slicing_before_writing(tmp_path):
    volume = generate_volume((8, 32, 32), preset_params('clean', mean_diameter_vox=10.0), seed=0)
    for kwargs, message in ((dict(axes=('xy',)), 'axes must be a non-empty selection'),
                            (dict(axes='zz'), 'each axis once'), (dict(every=0), 'every must be an integer >= 1')):
        with pytest.raises(ValueError, match=message):
            write_dataset(tmp_path / 'out', volume, **kwargs)
        assert not (tmp_path / 'out').exists()
    written = write_dataset(tmp_path / 'out', volume, every=np.int64(4), coco=False, via=False)  # numpy ints: fine
    assert set(written) == {'image', 'labels', 'phases', 'particles', 'params'}  # the volume, no slice export
    assert sorted(p.name for p in (tmp_path / 'out').iterdir() if not p.name.startswith('.')) == [
        'image.tif', 'labels.tif', 'params.json', 'particles.csv', 'phases.tif']


def test_render_volume_draws_per_particle_not_per_id():
    """A real microstructure's ids may be sparse (stitched tiles, uint32 offsets): the per-particle draw was one
    value per id up to the largest (gigabytes for ids near 2**32), and renumbering the same particles changed the
    image (until 2026-12-07)."""
    volume = generate_volume((8, 32, 32), preset_params('clean', mean_diameter_vox=10.0), seed=1)
    sparse = np.where(volume.labels_zyx > 0, volume.labels_zyx.astype(np.uint32) + 2**31, 0)
    np.testing.assert_array_equal(render_volume(sparse, volume.phases_zyx, seed=4),
                                  render_volume(volume.labels_zyx, volume.phases_zyx, seed=4))


def test_render_volume_checks_labels_and_params():
    labels = np.zeros((4, 16, 16), np.uint16)
    phases = np.zeros((4, 16, 16), np.uint8)
    with pytest.raises(TypeError, match="params: expected a SynthParams \\(e.g. preset_params\\('hard'\\)\\), got str"):
        render_volume(labels, phases, params='hard')
    with pytest.raises(TypeError, match='labels_zyx: instance labels must have an integer dtype'):
        render_volume(labels.astype(float), phases)
