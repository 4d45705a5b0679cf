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
    write_dataset(tmp_path / 'out', volume, every=np.int64(4), coco=False, via=False)  # numpy integers are fine


def test_render_volume_checks_labels_and_params():
    labels = np.zeros((4, 16, 16), np.uint16)
    phases = np.zeros((4, 16, 16), np.uint8)
    with pytest.raises(TypeError, match="params: expected a SynthParams \\(e.g. preset_params\\('hard'\\)\\), got str"):
        render_volume(labels, phases, params='hard')
    with pytest.raises(TypeError, match='labels_zyx: instance labels must have an integer dtype'):
        render_volume(labels.astype(float), phases)
