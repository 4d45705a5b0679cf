"""tools/analysis/pr_curve.py and libnet_mmdet.visualization.pr_curves on tools/test.py output and on
hand-made predictions."""
import json
import pickle
import re

import numpy as np
import pytest
from PIL import Image

from helpers import run_tool


@pytest.fixture(scope='module')
def tested(tiny_model, tmp_path_factory):
    """tools/test.py on the tiny model: (results.pkl, the metrics it logged)."""
    config, checkpoint = tiny_model
    tmp = tmp_path_factory.mktemp('test_out')
    result = run_tool('tools/test.py', config, checkpoint, '--work-dir', tmp, '--out', tmp / 'results.pkl')
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = dict(re.findall(r'coco/(\w+): (-?[\d.]+)', result.stdout + result.stderr))
    return tmp / 'results.pkl', {key: float(value) for key, value in metrics.items()}


def _ground_truth_results(ann_file, drop_image=None):
    """Predictions equal to the ground truth (score 0.9), in the layout tools/test.py --out dumps."""
    import torch
    from pycocotools.coco import COCO
    coco = COCO(str(ann_file))
    results = []
    for img_id in coco.getImgIds():
        anns = [] if img_id == drop_image else coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
        masks = [coco.annToRLE(a) for a in anns]
        masks = [dict(m, counts=m['counts'].encode() if isinstance(m['counts'], str) else m['counts'])
                 for m in masks]  # DumpDetResults stores bytes
        boxes = [[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)]
        results.append(dict(img_id=img_id, pred_instances=dict(
            bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), scores=torch.full((len(anns),), 0.9),
            labels=torch.zeros(len(anns), dtype=torch.long), masks=masks)))
    return results


def _shifted_results(ann_file):
    """Predictions of mixed quality: the k-th ground-truth particle of an image shifted by 2k px (so at falling
    IoU), with scores that do not follow the quality, plus one false positive per image."""
    import pycocotools.mask as mask_utils
    import torch
    results = _ground_truth_results(ann_file)
    for result in results:
        pred = result['pred_instances']
        masks = [mask_utils.decode(rle) for rle in pred['masks']]
        masks = [np.roll(mask, 2 * k, axis=1) for k, mask in enumerate(masks)] + [np.roll(masks[0], 40, axis=0)]
        rles = [mask_utils.encode(np.asfortranarray(mask)) for mask in masks]
        x, y, w, h = np.array([mask_utils.toBbox(rle) for rle in rles]).T
        pred.update(bboxes=torch.tensor(np.stack([x, y, x + w, y + h], axis=1), dtype=torch.float32),
                    scores=torch.tensor(np.linspace(0.3, 0.9, len(rles))[::-1].copy(), dtype=torch.float32),
                    labels=torch.zeros(len(rles), dtype=torch.long), masks=rles)
    return results


def test_per_image_ap_equals_a_coco_eval_of_that_image_alone(tiny_coco):
    from pycocotools.cocoeval import COCOeval
    from libnet_mmdet.visualization.pr_curves import DEFAULT_MAX_DETS, load_coco_gt, per_image_ap, results_to_coco
    coco_gt = load_coco_gt(tiny_coco / 'annotations' / 'val.json')
    detections = results_to_coco(_shifted_results(tiny_coco / 'annotations' / 'val.json'), coco_gt)
    for iou_type in ('bbox', 'segm'):
        rows = per_image_ap(coco_gt, detections[iou_type], iou_type)
        assert [row['img_id'] for row in rows] == sorted(coco_gt.getImgIds())
        for row in rows:
            alone = [dict(d) for d in detections[iou_type] if d['image_id'] == row['img_id']]
            coco_eval = COCOeval(coco_gt, coco_gt.loadRes(alone), iou_type)
            coco_eval.params.imgIds = [row['img_id']]
            coco_eval.params.maxDets = [DEFAULT_MAX_DETS]
            coco_eval.evaluate()
            coco_eval.accumulate()
            precision = coco_eval.eval['precision'][:, :, :, 0, -1]  # (T, R, K), area 'all'
            assert row['n_dt'] == len(alone)
            assert row['ap'] == pytest.approx(precision[precision > -1].mean(), abs=1e-12)
            assert row['ap50'] == pytest.approx(precision[0][precision[0] > -1].mean(), abs=1e-12)
            assert 0.05 < row['ap'] < 0.95  # neither perfect nor missed: the comparison means something
    rows = per_image_ap(coco_gt, detections['segm'], 'segm', max_dets=1)  # it counts what it scores
    assert [row['n_dt'] for row in rows] == [min(1, sum(d['image_id'] == row['img_id'] for d in detections['segm']))
                                             for row in rows]


