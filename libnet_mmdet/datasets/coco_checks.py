"""Validation of COCO instance-segmentation JSON before MMDetection parses it.

``pycocotools`` and ``CocoDataset`` fail on malformed files with a bare ``KeyError``/``TypeError`` deep inside,
silently drop polygons with fewer than 3 points, and do not bound-check RLE counts (a corrupt RLE string can make
``pycocotools.mask.decode`` write past its buffer). :func:`check_coco` raises one
:class:`~libnet_mmdet.datasets.instances.AnnotationError` naming the file, the image / annotation index and the
problem instead.
"""
import json
import math
import warnings

from .instances import AnnotationError


def is_number(value):
    """A finite float, or an int of at most 53 bits (exact as a float); bools are not numbers here."""
    return (is_int(value) and abs(value) <= 2**53) or (isinstance(value, float) and math.isfinite(value))


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def rle_string_counts(counts):
    """Run lengths of a COCO compressed RLE string (the LEB128-like format of ``pycocotools``' ``rleFrString``).

    Raises:
        ValueError: a character outside the format's alphabet or a truncated run.
    """
    runs, position = [], 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(counts):
                raise ValueError('truncated run')
            code = ord(counts[position]) - 48
            if not 0 <= code < 64:
                raise ValueError(f'invalid character {counts[position]!r}')
            value |= (code & 0x1f) << (5 * shift)
            more = bool(code & 0x20)
            position += 1
            shift += 1
            if not more and code & 0x10:
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def _check_rle(rle, height, width, where):
    size, counts = rle.get('size'), rle.get('counts')
    if not (isinstance(size, list) and all(is_int(n) for n in size) and size == [height, width]):
        raise AnnotationError(f'{where}: RLE size {size!r} differs from the image size [height, width] = '
                              f'[{height}, {width}]')
    if isinstance(counts, str):
        try:
            runs = rle_string_counts(counts)
        except ValueError as exc:
            raise AnnotationError(f'{where}: malformed RLE counts string ({exc})') from exc
    elif isinstance(counts, list) and all(is_int(c) for c in counts):
        runs = counts
    else:
        raise AnnotationError(f'{where}: RLE counts must be a string or a list of integers, got '
                              f'{type(counts).__name__}')
    if any(run < 0 for run in runs) or sum(runs) != height * width:
        raise AnnotationError(f'{where}: RLE run lengths must be >= 0 and sum to height * width = '
                              f'{height * width} (they sum to {sum(runs)})')


def _check_polygons(polygons, height, width, where, tolerance):
    if not polygons:
        raise AnnotationError(f'{where}: empty polygon list')
    for k, polygon in enumerate(polygons):
        if not isinstance(polygon, list) or not all(is_number(v) for v in polygon):
            raise AnnotationError(f'{where}, polygon {k}: must be a list of finite numbers [x0, y0, x1, y1, ...]')
        if len(polygon) % 2 or len(polygon) < 6:
            raise AnnotationError(f'{where}, polygon {k}: needs an even number of coordinates and at least 3 '
                                  f'points, got {len(polygon)} numbers')
        xs, ys = polygon[0::2], polygon[1::2]
        if (min(xs) < -tolerance or max(xs) > width + tolerance or min(ys) < -tolerance
                or max(ys) > height + tolerance):
            raise AnnotationError(f'{where}, polygon {k}: points outside the {width}x{height} image '
                                  f'(x in [{min(xs)}, {max(xs)}], y in [{min(ys)}, {max(ys)}])')


def check_files_once(keys_and_files, ann_file):
    """Refuse an annotation file listing one image file under two keys (COCO image ids, VIA image keys), as merged
    exports do: each copy would train on the other's particles as background.

    Args:
        keys_and_files (iterable): ``(key, file name)`` of each image entry.
        ann_file (str): the annotation file, for the message.
    """
    first_key = {}
    for key, name in keys_and_files:
        other = first_key.setdefault(name, key)
        if other != key:
            raise AnnotationError(f'{ann_file}: images {other!r} and {key!r} are both {name!r}; merge them into one '
                                  'image with all its annotations')


def _index_by_id(entries, kind, ann_file, required):
    """{id: entry} for COCO ``images`` / ``categories``, checking each entry's fields."""
    by_id = {}
    for i, entry in enumerate(entries):
        where = f'{ann_file}: {kind}[{i}]'
        if not isinstance(entry, dict):
            raise AnnotationError(f'{where}: must be an object, got {type(entry).__name__}')
        for key, check, what in required:
            if not check(entry.get(key)):
                raise AnnotationError(f'{where}: {key!r} must be {what}, got {entry.get(key)!r}')
        if entry['id'] in by_id:
            raise AnnotationError(f'{where}: duplicate id {entry["id"]}')
        by_id[entry['id']] = entry
    return by_id


