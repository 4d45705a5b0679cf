"""LabelTiffDataset and tools/dataset_converters/labels2coco.py: label images and sliced 3D stacks."""
import itertools
import logging

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from helpers import import_tool
from libnet_mmdet.datasets import AnnotationError, LabelTiffDataset, ParticleCocoDataset, check_coco_file
from libnet_mmdet.datasets import labels_to_coco
from libnet_mmdet.datasets.label_tiff import load_label_data_list
from libnet_mmdet.io import ImageFormatError, InputError
from tomo_data import disc_labels, load_pipeline, mask_iou


def build(img, label, **kwargs):
    return LabelTiffDataset(data_prefix=dict(img=str(img), label=str(label)),
                            pipeline=load_pipeline(normalize='none', channels=1), **kwargs)


def assert_masks_are_the_labels(item, labels_hw):
    """Every instance is exactly one label id of the source (IoU 1.0), and every id is there."""
    ids = [i for i in np.unique(labels_hw) if i]
    masks = item['gt_masks'].to_ndarray().astype(bool)
    assert len(masks) == len(ids)
    for label_id, mask in zip(ids, masks):
        assert mask_iou(mask, labels_hw == label_id) == 1.0
    np.testing.assert_array_equal(item['gt_bboxes'].numpy(), item['gt_masks'].get_bboxes(dst_type='hbox').numpy())


def labels2coco_main():
    return import_tool('dataset_converters/labels2coco').main


@pytest.fixture
def stardist_dirs(tmp_path):
    """images/ (TIFF and PNG) + masks/ with the same names; the last image has no particle."""
    rng = np.random.default_rng(1)
    (tmp_path / 'images').mkdir()
    (tmp_path / 'masks').mkdir()
    sources = {}
    for name in ('a.tif', 'b.png', 'c.tif'):
        image, labels = disc_labels(rng)
        if name == 'c.tif':
            labels[:] = 0
        if name.endswith('.tif'):
            tifffile.imwrite(tmp_path / 'images' / name, image.astype(np.uint16) * 200)
        else:
            Image.fromarray(image).save(tmp_path / 'images' / name)
        tifffile.imwrite(tmp_path / 'masks' / (name.split('.')[0] + '.tif'), labels)
        sources[name] = (image, labels)
    return tmp_path, sources


def test_2d_label_images_yield_the_label_instances(stardist_dirs):
    root, sources = stardist_dirs
    dataset = build(root / 'images', root / 'masks')
    assert len(dataset) == 2  # c.tif has no particle: skipped
    for i, name in enumerate(('a.tif', 'b.png')):
        item = dataset[i]
        assert item['img_path'].endswith(name)
        assert_masks_are_the_labels(item, sources[name][1])
    assert len(build(root / 'images', root / 'masks', skip_empty=False)) == 3


def test_cellpose_label_suffix_in_the_same_folder(tmp_path):
    image, labels = disc_labels(np.random.default_rng(2))
    tifffile.imwrite(tmp_path / 'img1.tif', image)
    Image.fromarray(labels).save(tmp_path / 'img1_masks.png')  # 16-bit PNG labels
    dataset = build(tmp_path, tmp_path, label_suffix='_masks')
    assert len(dataset) == 1
    assert_masks_are_the_labels(dataset[0], labels)


@pytest.mark.parametrize('compress', [False, True])
def test_stack_slices_along_z_y_x_match_the_source(stack_files, compress):
    image_path, label_path, image, labels = stack_files
    if compress:  # compressed stacks cannot be memory-mapped: pages (z) or a cached full read (y, x)
        tifffile.imwrite(image_path, image, compression='zlib')
        tifffile.imwrite(label_path, labels, compression='zlib')
    dataset = build(image_path, label_path, slice_axes='zyx')
    expected = [(axis, index) for axis, n in zip('zyx', labels.shape) for index in range(n)
                if np.take(labels, index, axis='zyx'.index(axis)).any()]
    assert [(dataset[i]['slice_axis'], dataset[i]['slice_index']) for i in range(len(dataset))] == expected
    for i in range(0, len(dataset), 3):
        item = dataset[i]
        axis = 'zyx'.index(item['slice_axis'])
        assert_masks_are_the_labels(item, np.take(labels, item['slice_index'], axis=axis))
        np.testing.assert_array_equal(item['img'][..., 0], np.take(image, item['slice_index'], axis=axis))


def test_skip_empty_and_slice_step(stack_files):
    image_path, label_path, _, labels = stack_files
    assert len(build(image_path, label_path, skip_empty=False)) == labels.shape[0]
    kept = build(image_path, label_path, slice_step=3, skip_empty=False)
    assert [kept[i]['slice_index'] for i in range(len(kept))] == list(range(0, labels.shape[0], 3))
    assert len(build(image_path, label_path)) == labels.shape[0] - 4  # 2 empty slices at each end


