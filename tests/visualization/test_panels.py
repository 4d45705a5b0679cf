"""libnet_mmdet.visualization.panels.write_panels: its output folder (the figures themselves are drawn from a real
model in tests/tools/test_inspect_model.py)."""
import json

import numpy as np
import pytest
from matplotlib.figure import Figure

from libnet_mmdet.io import InputError
from libnet_mmdet.visualization import panels, write_panels

PLOTS = ('plot_anchors', 'plot_objectness', 'plot_proposals', 'plot_rcnn_boxes', 'plot_detections', 'plot_mask_probs',
         'plot_activations')


def _stages():
    """The parts of a ``record_stages`` dict that ``write_panels`` counts: 3 detections scoring 0.2, 0.6, 0.9."""
    boxes = {'scores': np.zeros(5, np.float32)}
    return {'anchors': [np.zeros((12, 4)), np.zeros((3, 4))], 'rpn_before_nms': boxes, 'rpn_after_nms': boxes,
            'rcnn_before_nms': boxes, 'rcnn_after_nms': boxes, 'mask_probs': np.zeros((3, 28, 28), np.float32),
            'detections': {'scores': np.array([0.2, 0.6, 0.9], np.float32)}, 'backbone': [], 'fpn': []}


@pytest.fixture
def drawn(monkeypatch):
    """Every panel replaced by a small figure; returns the list of panels drawn."""
    calls = []

    def figure(*args, **kwargs):
        calls.append(args)
        fig = Figure(figsize=(1, 1))
        fig.add_subplot().plot([0, 1])
        return fig
    for name in PLOTS:
        monkeypatch.setattr(panels, name, figure)
    return calls


def test_write_panels_writes_every_panel_and_the_counts(tmp_path, drawn):
    summary = write_panels(_stages(), tmp_path / 'inspect', score_thr=0.5, n_masks=2)
    assert sorted(p.name for p in (tmp_path / 'inspect').glob('*.png')) == summary['panels'] and len(drawn) == 8
    assert json.loads((tmp_path / 'inspect' / 'summary.json').read_text()) == summary
    assert (summary['detections'], summary['detections_drawn'], summary['masks_drawn']) == (3, 2, 2)


def test_write_panels_refuses_a_used_folder_before_drawing(tmp_path, drawn):
    """Audit #24: an existing detections.png was replaced silently; an out_dir that is a file failed with
    FileExistsError after every figure was drawn."""
    out = tmp_path / 'inspect'
    out.mkdir()
    (out / 'detections.png').write_bytes(b'mine')
    for overwrite, message in ((False, 'folder is not empty; pass --overwrite'),
                               (True, 'folder is not empty and was not written by libnet-mmdet')):
        with pytest.raises(InputError, match=f'{out}: {message}'):
            write_panels(_stages(), out, overwrite=overwrite)
    (tmp_path / 'afile').write_text('mine')
    with pytest.raises(InputError, match='afile: exists and is not a folder'):
        write_panels(_stages(), tmp_path / 'afile')
    for bad, message in ((dict(score_thr=2), r'score_thr must be in \[0, 1\]'),
                         (dict(topk=0), 'topk must be an integer >= 1'), (dict(n_masks=1.5), 'n_masks must be')):
        with pytest.raises(InputError, match=message):
            write_panels(_stages(), tmp_path / 'new', **bad)
    assert not drawn and (out / 'detections.png').read_bytes() == b'mine' and not (tmp_path / 'new').exists()


def test_write_panels_overwrite_empties_an_earlier_run(tmp_path, drawn):
    out = tmp_path / 'inspect'
    write_panels(_stages(), out)
    (out / 'stale.png').write_bytes(b'an older panel')
    with pytest.raises(InputError, match='folder is not empty; pass --overwrite'):
        write_panels(_stages(), out)
    summary = write_panels(_stages(), out, score_thr=0.1, overwrite=True)
    assert not (out / 'stale.png').exists() and summary['detections_drawn'] == 3
    assert json.loads((out / 'summary.json').read_text())['score_thr'] == pytest.approx(0.1)
