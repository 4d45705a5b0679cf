"""Images or 3D stacks with phase maps (0 pore, 1 NMC, 2 carbon-binder): the training data of a phase model."""
import numpy as np
from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS

from ..io.images import SLICE_AXES, check_slicing, open_stack, read_image_info
from .instances import AnnotationError
from .label_tiff import find_label_pairs


def load_phase_data_list(img_source, seg_source, seg_suffix='', slice_axes=('z',), slice_step=1):
    """``data_info`` dicts (``img_path``, ``seg_map_path``, ``height``, ``width``; ``slice_axis`` and
    ``slice_index`` for stacks; no instances) of image / phase-map pairs (paired as :func:`find_label_pairs`).

    Raises:
        ValueError: bad ``slice_axes`` or ``slice_step`` (:func:`~libnet_mmdet.io.images.check_slicing`).
        FileNotFoundError, AnnotationError: missing files, an image and phase map of different shapes, a phase
        map that is not integer or holds a value other than 0, 1, 2.
    """
    slice_axes, slice_step = check_slicing(slice_axes, slice_step)
    data_list = []
    for img_path, seg_path in find_label_pairs(img_source, seg_source, seg_suffix):
        img_shape, _, img_is_stack = read_image_info(img_path)
        seg_shape, seg_dtype, seg_is_stack = read_image_info(seg_path)
        if not np.issubdtype(seg_dtype, np.integer):
            raise AnnotationError(f'{seg_path}: a phase map must have an integer dtype (0 pore, 1 NMC, '
                                  f'2 carbon-binder), got {seg_dtype}')
        if (img_shape if img_is_stack else img_shape[:2]) != seg_shape or img_is_stack != seg_is_stack:
            raise AnnotationError(f'{img_path} and {seg_path}: image and phase map differ in shape: {img_shape} vs '
                                  f'{seg_shape}')
        phases = open_stack(seg_path)  # a value beyond the codes would only fail when its slice is drawn
        low, high = int(phases.min()), int(phases.max())
        if low < 0 or high > 2:
            raise AnnotationError(f'{seg_path}: phase values must be 0 (pore), 1 (NMC) or 2 (carbon-binder); found '
                                  f'values from {low} to {high}')
        if not seg_is_stack:
            data_list.append(dict(img_path=img_path, seg_map_path=seg_path, img_id=len(data_list),
                                  height=seg_shape[0], width=seg_shape[1], instances=[]))
            continue
        for slice_axis in slice_axes:
            axis = SLICE_AXES.index(slice_axis)
            height, width = (n for a, n in enumerate(seg_shape) if a != axis)
            for slice_index in range(0, seg_shape[axis], slice_step):
                data_list.append(dict(img_path=img_path, seg_map_path=seg_path, img_id=len(data_list),
                                      height=height, width=width, slice_axis=slice_axis, slice_index=slice_index,
                                      instances=[]))
    return data_list


@DATASETS.register_module()
class PhaseTiffDataset(BaseDetDataset):
    """Slices (or 2D images) with their pore / NMC / carbon-binder phase maps, for a phase model
    (:class:`~libnet_mmdet.models.PhaseSegmentor`); load the maps with
    :class:`~libnet_mmdet.datasets.transforms.LoadPhaseMap`.

    Args:
        data_prefix (dict): ``img``: an image file / stack or a folder of them; ``seg``: the matching phase file or
            folder (same file names, or ``seg_suffix``). Both are joined to ``data_root``.
        seg_suffix (str): phase file stem = image stem + ``seg_suffix``.
        slice_axes (str | tuple[str]): slice 3D stacks along these axes ('z', 'y', 'x'); default ``('z',)``.
        slice_step (int): keep every n-th slice.
        **kwargs: :class:`mmdet.datasets.BaseDetDataset` arguments (``data_root``, ``pipeline``, ...).

    Example (the synthetic corpus)::

        dict(type='PhaseTiffDataset', data_root='data/generalist_corpus/',
             data_prefix=dict(img='images/', seg='phases/'), slice_axes='zyx', slice_step=2, pipeline=...)
    """

    METAINFO = {'classes': ('nmc',), 'stuff_classes': ('pore', 'carbon_binder')}

    def __init__(self, *args, seg_suffix='', slice_axes=('z',), slice_step=1, **kwargs):
        self.seg_suffix = seg_suffix
        self.slice_axes = slice_axes
        self.slice_step = slice_step
        super().__init__(*args, **kwargs)

    def load_data_list(self):
        missing = [key for key in ('img', 'seg') if not self.data_prefix.get(key)]
        if missing:
            raise ValueError(f'PhaseTiffDataset needs data_prefix with img and seg paths; missing {missing}')
        return load_phase_data_list(self.data_prefix['img'], self.data_prefix['seg'], self.seg_suffix,
                                    self.slice_axes, self.slice_step)
