"""InstanceMatchingMetric: registry, per-image rasterisation, pooled result, and use next to CocoMetric."""
import json

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from pycocotools import mask as mask_utils

from libnet_mmdet.evaluation import InstanceMatchingMetric, instances_to_labels  # registers the metric
from mmdet.registry import METRICS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks

SHAPE = (12, 16)


def _box_masks(boxes):
    masks = np.zeros((len(boxes), *SHAPE), bool)
    for mask, (r0, r1, c0, c1) in zip(masks, boxes):
        mask[r0:r1, c0:c1] = True
    return masks


GT_BOXES = [(0, 4, 0, 4), (6, 10, 6, 10)]
# exact copy, a one-pixel shift (IoU 12/20 = 0.6), a confident false positive, and a low-score copy (ignored)
PRED_BOXES = [(0, 4, 0, 4), (6, 10, 7, 11), (0, 3, 12, 16), (6, 10, 6, 10)]
PRED_SCORES = [0.9, 0.8, 0.7, 0.2]


def _data_sample(img_id, with_gt=True, pred_boxes=PRED_BOXES, pred_scores=PRED_SCORES):
    sample = DetDataSample(metainfo={'img_id': img_id, 'ori_shape': SHAPE, 'img_shape': SHAPE})
    boxes = torch.tensor([[c0, r0, c1, r1] for r0, r1, c0, c1 in pred_boxes], dtype=torch.float32)
    sample.pred_instances = InstanceData(masks=torch.from_numpy(_box_masks(pred_boxes)), bboxes=boxes,
                                         scores=torch.tensor(pred_scores),
                                         labels=torch.zeros(len(pred_boxes), dtype=torch.long))
    if with_gt:
        sample.gt_instances = InstanceData(masks=BitmapMasks(_box_masks(GT_BOXES).astype(np.uint8), *SHAPE),
                                           labels=torch.zeros(2, dtype=torch.long))
    return sample


def _expected():
    # per image at 0.5: TP 2 (IoU 1 and 0.6), FP 1, FN 0; at 0.75 (and above): TP 1, FP 2, FN 1
    return {'f1_50': 4 / 5, 'f1_75': 2 / 5, 'precision_50': 2 / 3, 'recall_50': 1.0,
            'pq_50': (1 + 0.6) / (2 + 0.5), 'accuracy_mean': (3 * 2 / 3 + 7 * 1 / 4) / 10}


def test_registered_metric_pools_images():
    metric = METRICS.build(dict(type='InstanceMatchingMetric'))
    assert isinstance(metric, InstanceMatchingMetric)

    metric.process({}, [_data_sample(1), _data_sample(2)])
    result = metric.evaluate(size=2)

    expected = _expected()
    assert set(result) == {f'matching/{key}' for key in expected}
    for key, value in expected.items():
        assert result[f'matching/{key}'] == pytest.approx(value, abs=1e-4)


def test_images_are_pooled_not_averaged():
    """METRICS.md: counts summed over the images, then the ratio. Image 1 as above (TP 2, FP 1), image 2 perfect
    (TP 2): pooled F1@0.5 8/9; a mean of per-image F1 would be 0.9, the last image alone 1.0."""
    metric = InstanceMatchingMetric()
    metric.process({}, [_data_sample(1), _data_sample(2, pred_boxes=GT_BOXES, pred_scores=[0.9, 0.8])])
    assert metric.evaluate(size=2)['matching/f1_50'] == pytest.approx(8 / 9, abs=1e-4)


def test_score_threshold_and_rasterisation_priority():
    masks = _box_masks([(0, 6, 0, 6), (3, 9, 3, 9)])
    labels = instances_to_labels(torch.from_numpy(masks), SHAPE, order=[1, 0])
    assert labels[4, 4] == 1 and labels[0, 0] == 2 and labels[8, 8] == 1  # first in order wins the overlap
    rle = mask_utils.encode(np.asfortranarray(np.moveaxis(masks, 0, -1).astype(np.uint8)))
    assert np.array_equal(instances_to_labels(rle, SHAPE), instances_to_labels(masks, SHAPE))
    with pytest.raises(ValueError, match=r'expected \(N, 12, 16\) instance masks'):
        instances_to_labels(np.zeros((1, 5, 5), bool), SHAPE)

    metric = InstanceMatchingMetric(score_thr=0.1)  # now the low-score duplicate competes for the pixels
    metric.process({}, [_data_sample(1)])
    assert metric.evaluate(size=1)['matching/f1_50'] < _expected()['f1_50']


def test_missing_ground_truth_is_a_clear_error():
    metric = InstanceMatchingMetric()
    with pytest.raises(KeyError, match='has no gt_instances.masks: add LoadAnnotations'):
        metric.process({}, [_data_sample(1, with_gt=False)])


def test_next_to_coco_metric_in_an_evaluator(tmp_path):
    """``test_evaluator = [dict(type='CocoMetric', ...), dict(type='InstanceMatchingMetric', ...)]`` works."""
    annotations, images = [], []
    for img_id in (1, 2):
        images.append({'id': img_id, 'file_name': f'{img_id}.png', 'height': SHAPE[0], 'width': SHAPE[1]})
        for mask, (r0, r1, c0, c1) in zip(_box_masks(GT_BOXES), GT_BOXES):
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            rle['counts'] = rle['counts'].decode()
            annotations.append({'id': len(annotations) + 1, 'image_id': img_id, 'category_id': 1, 'iscrowd': 0,
                                'segmentation': rle, 'area': int(mask.sum()), 'bbox': [c0, r0, c1 - c0, r1 - r0]})
    ann_file = tmp_path / 'coco.json'
    ann_file.write_text(json.dumps({'images': images, 'annotations': annotations,
                                    'categories': [{'id': 1, 'name': 'particle'}]}))

    with DefaultScope.overwrite_default_scope('mmdet'):
        evaluator = Evaluator([dict(type='CocoMetric', ann_file=str(ann_file), metric=['segm']),
                               dict(type='InstanceMatchingMetric', ann_file=str(ann_file))])
        evaluator.dataset_meta = {'classes': ('particle',)}
        evaluator.process([_data_sample(1, with_gt=False), _data_sample(2, with_gt=False)])
        result = evaluator.evaluate(2)

    assert 'coco/segm_mAP' in result
    assert result['matching/f1_50'] == pytest.approx(_expected()['f1_50'], abs=1e-4)
    assert result['matching/pq_50'] == pytest.approx(_expected()['pq_50'], abs=1e-4)


def test_all_predictions_below_threshold_count_as_misses():
    """A barely trained model: masks exist but none passes ``score_thr`` -> empty label image, every GT a miss."""
    assert not instances_to_labels(_box_masks(PRED_BOXES), SHAPE, order=[]).any()
    metric = InstanceMatchingMetric(score_thr=0.95)
    metric.process({}, [_data_sample(1)])
    result = metric.evaluate(size=1)
    assert result['matching/recall_50'] == 0.0 and result['matching/f1_50'] == 0.0
