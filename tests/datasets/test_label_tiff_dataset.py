"""LabelTiffDataset and tools/dataset_converters/labels2coco.py: label images and sliced 3D stacks."""
import importlib.util

import numpy as np
import pytest
import tifffile
from PIL import Image

from helpers import REPO_ROOT
from libnet_mmdet.datasets import AnnotationError, LabelTiffDataset, ParticleCocoDataset, check_coco_file
from libnet_mmdet.datasets.label_tiff import load_label_data_list
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
    spec = importlib.util.spec_from_file_location(
        'labels2coco', REPO_ROOT / 'tools' / 'dataset_converters' / 'labels2coco.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


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
    with pytest.raises(ValueError, match='the output folder holds the input'):
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
