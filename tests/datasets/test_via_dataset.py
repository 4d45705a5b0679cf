"""ViaParticleDataset and tools/dataset_converters/via2coco.py: VIA 1.x / 2.x / project files to exact masks."""
import json
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from skimage import draw

from libnet_mmdet.datasets import AnnotationError, ParticleCocoDataset, ViaParticleDataset, check_coco_file
from libnet_mmdet.datasets import via_to_coco
from libnet_mmdet.io import InputError
from libnet_mmdet.datasets.via import parse_via
from tomo_data import (VIA_SHAPES, VIA_SIZE, load_pipeline, mask_iou, reference_via_mask, via_document,
                       via_metadata, write_via)
from helpers import import_tool, json_file_bytes


def build(ann_file, img_dir, **kwargs):
    return ViaParticleDataset(ann_file=str(ann_file), data_prefix=dict(img=str(img_dir)),
                              pipeline=load_pipeline(), **kwargs)


def via2coco_main():
    return import_tool('dataset_converters/via2coco').main


@pytest.mark.parametrize('version', [1, 2, 'project'])
def test_every_shape_yields_the_rasterised_source_mask(via_dir, version):
    doc = via_document(via_metadata('scene.png', VIA_SHAPES, 1 if version == 1 else 2), version)
    dataset = build(write_via(via_dir / 'via.json', doc), via_dir / 'images')
    assert len(dataset) == 1 and dataset.metainfo['classes'] == ('particle',)
    item = dataset[0]
    height, width = VIA_SIZE
    assert item['img'].shape == (height, width, 3)
    masks = item['gt_masks'].to_ndarray().astype(bool)
    assert len(masks) == len(VIA_SHAPES)
    for shape, mask in zip(VIA_SHAPES, masks):
        assert mask_iou(mask, reference_via_mask(shape, height, width)) == 1.0, shape['name']
    # boxes are the masks' extents, and the image content is under the masks (drawn at known places)
    np.testing.assert_array_equal(item['gt_bboxes'].numpy(), item['gt_masks'].get_bboxes(dst_type='hbox').numpy())
    gray = item['img'][..., 0]
    assert (gray[masks.any(0)] == 255).all() and (gray[~masks.any(0)] == 0).all()


def test_seed_pixel_convention_reads_coordinates_half_a_pixel_up_left(via_dir):
    """pixel_centre_offset=0 (the seed LIBNet, skimage.draw.polygon(ys, xs)): coordinates 0.5 smaller, same masks."""
    coordinate_keys = ('all_points_x', 'all_points_y', 'x', 'y', 'cx', 'cy')
    seed_shapes = [{key: (np.asarray(value) - 0.5).tolist() if key in coordinate_keys else value
                    for key, value in shape.items()} for shape in VIA_SHAPES]
    via_item = build(write_via(via_dir / 'via.json', via_metadata('scene.png', VIA_SHAPES, 2)), via_dir / 'images')[0]
    seed_item = build(write_via(via_dir / 'seed.json', via_metadata('scene.png', seed_shapes, 2)), via_dir / 'images',
                      pixel_centre_offset=0.0)[0]
    np.testing.assert_array_equal(seed_item['gt_masks'].masks, via_item['gt_masks'].masks)
    polygon = seed_shapes[0]
    rows, cols = draw.polygon(polygon['all_points_y'], polygon['all_points_x'], shape=VIA_SIZE)
    assert (seed_item['gt_masks'].masks[0] == 1).sum() == len(rows)
    assert seed_item['gt_masks'].masks[0][rows, cols].all()


def test_regions_dict_keys_name_the_region_in_errors(via_dir):
    shapes = [VIA_SHAPES[0], dict(name='polygon', all_points_x=[1, 2], all_points_y=[1, 2])]
    ann_file = write_via(via_dir / 'via.json', via_metadata('scene.png', shapes, 1))
    with pytest.raises(AnnotationError, match=r"via\.json: image 'scene\.png1234' \(scene\.png\), region 1: "
                                              r'polygon has 2 point\(s\)'):
        build(ann_file, via_dir / 'images')


