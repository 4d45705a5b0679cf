"""COCO-format particle dataset: MMDetection's ``CocoDataset`` with one class and path checks."""
import os.path as osp

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from ..io.images import read_image_info
from .coco_checks import check_coco_file
from .instances import AnnotationError


@DATASETS.register_module()
class ParticleCocoDataset(CocoDataset):
    """NMC particle instances in COCO JSON (boxes + polygon or RLE masks), one class: ``particle``.

    Same arguments as :class:`mmdet.datasets.CocoDataset`. Before parsing, it checks that the annotation file
    exists and is well-formed (:func:`check_coco_file`: polygons with >= 3 points inside the image, RLE sizes,
    ids) and that the image directory exists; after parsing, that every listed image file exists and has the height
    and width the file gives it (its header is read: polygons would be drawn at the file's own size). So a wrong
    path or a malformed file fails with one message naming it instead of deep inside the data loader (or not at
    all).
    """

    METAINFO = {'classes': ('particle',), 'palette': [(220, 20, 60)]}

    def load_data_list(self):
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'COCO annotation file not found: {self.ann_file}')
        check_coco_file(self.ann_file, classes=self.metainfo['classes'])
        img_dir = self.data_prefix.get('img', '')
        if img_dir and not osp.isdir(img_dir):
            raise FileNotFoundError(f'image directory not found: {img_dir} (annotations: {self.ann_file})')
        data_list = super().load_data_list()
        for data_info in data_list:
            if not osp.isfile(data_info['img_path']):
                raise FileNotFoundError(
                    f"image file not found: {data_info['img_path']} (listed in {self.ann_file}, "
                    f"image id {data_info['img_id']})")
            shape = read_image_info(data_info['img_path'])[0]  # the header: polygons are drawn at the file's size
            if tuple(shape[:2]) != (data_info['height'], data_info['width']):
                raise AnnotationError(
                    f"{data_info['img_path']}: {shape[1]}x{shape[0]} px, but {self.ann_file} gives image id "
                    f"{data_info['img_id']} as {data_info['width']}x{data_info['height']} (width x height): the "
                    'annotations were made on another version of this image')
        return data_list
