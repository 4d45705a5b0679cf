"""tools/inspect_model.py and libnet_mmdet.visualization.model_stages/panels on the CPU-tiny Mask R-CNN."""
import json

import numpy as np
import pytest
from matplotlib.patches import Rectangle
from PIL import Image

from helpers import REPO_ROOT, TINY_CONFIG

pytestmark = pytest.mark.slow

PANELS = ('anchors.png', 'rpn_objectness.png', 'rpn_proposals.png', 'rcnn_boxes.png', 'detections.png',
          'mask_probs.png', 'activations_backbone.png', 'activations_fpn.png')


@pytest.fixture(scope='module')
def model(tiny_model):
    from libnet_mmdet.apis import init_segmenter
    config, checkpoint = tiny_model
    return init_segmenter(config, checkpoint, device='cpu')


@pytest.fixture(scope='module')
def val_image(tiny_coco):
    return tiny_coco / 'images' / 'val' / 'val_001.png'


@pytest.fixture(scope='module')
def stages(model, val_image):
    from libnet_mmdet.visualization import record_stages
    return record_stages(model, val_image)


def _rectangles(ax):
    return [patch for patch in ax.patches if isinstance(patch, Rectangle)]


def test_tool_writes_every_panel_and_counts_what_the_model_predicts(tiny_model, model, val_image, tmp_path,
                                                                     run_script, capsys):
    from mmdet.apis import inference_detector
    config, checkpoint = tiny_model
    out = tmp_path / 'inspect'
    run_script('tools/inspect_model.py', config, checkpoint, val_image, '--out', out, '--score-thr', 0.5)
    for name in PANELS:
        with Image.open(out / name) as png:
            assert png.format == 'PNG' and min(png.size) > 100, name
    summary = json.loads((out / 'summary.json').read_text())
    scale_line, printed = capsys.readouterr().out.split('\n', 1)
    assert scale_line.startswith('scale') and json.loads(printed.split('\nwrote')[0]) == summary
    assert summary['scale'] == 1.0  # the tiny model records no particle diameters: scale 1, as segment_image
    assert summary['panels'] == sorted(PANELS)
    # The final detections as MMDetection's own inference (file loader of the test pipeline) gives them.
    scores = inference_detector(model, str(val_image)).pred_instances.scores.numpy()
    assert summary['detections'] == len(scores) > 0
    assert summary['detections_drawn'] == int((scores >= 0.5).sum())
    # Counts bounded by the config the model was built from.
    test_cfg = model.cfg.model.test_cfg
    assert summary['rpn_after_nms'] == summary['rcnn_rois'] <= test_cfg.rpn.max_per_img
    assert summary['rpn_after_nms'] <= summary['rpn_before_nms'] <= 5 * test_cfg.rpn.nms_pre
    assert summary['rcnn_after_nms'] == summary['detections'] <= test_cfg.rcnn.max_per_img
    per_cell = model.rpn_head.prior_generator.num_base_priors[0]
    assert summary['anchors_per_level'] == [per_cell * int(np.ceil(128 / s)) ** 2 for s in (4, 8, 16, 32, 64)]


def test_stages_are_the_model_outputs(model, val_image, stages):
    from mmdet.apis import inference_detector
    predicted = inference_detector(model, str(val_image)).pred_instances
    detections = stages['detections']
    np.testing.assert_allclose(detections['scores'], predicted.scores.numpy(), rtol=1e-5)
    np.testing.assert_allclose(detections['bboxes'], predicted.bboxes.numpy(), rtol=1e-5, atol=1e-3)
    assert np.array_equal(detections['masks'], predicted.masks.numpy())
    # scale factor 1: the bbox head's detections after NMS are the final boxes, one mask map each
    np.testing.assert_allclose(stages['rcnn_after_nms']['bboxes'], detections['bboxes'], atol=1e-3)
    assert stages['mask_probs'].shape == (len(detections['scores']), 28, 28)
    assert 0 <= stages['mask_probs'].min() and stages['mask_probs'].max() <= 1
    # the RoIs the bbox head classified are the RPN proposals after NMS
    np.testing.assert_allclose(stages['rcnn_before_nms']['rois'], stages['rpn_after_nms']['bboxes'], atol=1e-4)
    assert [m.shape[0] for m in stages['fpn']] == [64] * 5
    assert [m.shape[0] for m in stages['backbone']] == [64, 128, 256, 512]