@pytest.mark.slow
def test_tool_writes_curves_whose_ap_is_what_test_py_printed(tested, tiny_coco, tmp_path, run_script, capsys):
    results, metrics = tested
    out = tmp_path / 'pr'
    run_script('tools/analysis/pr_curve.py', results, tiny_coco / 'annotations' / 'val.json', '--out', out)
    for name in ('pr_curves.png', 'per_image_ap.png'):
        with Image.open(out / name) as png:
            assert png.format == 'PNG' and min(png.size) > 100
    report = json.loads((out / 'pr_curves.json').read_text())
    assert 'segm: AP@0.5' in capsys.readouterr().out
    for iou_type in ('bbox', 'segm'):
        curves = report['curves'][iou_type]
        assert len(curves['recall']) == len(curves['0.5']['precision']) == 101
        assert curves['0.5']['ap'] == pytest.approx(metrics[f'{iou_type}_mAP_50'], abs=5e-4)
        assert curves['0.75']['ap'] == pytest.approx(metrics[f'{iou_type}_mAP_75'], abs=5e-4)
        assert [row['file_name'] for row in report['per_image'][iou_type]] == ['val_001.png', 'val_002.png']


def test_perfect_predictions_give_precision_one_and_per_image_ap(tiny_coco, tmp_path):
    from libnet_mmdet.visualization.pr_curves import write_pr_report
    ann_file = tiny_coco / 'annotations' / 'val.json'
    results = tmp_path / 'results.pkl'
    results.write_bytes(pickle.dumps(_ground_truth_results(ann_file, drop_image=2)))
    report = write_pr_report(results, ann_file, tmp_path / 'pr')
    for iou_type in ('bbox', 'segm'):
        per_image = report['per_image'][iou_type]
        assert [row['ap'] for row in per_image] == [pytest.approx(1.0), 0.0]
        assert [row['n_dt'] for row in per_image] == [per_image[0]['n_gt'], 0]
        curve = np.array(report['curves'][iou_type]['0.75']['precision'])
        recall = np.array(report['curves'][iou_type]['recall'])
        n_gt = [row['n_gt'] for row in per_image]
        reachable = recall <= n_gt[0] / sum(n_gt) + 1e-9  # image 2 has no detection: its particles are missed
        assert np.allclose(curve[reachable], 1.0) and np.allclose(curve[~reachable], 0.0)


def test_not_a_results_pickle_is_named(tiny_coco, tmp_path, run_script):
    bad = tmp_path / 'results.pkl'
    bad.write_bytes(pickle.dumps({'bbox_mAP': 0.5}))
    ann_file = tiny_coco / 'annotations' / 'val.json'
    with pytest.raises(SystemExit, match=f'pr_curve.py: error: {bad}: expected a list'):
        run_script('tools/analysis/pr_curve.py', bad, ann_file, '--out', tmp_path / 'pr')
    # the corrected rerun needs no --overwrite: the failed run wrote nothing into its folder
    bad.write_bytes(pickle.dumps(_ground_truth_results(ann_file)))
    run_script('tools/analysis/pr_curve.py', bad, ann_file, '--out', tmp_path / 'pr')
    assert (tmp_path / 'pr' / 'pr_curves.json').is_file()


def test_a_used_output_folder_needs_overwrite(tiny_coco, tmp_path, run_script):
    """Issue 17: a folder holding other files is never written into; one of an earlier report is emptied only
    with --overwrite."""
    results = tmp_path / 'results.pkl'
    results.write_bytes(pickle.dumps(_ground_truth_results(tiny_coco / 'annotations' / 'val.json')))
    argv = [results, tiny_coco / 'annotations' / 'val.json', '--out']
    with pytest.raises(SystemExit, match=f'pr_curve.py: error: {tmp_path}: the output folder holds the input'):
        run_script('tools/analysis/pr_curve.py', *argv, tmp_path)
    (tmp_path / 'other').mkdir()
    (tmp_path / 'other' / 'notes.txt').write_text('mine')
    with pytest.raises(SystemExit, match='other: folder is not empty'):
        run_script('tools/analysis/pr_curve.py', *argv, tmp_path / 'other')
    run_script('tools/analysis/pr_curve.py', *argv, tmp_path / 'pr')
    (tmp_path / 'pr' / 'stale.png').write_bytes(b'')
    with pytest.raises(SystemExit, match='folder is not empty; pass --overwrite'):
        run_script('tools/analysis/pr_curve.py', *argv, tmp_path / 'pr')
    run_script('tools/analysis/pr_curve.py', *argv, tmp_path / 'pr', '--overwrite')
    assert not (tmp_path / 'pr' / 'stale.png').exists()
    (tmp_path / 'bad.pkl').write_bytes(b'not a pickle')  # a bad input never costs the old report
    with pytest.raises(SystemExit, match='bad.pkl'):
        run_script('tools/analysis/pr_curve.py', tmp_path / 'bad.pkl', *argv[1:], tmp_path / 'pr', '--overwrite')
    assert (tmp_path / 'pr' / 'pr_curves.json').is_file()


