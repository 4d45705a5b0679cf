"""check_coco: malformed COCO JSON raises one AnnotationError naming the file and index (fuzzed)."""
import copy
import json

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from libnet_mmdet.datasets import AnnotationError, ParticleCocoDataset, check_coco_file
from libnet_mmdet.datasets.coco_checks import check_coco
from libnet_mmdet.datasets.coco_checks import rle_string_counts
from libnet_mmdet.io import InputError
from helpers import json_file_bytes
from tomo_data import load_pipeline

SIZE = 32


def valid_coco():
    """Two 32x32 images; one polygon and one RLE particle on the first, one polygon on the second."""
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[4:12, 6:20] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    return dict(
        images=[dict(id=1, file_name='a.png', height=SIZE, width=SIZE),
                dict(id=2, file_name='b.png', height=SIZE, width=SIZE)],
        annotations=[
            dict(id=1, image_id=1, category_id=1, iscrowd=0, area=60.0, bbox=[10, 14, 10, 10],
                 segmentation=[[10, 14, 20, 14, 20, 24, 10, 24]]),
            dict(id=2, image_id=1, category_id=1, iscrowd=0, area=112, bbox=[6, 4, 14, 8],
                 segmentation=dict(size=[SIZE, SIZE], counts=rle['counts'].decode())),
            dict(id=3, image_id=2, category_id=1, iscrowd=0, area=50, bbox=[2, 2, 10, 10],
                 segmentation=[[2, 2, 12, 2, 7, 12]]),
        ],
        categories=[dict(id=1, name='particle')])


@pytest.fixture(scope='module')
def coco_dir(tmp_path_factory):
    """A folder with the two 32x32 PNG images of valid_coco()."""
    from PIL import Image
    root = tmp_path_factory.mktemp('coco_check')
    for name in ('a.png', 'b.png'):
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (SIZE, SIZE), dtype=np.uint8)).save(root / name)
    return root


def test_valid_file_passes_and_loads(coco_dir):
    ann_file = coco_dir / 'ok.json'
    ann_file.write_text(json.dumps(valid_coco()))
    assert check_coco_file(str(ann_file))['images'][0]['file_name'] == 'a.png'
    dataset = ParticleCocoDataset(ann_file=str(ann_file), data_prefix=dict(img=str(coco_dir)),
                                  pipeline=load_pipeline())
    assert [len(dataset[i]['gt_masks']) for i in range(2)] == [2, 1]


def edit(path, value):
    """valid_coco() with the item at ``path`` (a tuple of keys / indices) set to ``value`` (or deleted)."""
    doc = valid_coco()
    *parents, last = path
    target = doc
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return doc


DELETE = object()


@pytest.mark.parametrize('path, value, message', [
    (('images',), [], r'empty dataset: no images'),
    (('annotations',), DELETE, r"'annotations' must be a list"),
    (('images', 1, 'id'), 1, r'images\[1\]: duplicate id 1'),
    # merged exports listing one file twice, each with part of its particles (trained on until 2026-12-07)
    (('images', 1, 'file_name'), 'a.png', r"images 1 and 2 are both 'a.png'; merge them into one image with all"),
    (('images', 0, 'height'), 0, r"images\[0\]: 'height' must be a positive integer"),
    (('images', 0, 'file_name'), '', r"images\[0\]: 'file_name' must be a non-empty string"),
    (('categories', 0, 'name'), 'cell', r"no category named \['particle'\]"),
    (('annotations', 1, 'id'), 1, r'annotations\[1\]: id must be a unique integer'),
    (('annotations', 0, 'image_id'), 7, r'annotations\[0\]: image_id 7 is not the id of an image'),
    (('annotations', 0, 'category_id'), [1], r'annotations\[0\] \(image a.png\): category_id \[1\] is not'),
    (('annotations', 0, 'area'), None, r'annotations\[0\] \(image a.png\): area must be a number'),
    (('annotations', 0, 'bbox'), [1, 2, 3], r'annotations\[0\] \(image a.png\): bbox must be \[x, y, w, h\]'),
    (('annotations', 0, 'bbox'), [20, 20, 30, 5], r'bbox \[20, 20, 30, 5\] is not inside the 32x32 image'),
    (('annotations', 0, 'segmentation'), DELETE, r'segmentation must be a polygon list or an RLE object'),
    (('annotations', 0, 'segmentation'), [[1, 2, 3, 4]], r'polygon 0: needs an even number of coordinates and '
                                                         r'at least 3 points, got 4 numbers'),
    (('annotations', 2, 'segmentation'), [[2, 2, 40, 2, 7, 12]], r'annotations\[2\] \(image b.png\), polygon 0: '
                                                                 r'points outside the 32x32 image'),
    (('annotations', 0, 'segmentation'), [[1, 2, float('nan'), 4, 5, 6]], r'finite numbers'),
    (('annotations', 1, 'segmentation', 'size'), [SIZE, SIZE + 1], r'RLE size \[32, 33\] differs'),
    (('annotations', 1, 'segmentation', 'counts'), 'a~~', r'malformed RLE counts string'),
    (('annotations', 1, 'segmentation', 'counts'), [100, 5], r'sum to height \* width = 1024'),
])
def test_malformed_coco_raises_one_clear_error(path, value, message):
    with pytest.raises(AnnotationError, match=message) as info:
        check_coco(edit(path, value), 'train.json')
    assert str(info.value).startswith('train.json')