@pytest.mark.parametrize('doc, error, message', [
    ('{"a": ', AnnotationError, r'via\.json: malformed JSON'),
    ({}, AnnotationError, r'via\.json: empty dataset'),
    (dict(project={}, file={}, metadata={}), AnnotationError, 'VIA 3 project files are not supported'),
    ([1, 2], AnnotationError, 'must hold a JSON object'),
    ({'k': dict(filename='scene.png', regions=5)}, AnnotationError, "image 'k': regions must be a list"),
    ({'k': dict(regions=[])}, AnnotationError, "image 'k': filename must be a non-empty string"),
    ({'k': dict(filename='scene.png', size=1)}, AnnotationError,
     r"""image 'k' \(scene.png\): no "regions" key; an image without particles has "regions": \[\]"""),
    ('[' * 100000, AnnotationError, r'via\.json: malformed JSON \(RecursionError'),
    ('{"k": ' + '7' * 5000 + '}', AnnotationError, r'via\.json: malformed JSON \(ValueError'),
    (via_metadata('scene.png', [dict(name='polygon', all_points_x=[1, 2, 3], all_points_y=[1, 2])], 2),
     AnnotationError, r'region 0: polygon has 3 x and 2 y coordinates'),
    (via_metadata('scene.png', [dict(name='point', cx=3, cy=4)], 2), AnnotationError,
     r"region 0: unsupported region shape 'point'"),
    (via_metadata('scene.png', [dict(name='polygon', all_points_x=[1, 90, 5], all_points_y=[1, 2, 9])], 2),
     AnnotationError, r'region 0: polygon lies outside the 64x48 image'),
    (via_metadata('scene.png', [dict(name='circle', cx=10, cy=-20, r=3)], 2), AnnotationError,
     r'region 0: circle lies outside the 64x48 image'),
    (via_metadata('scene.png', [dict(name='circle', cx=10, cy=20, r=0)], 2), AnnotationError,
     r'region 0: circle r must be > 0'),
    (via_metadata('scene.png', [dict(name='rect', x=10, y=20, width='5', height=3)], 2), AnnotationError,
     r"region 0: rect 'width' must be a finite number"),
    (via_metadata('scene.png', [dict(name='polygon', all_points_x=[5.1, 5.2, 5.3],
                                     all_points_y=[5.1, 5.2, 5.3])], 2),
     AnnotationError, r'region 0: polygon covers no pixel centre'),
    (via_metadata('missing.png', [VIA_SHAPES[0]], 2), FileNotFoundError, r'image file not found: .*missing\.png'),
    # one image under two keys (re-added with another size, merged projects): refused since 2026-12-07
    ({'a': dict(filename='scene.png', regions=[]), 'b': dict(filename='scene.png', regions=[])}, AnnotationError,
     r"images 'a' and 'b' are both 'scene\.png'; merge them into one image"),
])
def test_bad_via_files_raise_one_clear_error(via_dir, doc, error, message):
    ann_file = via_dir / 'via.json'
    ann_file.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(error, match=message) as info:
        build(ann_file, via_dir / 'images')
    assert str(ann_file) in str(info.value)


@pytest.mark.parametrize('offset', [float('nan'), 50.0, -0.5, '0'])
def test_a_bad_pixel_centre_offset_is_named_not_blamed_on_the_regions(via_dir, offset):
    """It was never checked: NaN or 50 came back as 'circle covers no pixel centre' / 'lies outside the image' of
    a good file, a string as a bare TypeError."""
    ann_file = write_via(via_dir / 'via.json', via_metadata('scene.png', VIA_SHAPES, 2))
    with pytest.raises(InputError, match=r'pixel_centre_offset must be in \[0, 1\)'):
        build(ann_file, via_dir / 'images', pixel_centre_offset=offset)


def test_missing_via_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='VIA annotation file not found: .*nowhere.json'):
        build(tmp_path / 'nowhere.json', tmp_path)


def test_filter_empty_gt_drops_images_without_regions_and_an_empty_result_is_an_error(via_dir):
    metadata = via_metadata('scene.png', VIA_SHAPES[:2], 2)
    shutil.copy(via_dir / 'images' / 'scene.png', via_dir / 'images' / 'empty.png')
    metadata.update({'other': dict(filename='empty.png', regions=[])})
    ann_file = write_via(via_dir / 'via.json', metadata)
    assert len(build(ann_file, via_dir / 'images', test_mode=True)) == 2
    assert len(build(ann_file, via_dir / 'images', filter_cfg=dict(filter_empty_gt=True))) == 1
    with pytest.raises(AnnotationError, match='empty dataset: no image is left after filter_cfg'):
        build(ann_file, via_dir / 'images', filter_cfg=dict(filter_empty_gt=True, min_size=100))


def test_via2coco_gives_the_same_instances_through_the_coco_dataset(via_dir):
    ann_file = write_via(via_dir / 'via.json', via_metadata('scene.png', VIA_SHAPES, 2))
    out = via_dir / 'coco' / 'annotations.json'
    via2coco_main()([str(ann_file), str(via_dir / 'images'), str(out)])
    coco = check_coco_file(str(out))
    assert [image['file_name'] for image in coco['images']] == ['scene.png']
    via_item = build(ann_file, via_dir / 'images')[0]
    coco_item = ParticleCocoDataset(ann_file=str(out), data_prefix=dict(img=str(via_dir / 'images')),
                                    pipeline=load_pipeline())[0]
    np.testing.assert_array_equal(coco_item['gt_masks'].to_ndarray(), via_item['gt_masks'].to_ndarray())
    np.testing.assert_array_equal(coco_item['gt_bboxes'].numpy(), via_item['gt_bboxes'].numpy())
    assert not list(out.parent.glob('.*tmp'))  # written atomically