def test_recording_leaves_the_model_unchanged(model, val_image, stages):
    from libnet_mmdet.visualization import record_stages
    for module in (model.backbone, model.neck, model.rpn_head, model.roi_head.mask_head):
        assert not module._forward_hooks
    assert 'predict' not in vars(model) and '_bbox_post_process' not in vars(model.rpn_head)
    again = record_stages(model, val_image)
    np.testing.assert_array_equal(again['rpn_before_nms']['scores'], stages['rpn_before_nms']['scores'])


@pytest.mark.parametrize('quantile', [0.0, 0.5, None])
def test_detection_panel_draws_one_box_per_detection_above_the_threshold(stages, quantile):
    from libnet_mmdet.visualization.panels import plot_detections
    scores = stages['detections']['scores']
    score_thr = 1.01 if quantile is None else float(np.quantile(scores, quantile))
    fig = plot_detections(stages, score_thr)
    assert len(_rectangles(fig.axes[0])) == int((scores >= score_thr).sum())


def test_proposal_and_mask_panels_draw_the_recorded_arrays(stages):
    from libnet_mmdet.visualization.panels import plot_mask_probs, plot_proposals, plot_rcnn_boxes
    fig = plot_proposals(stages, topk=7)
    assert [len(_rectangles(ax)) for ax in fig.axes] == [7, 7]
    best = np.argsort(-stages['rpn_after_nms']['scores'])[:7]
    drawn = sorted((r.get_x(), r.get_y()) for r in _rectangles(fig.axes[1]))
    # mmdet's pixel-corner boxes over imshow's pixel centres: half a pixel up and left (they were drawn on the corner)
    assert np.allclose(drawn, sorted(map(tuple, stages['rpn_after_nms']['bboxes'][best, :2] - 0.5)))
    assert [len(_rectangles(ax)) for ax in plot_rcnn_boxes(stages, topk=5).axes[:2]] == [5, 5]
    fig = plot_mask_probs(stages, n_masks=3)
    shown = [im.get_array() for ax in fig.axes[:3] for im in ax.get_images()]
    assert np.allclose(np.stack(shown), stages['mask_probs'][:3])


def test_a_predictor_callable_is_refused(val_image):
    from libnet_mmdet.visualization import record_stages
    with pytest.raises(TypeError, match='needs an MMDetection detector'):
        record_stages(lambda images: [], val_image)


def test_missing_image_is_named(tiny_model, tmp_path, run_script):
    config, checkpoint = tiny_model
    with pytest.raises(SystemExit, match=f'inspect_model.py: error: .*{tmp_path / "missing.png"}'):
        run_script('tools/inspect_model.py', config, checkpoint, tmp_path / 'missing.png', '--out', tmp_path)


def test_a_used_output_folder_is_refused_before_the_model_is_loaded(tmp_path, run_script):
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'notes.txt').write_text('mine')
    with pytest.raises(SystemExit, match=f'inspect_model.py: error: {out}: folder is not empty'):
        run_script('tools/inspect_model.py', tmp_path / 'missing.py', tmp_path / 'missing.pth',
                   tmp_path / 'missing.png', '--out', out, '--overwrite')
    assert [p.name for p in out.iterdir()] == ['notes.txt']
    with pytest.raises(SystemExit, match=f'inspect_model.py: error: {tmp_path}: the output folder holds the input'):
        run_script('tools/inspect_model.py', tmp_path / 'missing.py', tmp_path / 'missing.pth',
                   tmp_path / 'missing.png', '--out', tmp_path, '--overwrite')


