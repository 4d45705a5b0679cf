"""Precision-recall curves and per-image AP of ``tools/test.py --out results.pkl`` predictions, by COCOeval.

>>> gt = load_coco_gt('data/nmc/annotations/val.json')
>>> detections = results_to_coco(load_results('results.pkl'), gt)
>>> curves = pr_curves(gt, detections['segm'])    # precision at 101 recall points, IoU 0.5 and 0.75
>>> per_image = per_image_ap(gt, detections['segm'])

Everything is pycocotools' :class:`~pycocotools.cocoeval.COCOeval`: a curve is its ``eval['precision']``
(T x R x K x A x M: IoU thresholds, 101 recall points, categories, areas, max detections) at one IoU threshold,
area ``all`` and the largest ``max_dets``, averaged over the categories; AP is the mean of that curve, as COCO
defines it. With ``max_dets=1000`` (the setting of our recipes' evaluator) the AP at IoU 0.5 equals the
``coco/segm_mAP_50`` that ``tools/test.py`` prints.
"""
import collections
import contextlib
import copy
import io
import os
import os.path as osp
import pickle
import struct

import numpy as np
import pycocotools.mask as mask_utils
from matplotlib.figure import Figure
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..datasets.coco_checks import check_coco_file
from ..io import check_output_dir, output_folder, write_json
from .render import write_png

IOU_TYPES = ('bbox', 'segm')
DEFAULT_MAX_DETS = 1000  # our recipes' evaluator (proposal_nums) and test_cfg.rcnn.max_per_img allow 1000


