"""COCO-format particle dataset: MMDetection's ``CocoDataset`` with one class and path checks."""
import os.path as osp

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from .coco_checks import check_coco_file


@DATASETS.register_module()
class ParticleCocoDataset(CocoDataset):
    """NMC particle instances in COCO JSON (boxes + polygon or RLE masks), one class: ``particle``.

    Same arguments as :class:`mmdet.datasets.CocoDataset`. Before parsing, it checks that the annotation file
    exists and is well-formed (:func:`check_coco_file`: polygons with >= 3 points inside the image, RLE sizes,
    ids) and that the image directory exists; after parsing, that every listed image file exists. So a wrong
    path or a malformed file fails with one message naming it instead of deep inside the data loader.
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
        return data_list