def test_filter_cfg_as_in_coco_dataset(stack_files):
    image_path, label_path, _, _ = stack_files
    with pytest.raises(AnnotationError, match=r'labels\.tif: empty dataset: no image is left after filter_cfg'):
        build(image_path, label_path, filter_cfg=dict(min_size=100))


def test_labels2coco_slices_go_through_the_coco_dataset_unchanged(stack_files, tmp_path):
    image_path, label_path, image, labels = stack_files
    out = tmp_path / 'coco'
    labels2coco_main()([str(image_path), str(label_path), str(out), '--axes', 'zx', '--step', '2'])
    coco = check_coco_file(str(out / 'annotations.json'))
    source = build(image_path, label_path, slice_axes='zx', slice_step=2)
    converted = ParticleCocoDataset(ann_file=str(out / 'annotations.json'), data_prefix=dict(img=str(out / 'images')),
                                    pipeline=load_pipeline(normalize='none', channels=1))
    assert len(converted) == len(source) == len(coco['images'])
    for i in range(len(source)):
        a, b = source[i], converted[i]
        assert b['img_path'].endswith(f"image_{a['slice_axis']}{a['slice_index']:04d}.tif")
        np.testing.assert_array_equal(a['img'], b['img'])
        np.testing.assert_array_equal(a['gt_masks'].to_ndarray(), b['gt_masks'].to_ndarray())
    assert tifffile.imread(converted[0]['img_path']).dtype == np.uint16  # the stack's dtype is kept


def test_labels2coco_refuses_to_write_into_its_input_folder(stardist_dirs):
    root, _ = stardist_dirs
    with pytest.raises(SystemExit, match='labels2coco.py: error: .*the output folder holds the input'):
        labels2coco_main()([str(root / 'images'), str(root / 'masks'), str(root)])


def test_bad_label_data_raises_one_clear_error(tmp_path, stack_files):
    image_path, label_path, image, labels = stack_files
    tifffile.imwrite(tmp_path / 'short.tif', labels[:-1])
    with pytest.raises(AnnotationError, match=r'image\.tif and .*short\.tif: image and labels differ in shape: '
                                              r'\(10, 40, 36\) vs \(9, 40, 36\)'):
        load_label_data_list(str(image_path), str(tmp_path / 'short.tif'))
    tifffile.imwrite(tmp_path / 'float.tif', labels.astype(np.float32))
    with pytest.raises(AnnotationError, match=r'float\.tif: instance labels must have an integer dtype .* float32'):
        load_label_data_list(str(image_path), str(tmp_path / 'float.tif'))
    tifffile.imwrite(tmp_path / 'negative.tif', -labels.astype(np.int16))
    with pytest.raises(AnnotationError, match=r'negative\.tif: negative instance labels'):
        load_label_data_list(str(image_path), str(tmp_path / 'negative.tif'))
    tifffile.imwrite(tmp_path / 'empty.tif', np.zeros_like(labels))
    with pytest.raises(AnnotationError, match=r'empty\.tif: empty dataset'):
        load_label_data_list(str(image_path), str(tmp_path / 'empty.tif'))
    with pytest.raises(FileNotFoundError, match=r'label file not found: .*nowhere\.tif'):
        load_label_data_list(str(image_path), str(tmp_path / 'nowhere.tif'))
    with pytest.raises(ValueError, match='slice_axes must be'):
        load_label_data_list(str(image_path), str(label_path), slice_axes='zw')
    with pytest.raises(ValueError, match='slice_step must be an integer >= 1, got True'):  # was taken as 1
        load_label_data_list(str(image_path), str(label_path), slice_step=True)
    every_other = load_label_data_list(str(image_path), str(label_path), slice_step=np.int64(2), skip_empty=False)
    assert [info['slice_index'] for info in every_other] == list(range(0, labels.shape[0], 2))