def load_coco_gt(ann_file):
    """The COCO ground truth of ``ann_file`` (quietly), checked first as the datasets check it
    (:func:`~libnet_mmdet.datasets.coco_checks.check_coco_file`, any category names).

    Raises:
        FileNotFoundError: missing file.
        AnnotationError: not a valid COCO file (malformed JSON, a missing key, a bad entry: named).
    """
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'COCO annotation file not found: {ann_file}')
    dataset = check_coco_file(os.fspath(ann_file), classes=())
    for annotation in dataset['annotations']:  # optional, as mmdet reads it; COCOeval indexes it
        annotation.setdefault('iscrowd', 0)
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def load_results(path):
    """The list of per-image prediction dicts that ``tools/test.py --out`` (MMDetection's DumpDetResults) wrote.

    Raises:
        FileNotFoundError: missing file.
        ValueError: not such a pickle (names the file and, for a bad entry, its index).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'results file not found: {path}')
    try:
        with open(path, 'rb') as f:
            results = pickle.load(f)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError, KeyError,
            IndexError, OverflowError, struct.error) as exc:  # what pickle raises on other bytes (a TIFF, text)
        raise ValueError(f'{path}: not a results pickle of tools/test.py --out ({type(exc).__name__}: {exc})') \
            from exc
    if not isinstance(results, list):
        raise ValueError(f'{path}: expected a list of per-image results (tools/test.py --out), '
                         f'got {type(results).__name__}')
    for index, result in enumerate(results):
        if not isinstance(result, dict) or 'img_id' not in result or 'pred_instances' not in result:
            raise ValueError(f'{path}: entry {index} has no img_id/pred_instances: not a detection results pickle '
                             'of tools/test.py --out')
    return results


def _numpy(value):
    return value.detach().cpu().numpy() if hasattr(value, 'detach') else np.asarray(value)


def results_to_coco(results, coco_gt):
    """COCO-format detections (``{'bbox': [...], 'segm': [...]}``) of the ``load_results`` list.

    Label ``k`` is the ``k``-th category of ``coco_gt`` by id (MMDetection's mapping when the dataset's classes
    are the file's categories in id order); masks are the RLEs DumpDetResults stored. ``segm`` is empty when the
    model predicts no masks.
    """
    cat_ids = sorted(coco_gt.getCatIds())
    detections = {'bbox': [], 'segm': []}
    for index, result in enumerate(results):
        _check_same_image(index, result, coco_gt)
        pred = result['pred_instances']
        labels = _numpy(pred['labels'])
        if len(labels) and labels.max() >= len(cat_ids):
            raise ValueError(f'results entry {index}: label {labels.max()} but the annotation file has '
                             f'{len(cat_ids)} categories')
        for k, ((x0, y0, x1, y1), score, label) in enumerate(zip(_numpy(pred['bboxes']), _numpy(pred['scores']),
                                                                 labels)):
            common = dict(image_id=int(result['img_id']), category_id=cat_ids[int(label)], score=float(score))
            detections['bbox'].append(dict(common, bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)]))
            if 'masks' in pred:
                rle = pred['masks'][k]
                rle = dict(rle, counts=rle['counts'].decode() if isinstance(rle['counts'], bytes) else rle['counts'])
                detections['segm'].append(dict(common, segmentation=rle, area=float(mask_utils.area(rle))))
    return detections


def _check_same_image(index, result, coco_gt):
    """Raise ValueError when results entry ``index`` is of an image the annotation file does not hold under its id:
    an unknown id, or (where the results record them, as ``tools/test.py --out`` does) another file name or size."""
    image = coco_gt.imgs.get(result['img_id'])
    if image is None:
        raise ValueError(f'results entry {index}: image id {result["img_id"]} is not in the annotation file')
    differ = []
    if 'img_path' in result and osp.basename(result['img_path']) != osp.basename(image['file_name']):
        differ.append(f"file {osp.basename(result['img_path'])} vs {osp.basename(image['file_name'])}")
    if 'ori_shape' in result and tuple(result['ori_shape'][:2]) != (image['height'], image['width']):
        differ.append(f"height, width {tuple(result['ori_shape'][:2])} vs {(image['height'], image['width'])}")
    if differ:
        raise ValueError(f'results entry {index}: image id {result["img_id"]} is another image in the annotation file '
                         f'({"; ".join(differ)}): the results were made on other images; give the annotation file '
                         "of the tested images (the config's test_evaluator.ann_file)")


def evaluate(coco_gt, detections, iou_type, max_dets=DEFAULT_MAX_DETS):
    """Match ``detections`` to the ground truth of every image by COCOeval (quietly), not yet accumulated.

    Args:
        coco_gt (COCO): ground truth.
        detections (list): COCO-format detections of ``iou_type``.
        iou_type (str): ``'bbox'`` or ``'segm'``.
        max_dets (int): detections per image considered (highest scores).

    Returns:
        COCOeval: evaluated (``evalImgs`` per image, category and area), for :func:`accumulate`.
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f'iou_type must be one of {IOU_TYPES}, got {iou_type!r}')
    with contextlib.redirect_stdout(io.StringIO()):
        # loadRes adds keys (bbox, area, id) to the dicts it gets: give it copies
        coco_dt = coco_gt.loadRes([dict(d) for d in detections]) if detections else COCO()
        coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
        coco_eval.params.maxDets = [max_dets]
        coco_eval.evaluate()
    return coco_eval


