"""``tools/test.py --show-dir`` / ``--show`` for tomography data: MMDetection's visualization hook with each sample
read as the dataset reads it (a slice of a 3D stack, 16-bit or float pixels) and named per slice."""
import inspect
import os.path as osp

import numpy as np
from mmdet.engine.hooks import DetVisualizationHook
from mmdet.registry import HOOKS
from mmengine.utils import mkdir_or_exist

from ..apis.model import transform_name
from ..io.images import read_image
from .render import render_labels

#: The metainfo keys of a slice of a 3D stack (``LabelTiffDataset``, ``PhaseTiffDataset``), which a pipeline's
#: ``PackDetInputs`` must keep for the slice to be drawn (:func:`with_slice_keys`).
SLICE_KEYS = ('slice_axis', 'slice_index')


def with_slice_keys(pipeline):
    """A copy of ``pipeline`` (a list of transform dicts) whose ``PackDetInputs`` keeps :data:`SLICE_KEYS` in each
    sample's metainfo, besides its own ``meta_keys`` (mmdet's default when it gives none)."""
    from mmdet.datasets.transforms import PackDetInputs
    steps = []
    for step in pipeline:
        step = dict(step)
        if transform_name(step) == 'PackDetInputs':
            meta_keys = tuple(step.get('meta_keys', inspect.signature(PackDetInputs).parameters['meta_keys'].default))
            step['meta_keys'] = meta_keys + tuple(key for key in SLICE_KEYS if key not in meta_keys)
        steps.append(step)
    return steps


@HOOKS.register_module()
class TomoDetVisualizationHook(DetVisualizationHook):
    """:class:`mmdet.engine.hooks.DetVisualizationHook` whose test overlays show what the model saw: the image is
    read with :func:`~libnet_mmdet.io.images.read_image` (the sample's slice of a stack, any dtype; mmdet's hook
    decoded the stack's first page with OpenCV for every slice, and refused float32 TIFFs), shown as
    :func:`~libnet_mmdet.visualization.render_labels` shows slices (percentile-normalised gray), and written as
    ``<stem>_<axis><index>.png`` (mmdet wrote every slice of a stack over one file)."""

    def after_test_iter(self, runner, batch_idx, data_batch, outputs):
        if self.draw is False:
            return
        if self.test_out_dir is not None:
            self.test_out_dir = osp.join(runner.work_dir, runner.timestamp, self.test_out_dir)
            mkdir_or_exist(self.test_out_dir)
        for data_sample in outputs:
            self._test_index += 1
            axis, index = data_sample.metainfo.get('slice_axis'), data_sample.metainfo.get('slice_index')
            image = read_image(data_sample.img_path, axis, index)
            rgb = render_labels(image, np.zeros(image.shape[:2], np.uint8))  # the slice alone, percentile-normalised
            name = osp.splitext(osp.basename(data_sample.img_path))[0] + (f'_{axis}{index:04d}' if axis else '')
            self._visualizer.add_datasample(
                name, rgb, data_sample=data_sample, show=self.show, wait_time=self.wait_time,
                pred_score_thr=self.score_thr, step=self._test_index,
                out_file=None if self.test_out_dir is None else osp.join(self.test_out_dir, f'{name}.png'))
