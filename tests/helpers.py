"""Plain helpers for the tests (importable as ``helpers``: setup.cfg puts tests/ on the path)."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA_DIR = REPO_ROOT.parent / 'shared' / 'data' / 'real'
TINY_CONFIG = REPO_ROOT / 'configs' / 'nmc' / 'mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py'
R101_CONFIG = REPO_ROOT / 'configs' / 'nmc' / 'mask-rcnn_r101_fpn.py'

def draw_disc_image(rng, size=128, n_discs=6):
    """A grayscale (H, W) uint8 image of bright discs on noise, and their (N, H, W) bool masks."""
    from skimage.draw import disk
    image = rng.normal(40, 8, (size, size))
    masks = []
    for _ in range(n_discs):
        radius = rng.uniform(8, 16)
        centre = rng.uniform(radius + 2, size - radius - 2, 2)
        mask = np.zeros((size, size), bool)
        mask[disk(tuple(centre), radius, shape=mask.shape)] = True
        mask &= ~np.any(masks, axis=0) if masks else True  # later discs go behind earlier ones
        if mask.sum() < 20:
            continue
        image[mask] = rng.normal(180, 10, mask.sum())
        masks.append(mask)
    return np.clip(image, 0, 255).astype(np.uint8), np.array(masks)


def write_coco_split(root, split, n_images, rng):
    """Write ``root/images/<split>/*.png`` and ``root/annotations/<split>.json`` (RLE masks); return the json path."""
    import pycocotools.mask as mask_utils
    from PIL import Image
    img_dir = root / 'images' / split
    img_dir.mkdir(parents=True, exist_ok=True)
    (root / 'annotations').mkdir(exist_ok=True)
    images, annotations = [], []
    for img_id in range(1, n_images + 1):
        image, masks = draw_disc_image(rng)
        name = f'{split}_{img_id:03d}.png'
        Image.fromarray(image).convert('RGB').save(img_dir / name)
        images.append(dict(id=img_id, file_name=name, height=image.shape[0], width=image.shape[1]))
        for mask in masks:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            x, y, w, h = mask_utils.toBbox(rle).tolist()
            annotations.append(dict(id=len(annotations) + 1, image_id=img_id, category_id=1, iscrowd=0,
                                    area=int(mask.sum()), bbox=[x, y, w, h],
                                    segmentation=dict(size=rle['size'], counts=rle['counts'].decode())))
    ann_file = root / 'annotations' / f'{split}.json'
    ann_file.write_text(json.dumps(dict(images=images, annotations=annotations,
                                        categories=[dict(id=1, name='particle')])))
    return ann_file


def write_config(path, base, data_root, **overrides):
    """Write a config that inherits ``base`` and points all dataloaders and evaluators at ``data_root``."""
    data_root = str(data_root).rstrip('/') + '/'
    lines = [f'_base_ = {str(base)!r}', f'data_root = {data_root!r}']
    for split in ('train', 'val', 'test'):
        ann = 'train' if split == 'train' else 'val'
        lines.append(f"{split}_dataloader = dict(dataset=dict(data_root=data_root, "
                     f"ann_file='annotations/{ann}.json', data_prefix=dict(img='images/{ann}/')))")
    for split in ('val', 'test'):
        lines.append(f"{split}_evaluator = dict(ann_file=data_root + 'annotations/val.json')")
    lines += [f'{key} = {value!r}' for key, value in overrides.items()]
    Path(path).write_text('\n'.join(lines) + '\n')
    return Path(path)


def run_tool(*args, timeout=600):
    """Run ``python tools/<args>`` from the repo root on one CPU thread; return the CompletedProcess."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def flatten(value, prefix=''):
    """{'a.b': leaf} for nested dicts (lists are leaves)."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat = {}
    for key, item in value.items():
        flat.update(flatten(item, f'{prefix}.{key}' if prefix else key))
    return flat


def json_file_bytes(documents):
    """Hypothesis strategy for the bytes of an annotation file: random bytes, text, a JSON document drawn from the
    strategy ``documents``, or such a document cut short."""
    from hypothesis import strategies as st
    encoded = documents.map(lambda doc: json.dumps(doc).encode())
    return (st.binary(max_size=200) | st.text(max_size=200).map(str.encode) | encoded
            | encoded.flatmap(lambda text: st.integers(0, len(text)).map(lambda n: text[:n])))


def never_loaded(*args, **kwargs):
    """A stand-in for ``init_segmenter`` where no model may be loaded yet (arguments are checked first)."""
    raise AssertionError('the model was loaded before the arguments were checked')


def import_tool(name):
    """``tools/<name>.py`` (e.g. ``'segment'``, ``'dataset_converters/via2coco'``) imported as a fresh module, so
    that a test calls its ``main(argv)`` and helpers in-process (a tool is a script, not a package module)."""
    path = REPO_ROOT / 'tools' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'{Path(name).name}_tool_under_test', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def import_benchmark(name):
    """``benchmarks/<name>.py`` imported as the module ``name``, with benchmarks/ on ``sys.path`` while it loads (as
    when the script runs: it imports ``run_record`` from there), so that a test calls its functions."""
    folder = str(REPO_ROOT / 'benchmarks')
    sys.path.insert(0, folder)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(folder)