def check_coco(coco, ann_file, classes=('particle',), tolerance=1.0):
    """Check a parsed COCO instance-segmentation dict; raise :class:`AnnotationError` on the first problem.

    Args:
        coco: the parsed JSON.
        ann_file (str): its file name, for messages.
        classes (tuple[str]): category names the dataset trains on; each must be among ``categories``.
        tolerance (float): how far (pixels) polygon points and boxes may lie outside the image.

    Annotations that MMDetection's ``CocoDataset`` leaves out of training without a word (``area`` 0, a box under
    1 px wide or tall) are counted in one warning naming the file and the first of them.
    """
    if not isinstance(coco, dict):
        raise AnnotationError(f'{ann_file}: a COCO file must hold a JSON object, got {type(coco).__name__}')
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(coco.get(key), list):
            raise AnnotationError(f'{ann_file}: {key!r} must be a list, got {type(coco.get(key)).__name__}')
    if not coco['images']:
        raise AnnotationError(f'{ann_file}: empty dataset: no images')
    positive_int = (lambda v: is_int(v) and 0 < v < 2**31)
    images = _index_by_id(coco['images'], 'images', ann_file, [
        ('id', is_int, 'an integer'),
        ('file_name', lambda v: isinstance(v, str) and v.strip() != '', 'a non-empty string'),
        ('height', positive_int, 'a positive integer'), ('width', positive_int, 'a positive integer')])
    check_files_once(((image_id, image['file_name']) for image_id, image in images.items()), ann_file)
    categories = _index_by_id(coco['categories'], 'categories', ann_file, [
        ('id', is_int, 'an integer'), ('name', lambda v: isinstance(v, str), 'a string')])
    names = {category['name'] for category in categories.values()}
    missing = [name for name in classes if name not in names]
    if missing:
        raise AnnotationError(f'{ann_file}: no category named {missing} (categories: {sorted(names)})')
    annotation_ids, dropped = set(), []
    for i, ann in enumerate(coco['annotations']):
        where = f'{ann_file}: annotations[{i}]'
        if not isinstance(ann, dict):
            raise AnnotationError(f'{where}: must be an object, got {type(ann).__name__}')
        if not is_int(ann.get('id')) or ann['id'] in annotation_ids:
            raise AnnotationError(f'{where}: id must be a unique integer, got {ann.get("id")!r}')
        annotation_ids.add(ann['id'])
        if not is_int(ann.get('image_id')) or ann['image_id'] not in images:
            raise AnnotationError(f'{where}: image_id {ann.get("image_id")!r} is not the id of an image')
        where = f'{where} (image {images[ann["image_id"]]["file_name"]})'
        if not is_int(ann.get('category_id')) or ann['category_id'] not in categories:
            raise AnnotationError(f'{where}: category_id {ann.get("category_id")!r} is not the id of a category')
        if ann.get('iscrowd', 0) not in (0, 1) or isinstance(ann.get('iscrowd'), bool):
            raise AnnotationError(f'{where}: iscrowd must be 0 or 1, got {ann.get("iscrowd")!r}')
        if not is_number(ann.get('area')) or ann['area'] < 0:
            raise AnnotationError(f'{where}: area must be a number >= 0, got {ann.get("area")!r}')
        height, width = images[ann['image_id']]['height'], images[ann['image_id']]['width']
        bbox = ann.get('bbox')
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(is_number(v) for v in bbox)):
            raise AnnotationError(f'{where}: bbox must be [x, y, w, h] of finite numbers, got {bbox!r}')
        x, y, w, h = bbox
        if w < 0 or h < 0 or x < -tolerance or y < -tolerance or x + w > width + tolerance \
                or y + h > height + tolerance:
            raise AnnotationError(f'{where}: bbox {bbox} is not inside the {width}x{height} image')
        if ann['area'] <= 0 or w < 1 or h < 1:
            dropped.append(where)
        segmentation = ann.get('segmentation')
        if isinstance(segmentation, dict):
            _check_rle(segmentation, height, width, where)
        elif isinstance(segmentation, list):
            _check_polygons(segmentation, height, width, where, tolerance)
        else:
            raise AnnotationError(f'{where}: segmentation must be a polygon list or an RLE object, got '
                                  f'{type(segmentation).__name__}')
    if dropped:
        warnings.warn(f'{ann_file}: {len(dropped)} annotation(s) with area 0 or a box under 1 px (first: '
                      f'{dropped[0].split(": ", 1)[1]}) are left out of training by MMDetection (COCO evaluation still '
                      'counts them); give each its mask area and box (labels2coco.py and via2coco.py write them)')


def check_coco_file(ann_file, classes=('particle',), tolerance=1.0):
    """Load ``ann_file`` and :func:`check_coco` it.

    Returns:
        dict: the parsed COCO JSON.

    Raises:
        FileNotFoundError: no such file.
        AnnotationError: malformed JSON, or content :func:`check_coco` refuses.
    """
    try:
        with open(ann_file) as f:
            coco = json.load(f)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, too deep, too many digits
        raise AnnotationError(f'{ann_file}: malformed JSON ({type(exc).__name__}: {exc})') from exc
    check_coco(coco, ann_file, classes=classes, tolerance=tolerance)
    return coco