@pytest.mark.parametrize('bad', [['--score-thr', '2'], ['--score-thr', 'nan'], ['--device', 'gpu']])
def test_bad_settings_are_refused_while_parsing(tmp_path, run_script, capsys, bad):
    """--score-thr 2 drew nothing and nan wrote NaN into summary.json (not JSON)."""
    with pytest.raises(SystemExit) as info:
        run_script('tools/inspect_model.py', tmp_path / 'm.py', tmp_path / 'm.pth', tmp_path / 'i.png',
                   '--out', tmp_path / 'out', *bad)
    assert info.value.code == 2 and f'argument {bad[0]}: expected' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_a_phase_model_config_is_refused_before_its_checkpoint_loads(tmp_path, run_script, val_image):
    config = REPO_ROOT / 'configs' / 'nmc' / 'phase-fpn_r18-gn_fpn-c64_cpu-tiny_generalist.py'
    with pytest.raises(SystemExit, match='inspect_model.py: error: .*phase-fpn.*: not a two-stage instance '
                       'segmentation config .*its model lacks rpn_head, roi_head'):
        run_script('tools/inspect_model.py', config, tmp_path / 'missing.pth', val_image, '--out', tmp_path / 'out')
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('case', ['nan', 'auto', 'fixed'])
def test_a_bad_image_or_scale_is_refused_before_the_checkpoint_loads(tmp_path, run_script, val_image, case):
    """NaN pixels, --scale auto for a config without particle diameters and --scale 0.5 for a config resizing
    every image to one size were found only after the model loaded (the checkpoint here is missing: reaching it
    would be a different error)."""
    import tifffile
    image, extra = val_image, ['--scale', 'auto']
    if case == 'nan':
        image, extra = tmp_path / 'nan.tif', []
        tifffile.imwrite(image, np.array([[1.0, np.nan], [2.0, 3.0]], np.float32))
    if case == 'fixed':  # a stock COCO recipe's test Resize
        extra = ['--scale', '0.5', '--cfg-options', 'test_dataloader.dataset.pipeline.1.scale=(1333,800)',
                 'test_dataloader.dataset.pipeline.1.scale_factor=None']
    message = {'nan': rf'{image}: 1 NaN/Inf pixel',
               'auto': r"scale='auto' \(--scale auto\) needs a model that records the particle diameters",
               'fixed': r'scale=0.5: the test pipeline of .* resizes every image to the fixed size \(1333, 800\)'}[case]
    with pytest.raises(SystemExit, match=f'inspect_model.py: error: {message}'):
        run_script('tools/inspect_model.py', TINY_CONFIG, tmp_path / 'missing.pth', image, '--out', tmp_path / 'out',
                   *extra)
    assert not (tmp_path / 'out').exists()


def test_boxes_after_nms_stay_in_the_model_frame_when_the_pipeline_resizes(model, val_image, monkeypatch):
    """Visualization audit: mmdet's mask head rescales the detections' boxes to the input slice in place, so with
    a Resize in the test pipeline the recorded 'after NMS' boxes were drawn at 1 / scale of the model's frame."""
    import copy

    from libnet_mmdet.visualization import record_stages
    cfg = copy.deepcopy(model.cfg)  # the module's model keeps its own
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'Resize':
            step['scale_factor'] = 2.0
    monkeypatch.setattr(model, 'cfg', cfg)
    stages = record_stages(model, val_image)
    after = stages['rcnn_after_nms']['bboxes']
    before = stages['rcnn_before_nms']['bboxes'].reshape(-1, 4)
    assert len(after) and stages['img_shape'] == (256, 256)
    distance = np.abs(after[:, None] - before[None]).max(-1).min(1)  # to the nearest refined box before NMS
    assert distance.max() < 1e-3
    np.testing.assert_allclose(stages['detections']['bboxes'], after / 2, atol=1e-3)  # in the input slice's frame


def test_objectness_cells_are_drawn_on_their_anchors(stages):
    """Visualization audit: each cell of the objectness heatmap was drawn half a stride right and down of the
    anchors it scores (32 px at P6)."""
    from libnet_mmdet.visualization.panels import plot_objectness
    figure = plot_objectness(stages)
    for ax, anchors, objectness in zip(figure.axes, stages['anchors'], stages['objectness']):
        left, right, bottom, top = ax.images[-1].get_extent()
        cells_h, cells_w = objectness.shape[1:]
        first_x = left + (right - left) / cells_w / 2  # the first cell's centre, in the picture's pixel-centre frame
        first_y = top + (bottom - top) / cells_h / 2
        assert first_x == pytest.approx(((anchors[:, 0] + anchors[:, 2]) / 2).min() - 0.5)  # mmdet: pixel corners
        assert first_y == pytest.approx(((anchors[:, 1] + anchors[:, 3]) / 2).min() - 0.5)


def test_the_model_sees_the_slice_at_the_scale_segment_image_takes(tiny_model, model, val_image, tmp_path,
                                                                   run_script, capsys):
    """Visualization audit: inspect_model ran every model at scale 1, while segment_image resizes slices for a
    model that records its particle diameters (the generalist: scale auto), so it showed other detections."""
    from libnet_mmdet.visualization import record_stages
    stages = record_stages(model, val_image, scale=2.0)
    assert stages['scale'] == 2.0 and stages['img_shape'] == (256, 256)
    assert record_stages(model, val_image)['scale'] == 1.0
    config, checkpoint = tiny_model
    run_script('tools/inspect_model.py', config, checkpoint, val_image, '--out', tmp_path / 'x2', '--scale', 2)
    assert json.loads((tmp_path / 'x2' / 'summary.json').read_text())['scale'] == 2.0
    with pytest.raises(SystemExit, match='inspect_model.py: error: .*scale'):
        run_script('tools/inspect_model.py', tmp_path / 'm.py', tmp_path / 'm.pth', val_image, '--out',
                   tmp_path / 'x0', '--scale', 0)
    assert not (tmp_path / 'x0').exists()