def test_bad_folders_raise_one_clear_error(stardist_dirs, tmp_path):
    root, _ = stardist_dirs
    (root / 'masks' / 'b.tif').unlink()
    with pytest.raises(FileNotFoundError, match=r'label file not found for image .*b\.png: expected .*masks/b\.'):
        load_label_data_list(str(root / 'images'), str(root / 'masks'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(AnnotationError, match=r'empty: empty dataset: no image files'):
        load_label_data_list(str(tmp_path / 'empty'), str(tmp_path / 'empty'), label_suffix='_masks')
    with pytest.raises(AnnotationError, match='need a label_suffix'):
        load_label_data_list(str(root / 'images'), str(root / 'images'))
    with pytest.raises(ValueError, match='needs data_prefix with img and label'):
        LabelTiffDataset(data_prefix=dict(img=str(root / 'images')))


def test_instances_from_labels_match_pycocotools_encode_byte_for_byte():
    """The column-strip RLE gives the very strings pycocotools.mask.encode gives for the full-size masks."""
    import pycocotools.mask as mask_utils
    from libnet_mmdet.datasets.instances import instances_from_labels
    rng = np.random.default_rng(0)
    for trial in range(60):
        height, width = rng.integers(1, 30, 2)
        labels = rng.integers(0, rng.integers(1, 6), (height, width)).astype(np.uint32) * 1000
        if trial % 4 == 0:
            labels[:] = 7  # one instance filling the image: no background run at either end
        instances = instances_from_labels(labels)
        ids = [i for i in np.unique(labels) if i]
        assert len(instances) == len(ids)
        for label_id, instance in zip(ids, instances):
            rle = mask_utils.encode(np.asfortranarray(labels == label_id, dtype=np.uint8))
            assert instance['mask'] == dict(size=[int(height), int(width)], counts=rle['counts'].decode())
            x, y, w, h = mask_utils.toBbox(rle)
            assert instance['bbox'] == [x, y, x + w, y + h]


# --- the output rule of labels_to_coco: a new or emptied folder, inputs checked before anything is written ---

def test_labels_to_coco_never_mixes_two_runs_in_one_folder(stardist_dirs, tmp_path):
    root, _ = stardist_dirs
    out = tmp_path / 'coco'
    first = labels_to_coco(str(root / 'images'), str(root / 'masks'), str(out), skip_empty=False)
    assert sorted(p.name for p in (out / 'images').iterdir()) == ['a.tif', 'b.png', 'c.tif']
    (root / 'images' / 'a.tif').unlink()
    with pytest.raises(InputError, match=r'coco: folder is not empty; pass --overwrite'):
        labels_to_coco(str(root / 'images'), str(root / 'masks'), str(out))
    assert check_coco_file(str(out / 'annotations.json')) == first  # untouched
    second = labels_to_coco(str(root / 'images'), str(root / 'masks'), str(out), overwrite=True)
    listed = sorted(image['file_name'] for image in second['images'])
    assert listed == sorted(p.name for p in (out / 'images').iterdir()) == ['b.png']  # no image of the first run


def test_labels_to_coco_checks_inputs_before_emptying_the_output(stack_files, tmp_path):
    image_path, label_path, image, labels = stack_files
    out = tmp_path / 'coco'
    labels_to_coco(str(image_path), str(label_path), str(out))
    before = sorted(p.name for p in (out / 'images').iterdir())
    bad = image.astype(np.float32)
    bad[7, 1, 2] = np.nan
    tifffile.imwrite(tmp_path / 'nan.tif', bad)
    with pytest.raises(ImageFormatError, match=r'nan\.tif \[z=7\]: 1 NaN/Inf pixel'):
        labels_to_coco(str(tmp_path / 'nan.tif'), str(label_path), str(out), overwrite=True)
    assert sorted(p.name for p in (out / 'images').iterdir()) == before
    with pytest.raises(InputError, match='the output folder holds the input'):  # overwrite would delete it
        labels_to_coco(str(out / 'images' / before[0]), str(out / 'images' / before[1]), str(out), overwrite=True)
    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine' / 'notes.txt').write_text('not an output of ours')
    with pytest.raises(InputError, match=r'mine: folder is not empty and was not written by libnet-mmdet'):
        labels_to_coco(str(image_path), str(label_path), str(tmp_path / 'mine'), overwrite=True)
    assert (tmp_path / 'mine' / 'notes.txt').exists()


def test_labels_to_coco_refuses_two_stacks_whose_slices_would_share_a_name(stack_files, tmp_path):
    """Stacks ``a.tif`` and ``a.tiff`` both give ``a_z0000.tif``: the second would replace the first's slice and
    the COCO file would list one file twice. Refused in one line naming both, before the output exists."""
    _, _, image, labels = stack_files
    for folder, array in (('images', image), ('labels', labels)):
        (tmp_path / folder).mkdir()
        tifffile.imwrite(tmp_path / folder / 'a.tif', array)
    tifffile.imwrite(tmp_path / 'images' / 'a.tiff', image)
    with pytest.raises(AnnotationError, match=r"images/a\.tif and .*images/a\.tiff: both would be written as "
                       r'images/a_z\d{4}\.tif; rename one of them'):
        labels_to_coco(str(tmp_path / 'images'), str(tmp_path / 'labels'), str(tmp_path / 'coco'))
    assert not (tmp_path / 'coco').exists()


# --- fuzzing: image + label files of random shapes, dtypes and values, sound or damaged ---

DAMAGE = st.tuples(st.sampled_from([None, None, None, 'cut', 'byte']), st.floats(0, 1, exclude_max=True),
                   st.integers(0, 255))  # (how, where in the file, new byte): most files are sound


@st.composite
def label_pairs(draw):
    """``dict(image=(array, damage), labels=(array, damage), slice_axes)``: small arrays of random shapes, dtypes
    and values (negative or non-integer labels, NaN/Inf/huge pixels, mismatched shapes)."""
    shape = draw(st.sampled_from([(6, 7), (1, 6, 7), (3, 6, 7), (2, 3, 6, 7)]))
    label_shape = draw(st.sampled_from([shape, shape, (6, 8), (3, 6, 7)]))
    size = int(np.prod(label_shape))
    labels = np.array(draw(st.lists(st.integers(0, 3), min_size=size, max_size=size))).reshape(label_shape)
    labels.flat[0] = draw(st.sampled_from([0, 0, 1, -1]))
    labels = labels.astype(draw(st.sampled_from([np.uint8, np.uint16, np.uint32, np.int16, np.float32, bool])))
    image_dtype = draw(st.sampled_from([np.uint8, np.uint16, np.float32, np.float64]))
    image = np.arange(int(np.prod(shape))).reshape(shape).astype(image_dtype)
    if image_dtype == np.float64:
        image.flat[draw(st.integers(0, image.size - 1))] = draw(st.sampled_from([0.5, np.nan, np.inf, 1e300]))
    return dict(image=(image, draw(DAMAGE)), labels=(labels, draw(DAMAGE)),
                slice_axes=draw(st.sampled_from(['z', 'zyx'])))


def write_damaged(path, array, damage):
    """Write ``array`` as TIFF, then (``damage[0]``) cut it at, or change one byte at, the fraction ``damage[1]``
    of the file."""
    tifffile.imwrite(path, array, photometric='minisblack')
    how, where, value = damage
    if how is not None:
        data = bytearray(path.read_bytes())
        if how == 'cut':
            data = data[:int(where * len(data))]
        else:
            data[int(where * len(data))] = value
        path.write_bytes(bytes(data))


def declared_size(*paths):
    """Bytes tifffile would allocate for the largest series of ``paths`` (0 when it cannot tell)."""
    logging.disable(logging.CRITICAL)
    try:
        sizes = []
        for path in paths:
            with tifffile.TiffFile(path) as tif:
                sizes += [series.nbytes for series in tif.series]
        return max(sizes, default=0)
    except Exception:
        return 0
    finally:
        logging.disable(logging.NOTSET)


_example = itertools.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=label_pairs())
def test_fuzzed_label_files_load_or_raise_one_named_error(tmp_path, case):
    """labels_to_coco and LabelTiffDataset (and its loader) load the pair, or raise InputError /
    FileNotFoundError naming one of the two files; never another exception."""
    folder = tmp_path / f'example_{next(_example)}'  # new names: no reader cache sees an earlier file
    folder.mkdir()
    write_damaged(folder / 'image.tif', *case['image'])
    write_damaged(folder / 'labels.tif', *case['labels'])
    img_path, label_path = str(folder / 'image.tif'), str(folder / 'labels.tif')
    assume(declared_size(img_path, label_path) < 2**20)  # changed tags can declare huge images
    try:
        coco = labels_to_coco(img_path, label_path, str(folder / 'coco'), slice_axes=case['slice_axes'])
        dataset = LabelTiffDataset(data_prefix=dict(img=img_path, label=label_path), slice_axes=case['slice_axes'],
                                   pipeline=load_pipeline())
        items = [dataset[i] for i in range(len(dataset))]
    except (InputError, FileNotFoundError) as exc:
        assert img_path in str(exc) or label_path in str(exc), str(exc)
        event(type(exc).__name__)
        return
    event('loaded')
    assert len(coco['images']) == len(items) and all(np.isfinite(item['img']).all() for item in items)
    assert {p.name for p in (folder / 'coco' / 'images').iterdir()} == {i['file_name'] for i in coco['images']}


def test_labels_in_a_lossy_format_are_refused(tmp_path):
    """JPEG artefacts would become extra or merged instance ids without a word."""
    labels = np.zeros((16, 16), np.uint8)
    labels[3:9, 3:9] = 1
    Image.fromarray(labels * 200).save(tmp_path / 'a.png')
    Image.fromarray(labels).save(tmp_path / 'a.jpg')
    with pytest.raises(AnnotationError, match=r'a\.jpg: instance labels in a lossy format \(JPEG\)'):
        build(tmp_path / 'a.png', tmp_path / 'a.jpg')
