"""Instance masks as MMDetection ``data_info`` entries, and the shared dataset plumbing (filtering, COCO export).

A ``data_info`` dict is what :class:`mmdet.datasets.CocoDataset` produces and the stock ``LoadAnnotations`` /
``PackDetInputs`` consume::

    dict(img_path=str, img_id=int, height=int, width=int,
         instances=[dict(bbox=[x1, y1, x2, y2], bbox_label=0, ignore_flag=0,
                         mask={'size': [h, w], 'counts': str})])   # COCO compressed RLE

plus, for a slice of a 3D stack, ``slice_axis`` ('z' | 'y' | 'x') and ``slice_index`` (int), which
:class:`~libnet_mmdet.datasets.transforms.LoadTomoImageFromFile` uses to read that slice. Boxes are in pixel-corner
coordinates: a mask covering columns 3..7 has x1 = 3, x2 = 8 (as ``BitmapMasks.get_bboxes`` and COCO).
"""
import os
import os.path as osp

import numpy as np
import pycocotools.mask as mask_utils
from scipy import ndimage

from ..io.errors import InputError

CATEGORY = dict(id=1, name='particle')


class AnnotationError(InputError):
    """Malformed or inconsistent annotations; the message names the file (and image / region) and the problem."""


def mask_to_instance(mask_hw, bbox_xyxy=None):
    """One ``data_info`` instance (exact COCO RLE mask) from a (H, W) bool mask.

    Args:
        mask_hw (np.ndarray): (H, W) bool, not empty.
        bbox_xyxy (list | None): [x1, y1, x2, y2] if already known (pixel corners), else computed from the mask.
    """
    rle = mask_utils.encode(np.asfortranarray(mask_hw, dtype=np.uint8))
    if bbox_xyxy is None:
        x, y, w, h = mask_utils.toBbox(rle).tolist()
        bbox_xyxy = [x, y, x + w, y + h]
    return dict(bbox=[float(v) for v in bbox_xyxy], bbox_label=0, ignore_flag=0,
                mask=dict(size=[int(n) for n in rle['size']], counts=rle['counts'].decode('ascii')))


def _column_strip_rle(strip, width, first_column):
    """Compressed COCO RLE of an (H, ``width``) mask that is empty outside the columns of ``strip``.

    COCO RLE runs go down the columns (Fortran order), so the runs of the full mask are the strip's runs with the
    empty columns before and after added to the first and last background runs. Costs O(H x strip width) instead
    of the O(H x W) of encoding the full mask.

    Args:
        strip (np.ndarray): (H, w) bool, the mask's columns ``first_column`` .. ``first_column + w - 1``.
        width (int): W of the full mask.
    """
    height = strip.shape[0]
    flat = strip.ravel(order='F')
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], changes, [flat.size])))
    if flat[0]:
        runs = np.concatenate(([0], runs))  # runs start with background
    runs[0] += first_column * height
    trailing = (width - first_column - strip.shape[1]) * height
    if len(runs) % 2:  # the last run is background
        runs[-1] += trailing
    elif trailing:
        runs = np.concatenate((runs, [trailing]))
    return mask_utils.frPyObjects(dict(size=[height, width], counts=runs.tolist()), height, width)


def instances_from_labels(labels_hw):
    """``data_info`` instances, one per label id > 0 of an instance-label image.

    Args:
        labels_hw (np.ndarray): (H, W) integer labels, 0 = background. An id need not be connected (a 3D particle
            cut by a plane can show as two blobs): it stays one instance, as in the source.

    Returns:
        list[dict]: instances in increasing label order, exact RLE masks.
    """
    ids, sequential = np.unique(labels_hw, return_inverse=True)
    sequential = sequential.reshape(labels_hw.shape)
    if ids[0] != 0:  # no background: sequential 0 is a real instance
        sequential = sequential + 1
    height, width = labels_hw.shape
    instances = []
    for k, box in enumerate(ndimage.find_objects(sequential), start=1):
        if box is None:
            continue
        rows, cols = box
        rle = _column_strip_rle(sequential[:, cols] == k, width, cols.start)
        instances.append(dict(bbox=[float(cols.start), float(rows.start), float(cols.stop), float(rows.stop)],
                              bbox_label=0, ignore_flag=0,
                              mask=dict(size=[height, width], counts=rle['counts'].decode('ascii'))))
    return instances


def filter_data_list(data_list, filter_cfg, test_mode, source):
    """Apply mmdet's ``filter_cfg`` (``filter_empty_gt``, ``min_size``) as ``CocoDataset.filter_data`` does.

    Raises:
        AnnotationError: nothing is left (naming ``source`` and why).
    """
    if not test_mode and filter_cfg:
        min_size = filter_cfg.get('min_size', 0)
        filter_empty_gt = filter_cfg.get('filter_empty_gt', False)
        data_list = [info for info in data_list
                     if min(info['width'], info['height']) >= min_size
                     and not (filter_empty_gt and not info['instances'])]
        if not data_list:
            raise AnnotationError(f'{source}: empty dataset: no image is left after filter_cfg={dict(filter_cfg)} '
                                  '(no instances, or smaller than min_size)')
    return data_list


def data_list_to_coco(data_list, img_root):
    """A COCO dict (``images``, ``annotations``, ``categories``) from ``data_info`` dicts with RLE masks.

    Args:
        data_list (list[dict]): ``data_info`` dicts without ``slice_axis`` (2D images).
        img_root (str): folder the COCO ``file_name`` entries are relative to.
    """
    images, annotations = [], []
    for img_id, info in enumerate(data_list, start=1):
        images.append(dict(id=img_id, file_name=osp.relpath(info['img_path'], img_root).replace(os.sep, '/'),
                           height=int(info['height']), width=int(info['width'])))
        for instance in info['instances']:
            rle = dict(size=instance['mask']['size'], counts=instance['mask']['counts'].encode('ascii'))
            x, y, w, h = mask_utils.toBbox(rle).tolist()
            annotations.append(dict(id=len(annotations) + 1, image_id=img_id, category_id=CATEGORY['id'],
                                    iscrowd=0, area=int(mask_utils.area(rle)), bbox=[x, y, w, h],
                                    segmentation=dict(instance['mask'])))
    return dict(images=images, annotations=annotations, categories=[dict(CATEGORY)])
