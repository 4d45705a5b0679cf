"""ParticleCocoDataset: the configs' default dataset names bad paths and malformed files."""
import json
import shutil

import pytest

from libnet_mmdet.datasets import AnnotationError, ParticleCocoDataset


def build(root, ann='annotations/train.json', img='images/train/'):
    return ParticleCocoDataset(data_root=str(root), ann_file=ann, data_prefix=dict(img=img), pipeline=[])


def test_loads_the_particles(tiny_coco):
    dataset = build(tiny_coco)
    assert len(dataset) == 4
    assert dataset.metainfo['classes'] == ('particle',)
    assert all(inst['bbox_label'] == 0 for item in dataset for inst in item['instances'])


def test_bad_paths_and_files_are_named(tiny_coco, tmp_path):
    with pytest.raises(FileNotFoundError, match='COCO annotation file not found: .*missing.json'):
        build(tiny_coco, ann='annotations/missing.json')
    with pytest.raises(FileNotFoundError, match='image directory not found: .*images/nowhere'):
        build(tiny_coco, img='images/nowhere/')
    root = tmp_path / 'data'
    shutil.copytree(tiny_coco, root)
    (root / 'images' / 'train' / 'train_002.png').unlink()
    with pytest.raises(FileNotFoundError, match='image file not found: .*train_002.png'):
        build(root)
    coco = json.loads((root / 'annotations' / 'train.json').read_text())
    coco['annotations'][3]['segmentation'] = [[1.0, 2.0, 3.0, 4.0]]  # a polygon of 2 points
    (root / 'annotations' / 'bad.json').write_text(json.dumps(coco))
    with pytest.raises(AnnotationError, match='bad.json'):
        build(root, ann='annotations/bad.json')


def test_an_image_of_another_size_than_its_annotations_is_named(tiny_coco, tmp_path):
    """Polygons were drawn at the file's own size without a word when the image had been re-saved at another one."""
    from PIL import Image
    root = tmp_path / 'data'
    shutil.copytree(tiny_coco, root)
    image = root / 'images' / 'train' / 'train_002.png'
    Image.open(image).resize((256, 256)).save(image)
    with pytest.raises(AnnotationError, match=f'{image}: 256x256 px, but .*train.json gives image id 2 as 128x128'):
        build(root)


def test_annotations_mmdetection_would_drop_are_counted_in_one_warning(tiny_coco, tmp_path):
    """area 0 or a box under 1 px: CocoDataset left them out of training silently (COCO evaluation counts them)."""
    root = tmp_path / 'data'
    shutil.copytree(tiny_coco, root)
    path = root / 'annotations' / 'train.json'
    coco = json.loads(path.read_text())
    kept = sum(len(item['instances']) for item in build(root))
    coco['annotations'][0]['area'] = 0
    coco['annotations'][5]['bbox'][2] = 0.5
    path.write_text(json.dumps(coco))
    with pytest.warns(UserWarning, match=f'{path}: 2 annotation\\(s\\) with area 0 or a box under 1 px \\(first: '
                      'annotations\\[0\\] .*left out of training by MMDetection'):
        dataset = build(root)
    assert sum(len(item['instances']) for item in dataset) == kept - 2