def accumulate(coco_eval, img_ids=None):
    """The ``eval['precision']`` array (T, R, K, A, M) and the params of an evaluated COCOeval, accumulated over
    all its images or only over ``img_ids``: per-image matches do not depend on the other images, so the latter
    equals a COCOeval run on ``img_ids`` alone."""
    if img_ids is not None:
        coco_eval = _restricted(coco_eval, img_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval.accumulate()
    return coco_eval.eval['precision'], coco_eval.params


def _restricted(coco_eval, img_ids):
    """A shallow copy of an evaluated COCOeval holding only the matches of ``img_ids``, laid out as ``evaluate()``
    on those images lays them out (``evalImgs`` is ordered by category, area range, image).

    ``accumulate(p)`` with other image ids is no substitute: pycocotools indexes ``evalImgs`` by the position of
    an image in ``p.imgIds``, not in the evaluated images.
    """
    params = copy.deepcopy(coco_eval.params)
    positions = {img_id: n for n, img_id in enumerate(params.imgIds)}
    params.imgIds = sorted(set(img_ids))
    n_categories = len(params.catIds) if params.useCats else 1
    n_areas, n_images = len(params.areaRng), len(positions)
    restricted = copy.copy(coco_eval)
    restricted.evalImgs = [coco_eval.evalImgs[(k * n_areas + a) * n_images + positions[img_id]]
                           for k in range(n_categories) for a in range(n_areas) for img_id in params.imgIds]
    restricted.params = restricted._paramsEval = params
    return restricted


def _iou_index(params, iou):
    matches = np.flatnonzero(np.isclose(params.iouThrs, iou))
    if not len(matches):
        raise ValueError(f'IoU {iou} is not one of the COCO thresholds {params.iouThrs.tolist()}')
    return int(matches[0])


def _mean_valid(values):
    """Mean over the entries COCOeval filled (it writes -1 where a category has no ground truth); NaN if none."""
    values = np.asarray(values)
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else float('nan')


def pr_curves(coco_gt, detections, iou_type='segm', ious=(0.5, 0.75), max_dets=DEFAULT_MAX_DETS):
    """Precision-recall curves at the IoU thresholds ``ious``, area ``all``, averaged over categories.

    Returns:
        dict: ``recall`` (101,) the COCO recall points, and per IoU (key ``'0.5'``...) a dict with
        ``precision`` (101,) (NaN where undefined) and ``ap`` (COCO AP at that IoU).
    """
    precision, params = accumulate(evaluate(coco_gt, detections, iou_type, max_dets=max_dets))
    curves = {'recall': params.recThrs.tolist()}
    for iou in ious:
        per_category = precision[_iou_index(params, iou), :, :, 0, -1]  # (R, K), area 'all'
        curve = [_mean_valid(row) for row in per_category]
        curves[f'{iou:g}'] = {'precision': curve, 'ap': _mean_valid(per_category)}
    return curves


def per_image_ap(coco_gt, detections, iou_type='segm', max_dets=DEFAULT_MAX_DETS):
    """COCO AP (IoU 0.5:0.95) and AP at IoU 0.5 of every image on its own (one COCOeval evaluation, accumulated
    image by image).

    Returns:
        list[dict]: ``img_id``, ``file_name``, ``n_gt``, ``n_dt`` (the detections scored: at most ``max_dets`` per
        category, the highest scores), ``ap``, ``ap50`` per image, in id order (``ap``/``ap50`` NaN for an image
        without ground truth).
    """
    coco_eval = evaluate(coco_gt, detections, iou_type, max_dets=max_dets)
    per_category = collections.Counter((d['image_id'], d['category_id']) for d in detections)
    n_dt = collections.Counter()
    for (img_id, _), count in per_category.items():  # COCOeval scores the best max_dets per image and category
        n_dt[img_id] += min(count, max_dets)
    rows = []
    for img_id in sorted(coco_gt.getImgIds()):
        precision, params = accumulate(coco_eval, img_ids=[img_id])
        rows.append(dict(img_id=int(img_id), file_name=coco_gt.imgs[img_id].get('file_name', str(img_id)),
                         n_gt=len(coco_gt.getAnnIds(imgIds=[img_id], iscrowd=False)), n_dt=n_dt[img_id],
                         ap=_mean_valid(precision[:, :, :, 0, -1]),
                         ap50=_mean_valid(precision[_iou_index(params, 0.5), :, :, 0, -1])))
    return rows


def plot_pr_curves(curves_by_type):
    """One axes per IoU type (``{'segm': pr_curves(...), ...}``) with a precision-recall line per IoU."""
    fig = Figure(figsize=(5 * len(curves_by_type), 4.2))
    for index, (iou_type, curves) in enumerate(curves_by_type.items()):
        ax = fig.add_subplot(1, len(curves_by_type), index + 1)
        for iou, curve in ((key, value) for key, value in curves.items() if key != 'recall'):
            ax.plot(curves['recall'], curve['precision'], label=f'IoU {iou}: AP {curve["ap"]:.3f}')
        ax.set(xlabel='recall', ylabel='precision', xlim=(0, 1), ylim=(0, 1.02), title=f'{iou_type} precision-recall')
        ax.grid(alpha=0.3)
        ax.legend(loc='lower left', fontsize=8)
    return fig


def plot_per_image_ap(rows_by_type):
    """A bar chart of the per-image AP (``{'segm': per_image_ap(...), ...}``), images sorted by segm AP (by the
    first type's AP without masks); images without ground truth (no AP: None or NaN) are left out, not drawn as 0,
    the bar of a slice the model got all wrong."""
    first = rows_by_type.get('segm', next(iter(rows_by_type.values())))
    scored = [i for i, row in enumerate(first) if row['ap'] is not None and np.isfinite(row['ap'])]
    order = [scored[k] for k in np.argsort([-first[i]['ap'] for i in scored], kind='stable')]
    unscored = len(first) - len(scored)
    positions = np.arange(len(order))
    width = 0.8 / len(rows_by_type)
    fig = Figure(figsize=(max(6.0, 0.25 * len(order) + 2), 4.2))
    ax = fig.add_subplot(1, 1, 1)
    for k, (iou_type, rows) in enumerate(rows_by_type.items()):
        heights = np.nan_to_num(np.array([rows[i]['ap'] for i in order], dtype=float))  # None: no bar
        ax.bar(positions + (k - (len(rows_by_type) - 1) / 2) * width, heights, width,
               label=f'{iou_type} AP (IoU 0.5:0.95)')
    ax.set_xticks(positions)
    ax.set_xticklabels([first[i]['file_name'] for i in order], rotation=90, fontsize=6 if len(order) > 30 else 8)
    ax.set(ylabel='AP', ylim=(0, 1), title=f'per-image AP ({len(order)} images, best first'
           + (f'; {unscored} without ground truth left out)' if unscored else ')'))
    ax.legend(fontsize=8)
    return fig


def write_pr_report(results_file, ann_file, out_dir, max_dets=DEFAULT_MAX_DETS, overwrite=False):
    """Write ``pr_curves.png``, ``per_image_ap.png`` and ``pr_curves.json`` (curves, APs, per-image table) for
    the predictions of ``tools/test.py --out`` against ``ann_file``; returns the report dict as written, except
    that NaN values (the AP of an image without ground truth) are ``null`` in the file.

    ``out_dir`` must be new or empty, or an earlier report folder with ``overwrite`` (replaced only once the new
    report is complete, so neither a bad input nor a failure costs the old one; :func:`~libnet_mmdet.io.output_folder`).
    """
    check_output_dir(out_dir, overwrite, inputs=(results_file, ann_file))
    coco_gt = load_coco_gt(ann_file)
    results = load_results(results_file)
    try:
        detections = results_to_coco(results, coco_gt)
    except ValueError as exc:  # the results and the annotation file do not belong together: name both
        raise ValueError(f'{results_file} against {ann_file}: {exc}') from exc
    iou_types = [t for t in IOU_TYPES if detections[t] or t == 'bbox']
    curves = {t: pr_curves(coco_gt, detections[t], t, max_dets=max_dets) for t in iou_types}
    per_image = {t: per_image_ap(coco_gt, detections[t], t, max_dets=max_dets) for t in iou_types}
    report = {'results_file': os.fspath(results_file), 'ann_file': os.fspath(ann_file), 'max_dets': max_dets,
              'curves': curves, 'per_image': per_image}
    with output_folder(out_dir, overwrite, inputs=(results_file, ann_file)) as folder:
        write_png(osp.join(folder, 'pr_curves.png'), plot_pr_curves(curves))
        write_png(osp.join(folder, 'per_image_ap.png'), plot_per_image_ap(per_image))
        write_json(osp.join(folder, 'pr_curves.json'), report, indent=1)
    return report