def test_malformed_json_is_named(tmp_path):
    (tmp_path / 'bad.json').write_text('{"images": [')
    with pytest.raises(AnnotationError, match=r'bad\.json: malformed JSON'):
        check_coco_file(str(tmp_path / 'bad.json'))


@pytest.mark.parametrize('content, message', [
    (b'[' * 100000, r'deep\.json: malformed JSON \(RecursionError'),  # was a raw RecursionError
    (b'{"images": ' + b'9' * 5000 + b'}', r'deep\.json: malformed JSON \(ValueError: Exceeds the limit'),
    (b'\xff\xfe{', r'deep\.json: malformed JSON \(UnicodeDecodeError'),
])
def test_json_python_cannot_parse_is_named(tmp_path, content, message):
    (tmp_path / 'deep.json').write_bytes(content)
    with pytest.raises(AnnotationError, match=message):
        check_coco_file(str(tmp_path / 'deep.json'))


def test_rle_string_counts_matches_pycocotools():
    rng = np.random.default_rng(0)
    for _ in range(50):
        height, width = rng.integers(1, 40, 2)
        mask = (rng.random((height, width)) < rng.random()).astype(np.uint8)
        rle = mask_utils.encode(np.asfortranarray(mask))
        runs = rle_string_counts(rle['counts'].decode())
        decoded = np.repeat(np.arange(len(runs)) % 2, runs).reshape(width, height).T
        np.testing.assert_array_equal(decoded, mask)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=4),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12)
FIELDS = {
    'images': ['id', 'file_name', 'height', 'width'],
    'annotations': ['id', 'image_id', 'category_id', 'iscrowd', 'area', 'bbox', 'segmentation'],
    'categories': ['id', 'name'],
}


@st.composite
def mutated_coco(draw):
    """valid_coco() with one field (or a polygon number / RLE part) replaced by an arbitrary JSON value."""
    doc = valid_coco()
    section = draw(st.sampled_from(sorted(FIELDS)))
    entry = draw(st.sampled_from(doc[section]))
    value = draw(json_values | st.integers(-5, 40) | st.just(DELETE))
    where = draw(st.sampled_from(FIELDS[section] + ['polygon', 'rle']))
    if where == 'polygon' and isinstance(entry.get('segmentation'), list):
        polygon = entry['segmentation'][0]
        target, key = polygon, draw(st.integers(0, len(polygon) - 1))
    elif where == 'rle' and isinstance(entry.get('segmentation'), dict):
        target, key = entry['segmentation'], draw(st.sampled_from(['size', 'counts']))
    elif where in FIELDS[section]:
        target, key = entry, where
    else:
        target, key = doc, section
    if value is DELETE:
        del target[key]  # a key (or a polygon number) left out
    else:
        target[key] = value
    return doc


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=json_values | mutated_coco())
def test_fuzzed_coco_is_rejected_clearly_or_loads(coco_dir, doc):
    """Whatever passes the check must load through ParticleCocoDataset + LoadAnnotations without error."""
    try:
        check_coco(copy.deepcopy(doc), 'fuzz.json')
    except AnnotationError as exc:
        assert str(exc).startswith('fuzz.json')
        event('rejected by check_coco')
        return
    event('passed check_coco')
    ann_file = coco_dir / 'fuzz.json'
    ann_file.write_text(json.dumps(doc))
    try:
        dataset = ParticleCocoDataset(ann_file=str(ann_file), data_prefix=dict(img=str(coco_dir)),
                                      pipeline=load_pipeline())
    except FileNotFoundError as exc:  # a file_name that is not there: the dataset names it
        assert 'image file not found' in str(exc)
        return
    except AnnotationError as exc:  # a height or width that is not the file's (the images are 32x32)
        assert 'the annotations were made on another version of this image' in str(exc)
        return
    for i in range(len(dataset)):
        item = dataset[i]
        assert item['gt_masks'].masks.shape[1:] == (SIZE, SIZE)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=json_file_bytes(mutated_coco()))
def test_fuzzed_coco_file_bytes_load_or_raise_one_named_error(coco_dir, content):
    """Any bytes in the annotation file (random, text, a mutated file, one cut short): ParticleCocoDataset loads
    it, or raises InputError / FileNotFoundError naming the file (or the missing image it lists); never another
    exception."""
    ann_file = coco_dir / 'fuzz_bytes.json'
    ann_file.write_bytes(content)
    try:
        dataset = ParticleCocoDataset(ann_file=str(ann_file), data_prefix=dict(img=str(coco_dir)),
                                      pipeline=load_pipeline())
        items = [dataset[i] for i in range(len(dataset))]
    except (InputError, FileNotFoundError) as exc:
        assert str(ann_file) in str(exc), str(exc)
        event(type(exc).__name__)
        return
    event('loaded')
    assert all(item['gt_masks'].masks.shape[1:] == (SIZE, SIZE) for item in items)