def test_results_of_another_dataset_are_refused(tiny_coco, tmp_path):
    from libnet_mmdet.visualization.pr_curves import load_coco_gt, results_to_coco
    results = _ground_truth_results(tiny_coco / 'annotations' / 'val.json')
    results[1]['img_id'] = 99
    with pytest.raises(ValueError, match='results entry 1: image id 99 is not in the annotation file'):
        results_to_coco(results, load_coco_gt(tiny_coco / 'annotations' / 'val.json'))


@pytest.mark.slow
def test_results_of_other_images_under_the_same_ids_are_refused(tested, tiny_coco, tmp_path, run_script):
    """The train annotation file has ids 1 and 2 too: the curves were drawn against the wrong ground truth."""
    results, _ = tested
    train = tiny_coco / 'annotations' / 'train.json'
    with pytest.raises(SystemExit, match=f'pr_curve.py: error: {results} against {train}: results entry 0: image id 1 '
                       'is another image in the annotation file \\(file .*val.* vs .*train.*\\): the results were made '
                       'on other images'):
        run_script('tools/analysis/pr_curve.py', results, train, '--out', tmp_path / 'pr')
    assert not (tmp_path / 'pr').exists()


def test_a_bad_annotation_file_is_named_in_one_line(tiny_coco, tmp_path, run_script):
    """ANN_FILE was read by pycocotools unchecked: an AssertionError / KeyError traceback, or an unnamed decode error
    with the two arguments swapped."""
    results = tmp_path / 'results.pkl'
    results.write_bytes(pickle.dumps(_ground_truth_results(tiny_coco / 'annotations' / 'val.json')))
    (tmp_path / 'list.json').write_text('[]')
    (tmp_path / 'no_id.json').write_text(json.dumps(dict(images=[dict(file_name='a.png', height=4, width=4)],
                                                         annotations=[], categories=[])))
    for ann_file, message in ((tmp_path / 'list.json', 'a COCO file must hold a JSON object'),
                              (tmp_path / 'no_id.json', 'images'), (results, 'malformed JSON')):
        with pytest.raises(SystemExit, match=f'pr_curve.py: error: {ann_file}: .*{message}'):
            run_script('tools/analysis/pr_curve.py', results, ann_file, '--out', tmp_path / 'pr')
        assert not (tmp_path / 'pr').exists()


def test_images_without_ground_truth_get_no_bar():
    """Visualization audit: an image without ground truth (AP undefined, null in the JSON) was drawn as a 0 bar,
    as a slice the model got all wrong."""
    from libnet_mmdet.visualization.pr_curves import plot_per_image_ap
    rows = [dict(file_name='a.png', ap=0.5), dict(file_name='empty.png', ap=None), dict(file_name='b.png', ap=0.7),
            dict(file_name='nan.png', ap=float('nan'))]
    figure = plot_per_image_ap({'segm': rows, 'bbox': rows})
    ax = figure.axes[0]
    assert [label.get_text() for label in ax.get_xticklabels()] == ['b.png', 'a.png']
    assert len(ax.patches) == 4 and '2 without ground truth left out' in ax.get_title()


def test_annotations_without_iscrowd_are_scored_as_mmdet_reads_them(tiny_coco, tmp_path):
    """iscrowd is optional in our checker and in mmdet (0 when absent); COCOeval indexes it: a KeyError traceback."""
    from libnet_mmdet.visualization.pr_curves import write_pr_report
    ann_file = tiny_coco / 'annotations' / 'val.json'
    coco = json.loads(ann_file.read_text())
    for annotation in coco['annotations']:
        assert annotation.pop('iscrowd', 0) == 0
    bare = tmp_path / 'no_iscrowd.json'
    bare.write_text(json.dumps(coco))
    results = tmp_path / 'results.pkl'
    results.write_bytes(pickle.dumps(_ground_truth_results(ann_file, drop_image=2)))
    expected = write_pr_report(results, ann_file, tmp_path / 'with')
    report = write_pr_report(results, bare, tmp_path / 'without')
    assert report['per_image'] == expected['per_image']