def test_via2coco_refuses_to_overwrite_its_input(via_dir):
    ann_file = write_via(via_dir / 'via.json', via_metadata('scene.png', VIA_SHAPES, 2))
    with pytest.raises(SystemExit, match='via2coco.py: error: .*would overwrite the input'):
        via2coco_main()([str(ann_file), str(via_dir / 'images'), str(ann_file)])


def test_via_to_coco_replaces_an_existing_output_only_with_overwrite(via_dir):
    ann_file = write_via(via_dir / 'via.json', via_metadata('scene.png', VIA_SHAPES, 2))
    out = via_dir / 'train.json'
    out.write_text('an earlier result')
    with pytest.raises(InputError, match=r'train\.json: exists; pass --overwrite'):
        via_to_coco(str(ann_file), str(via_dir / 'images'), str(out))
    assert out.read_text() == 'an earlier result'
    with pytest.raises(InputError, match=r'images: the COCO output must be a .json file'):
        via_to_coco(str(ann_file), str(via_dir / 'images'), str(via_dir / 'images'), overwrite=True)
    (via_dir / 'folder.json').mkdir()
    with pytest.raises(InputError, match=r'folder\.json: is a folder'):
        via_to_coco(str(ann_file), str(via_dir / 'images'), str(via_dir / 'folder.json'), overwrite=True)
    broken = write_via(via_dir / 'broken.json', {'k': dict(filename='scene.png')})
    with pytest.raises(AnnotationError, match='no "regions" key'):  # inputs are checked before out is replaced
        via_to_coco(str(broken), str(via_dir / 'images'), str(out), overwrite=True)
    assert out.read_text() == 'an earlier result'
    coco = via_to_coco(str(ann_file), str(via_dir / 'images'), str(out), overwrite=True)
    assert check_coco_file(str(out)) == coco and len(coco['annotations']) == len(VIA_SHAPES)
    with pytest.raises(InputError, match='would overwrite the input'):
        via_to_coco(str(ann_file), str(via_dir / 'images'), str(ann_file), overwrite=True)


# --- fuzzing: any JSON value, and mutations of a valid file, either parse or raise AnnotationError ---

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
SHAPE_KEYS = ['name', 'all_points_x', 'all_points_y', 'x', 'y', 'width', 'height', 'cx', 'cy', 'r', 'rx', 'ry',
              'theta']


@st.composite
def mutated_via(draw):
    """A valid VIA 2 dict with one field of one region (or image) replaced by an arbitrary JSON value."""
    doc = via_metadata('scene.png', VIA_SHAPES, 2)
    entry = doc['scene.png1234']
    region = draw(st.sampled_from(entry['regions']))
    target = draw(st.sampled_from(['shape', 'region', 'entry']))
    value = draw(json_values | st.just(DELETE))
    if target == 'shape':
        where, key = region['shape_attributes'], draw(st.sampled_from(SHAPE_KEYS))
    elif target == 'region':
        where, key = region, draw(st.sampled_from(['shape_attributes', 'region_attributes']))
    else:
        where, key = entry, draw(st.sampled_from(['filename', 'regions', 'size']))
    if value is DELETE:
        where.pop(key, None)  # a key left out (a missing "regions" was taken for an image without particles)
    else:
        where[key] = value
    return doc


DELETE = object()


@settings(max_examples=50, deadline=None)
@given(doc=json_values | mutated_via())
def test_fuzzed_via_parses_or_raises_annotation_error(doc):
    try:
        images = parse_via(doc, 'fuzz.json')
    except AnnotationError as exc:
        assert 'fuzz.json' in str(exc)
        return
    for image in images:
        assert isinstance(image['filename'], str)
        for region in image['regions']:
            assert region['name'] in ('polygon', 'polyline', 'rect', 'circle', 'ellipse')


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=mutated_via())
def test_fuzzed_via_files_build_or_raise_annotation_error(via_dir, doc):
    ann_file = write_via(via_dir / 'via.json', doc)
    try:
        dataset = build(ann_file, via_dir / 'images')
    except (AnnotationError, FileNotFoundError) as exc:
        assert str(ann_file) in str(exc)
        return
    item = dataset[0]
    assert len(item['gt_masks']) == len(doc['scene.png1234']['regions'])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=json_file_bytes(mutated_via()))
def test_fuzzed_via_file_bytes_convert_or_raise_one_named_error(via_dir, content):
    """Any bytes (random, text, a valid file cut short) in the VIA file: via_to_coco writes a COCO file that
    checks, or raises InputError / FileNotFoundError naming the file; never another exception."""
    ann_file = via_dir / 'via.json'
    ann_file.write_bytes(content)
    out = via_dir / 'coco.json'
    try:
        coco = via_to_coco(str(ann_file), str(via_dir / 'images'), str(out), overwrite=True)
    except (InputError, FileNotFoundError) as exc:
        assert str(ann_file) in str(exc), str(exc)
        event(type(exc).__name__)
        return
    event('converted')
    assert check_coco_file(str(out)) == coco
