"""Loading grayscale tomography slices (TIFF 8/16/32-bit, PNG, JPG) with robust intensity normalisation."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from ...io.images import (NORMALIZE_MODES, SLICE_AXES, ImageFormatError, check_finite, describe, fill_outside_view,
                          intensity_range, normalize_intensity, read_image, read_image_info, to_channels)

#: ``normalize`` of the loaders: the modes of :func:`~libnet_mmdet.io.images.normalize_intensity`, and ``'auto'``.
LOADER_NORMALIZE_MODES = NORMALIZE_MODES + ('auto',)


@TRANSFORMS.register_module()
class LoadTomoImageFromFile(BaseTransform):
    """Load a 2D image, or one slice of a 3D TIFF stack, normalise its intensities and give it 1 or 3 channels.

    Use it in place of ``LoadImageFromFile``. TIFF files are read with tifffile (8/16-bit integer or float32 data
    as stored; a 2D page, or the slice ``results['slice_axis']`` = 'z' | 'y' | 'x', ``results['slice_index']``
    of a (Z, Y, X) stack, read without loading the whole stack when it is uncompressed); PNG/JPG/BMP with mmcv
    (8 or 16 bit). The image is then normalised per image (``normalize``) to [0, 255], the range the stock
    ``DetDataPreprocessor`` mean/std (ImageNet, 0-255) expect, and a grayscale image is repeated into
    ``channels`` channels.

    With ``context_slices=True`` (2.5D input) a slice of a stack comes with its two neighbours along the slice axis
    as its channels: (index - 1, index, index + 1), the stack's first / last slice standing in for the missing
    neighbour at its ends, normalised together; a 2D image (or an (H, W) array) is repeated into the three
    channels as without it, and an (H, W, 3) array is taken as such a (previous, slice, next) stack.

    When ``results`` already holds an ``img`` array and no ``img_path``, that array is normalised instead of reading
    a file (:class:`LoadTomoImageFromNDArray` always takes the array: the loader of in-memory inference).
    ``results['intensity_range']`` ``(low, high)``, when given and not None, is mapped to 0 and 255 in place of the
    slice's own range: one mapping for all the slices of a volume (:meth:`intensity_range` of pixels sampled from
    them), so that an empty slice (air above a sample) stays dark instead of having its noise stretched to 0-255.
    Before normalising, the fill around a reconstructed field of view (the one value that reconstruction software
    writes around the disc of data, :func:`~libnet_mmdet.io.images.outside_view_mask`) is given the values of its
    mirror images inside (``fill_outside_view``, :func:`~libnet_mmdet.io.images.fill_by_mirror`): the model
    sees such slices in training as the inference API shows them, not with a flat edge cutting the particles.

    Required keys: ``img_path`` (or ``img``); optional ``slice_axis``, ``slice_index``, ``intensity_range``.
    Added / modified keys: ``img`` ((H, W, channels), float32 in [0, 255] (``'none'``: the file's own values),
    or uint8 when ``to_float32=False``),
    ``img_shape``, ``ori_shape``.

    Args:
        normalize (str): ``'percentile'`` (default: the ``percentiles`` map to 0 and 255, beyond is clipped),
            ``'minmax'``, ``'none'`` (values kept as they are: meant for 8-bit data; other dtypes keep their own
            range, which the intensity augmentations, clipping to 0-255, and our models do not expect), or
            ``'auto'`` (``'none'`` for 8-bit data, ``'percentile'`` for other dtypes: 8-bit images as MMDetection's
            stock ``LoadImageFromFile`` reads them, other dtypes mapped to the 0-255 such models were trained on).
        percentiles (tuple[float, float]): low and high percentile for ``'percentile'``.
        channels (int): 3 (default, for ImageNet-style backbones) or 1.
        to_float32 (bool): float32 output (default; keeps 16-bit precision). False rounds to uint8.
        context_slices (bool): give a stack slice its neighbours as channels (needs ``channels=3``).
        fill_outside_view (bool): fill outside the field of view as described above (default True; a slice
            without such fill is left as it is).

    Raises:
        FileNotFoundError: missing file.
        ImageFormatError (ValueError): unreadable/corrupt file, 4D input, slice out of range, NaN/Inf pixels; the
            message names the file and slice.
    """

    def __init__(self, normalize='percentile', percentiles=(0.5, 99.5), channels=3, to_float32=True,
                 context_slices=False, fill_outside_view=True):
        if normalize not in LOADER_NORMALIZE_MODES:
            raise ValueError(f'normalize must be one of {LOADER_NORMALIZE_MODES}, got {normalize!r}')
        low, high = percentiles
        if not 0 <= low < high <= 100:
            raise ValueError(f'percentiles must satisfy 0 <= low < high <= 100, got {percentiles!r}')
        if channels not in (1, 3):
            raise ValueError(f'channels must be 1 or 3, got {channels!r}')
        if context_slices not in (True, False):
            raise ValueError(f'context_slices must be True or False, got {context_slices!r}')
        if context_slices and channels != 3:
            raise ValueError(f'context_slices=True needs channels=3 (previous, slice, next), got {channels!r}')
        if not isinstance(fill_outside_view, (bool, np.bool_)):
            raise ValueError(f'fill_outside_view must be True or False, got {fill_outside_view!r}')
        self.context_slices = bool(context_slices)
        self.fill_outside_view = bool(fill_outside_view)
        self.normalize = normalize
        self.percentiles = (float(low), float(high))
        self.channels = channels
        self.to_float32 = to_float32

    def _read(self, results):
        """The image of ``results`` and its name for messages."""
        path = results.get('img_path')
        if path is None and isinstance(results.get('img'), np.ndarray):
            return results['img'], '<array>'
        slice_axis, slice_index = results.get('slice_axis'), results.get('slice_index')
        image = read_image(path, slice_axis, slice_index)
        if not self.context_slices or slice_axis is None:
            return image, path
        last = read_image_info(path)[0][SLICE_AXES.index(slice_axis)] - 1
        neighbours = [read_image(path, slice_axis, min(max(index, 0), last))
                      for index in (slice_index - 1, slice_index + 1)]
        return np.stack([neighbours[0], image, neighbours[1]], axis=-1), path

    def _mode(self, dtype):
        """The normalisation of an image of ``dtype``: ``normalize`` with ``'auto'`` resolved."""
        if self.normalize == 'auto':
            return 'none' if dtype == np.uint8 else 'percentile'
        return self.normalize

    def intensity_range(self, image):
        """``(low, high)`` that this loader maps to 0 and 255 for ``image`` (any shape: one slice, or pixels
        sampled from the slices of a volume, which then share it through ``results['intensity_range']``); None
        when its values are kept (``'none'``)."""
        mode = self._mode(np.asarray(image).dtype)
        return None if mode == 'none' else intensity_range(image, mode, self.percentiles)

    def transform(self, results):
        image, path = self._read(results)
        slice_axis, slice_index = results.get('slice_axis'), results.get('slice_index')
        if image.ndim not in (2, 3):
            raise ValueError(f'{path}: expected a 2D image, got shape {image.shape}')
        check_finite(image, path, slice_axis, slice_index)
        if self.fill_outside_view:
            image = fill_outside_view(image)
        normalize = self._mode(image.dtype)
        if normalize == 'none' and not self.to_float32 and image.dtype != np.uint8:
            raise ValueError(f'{path}: normalize="none" with to_float32=False needs 8-bit data, got {image.dtype}')
        image = normalize_intensity(image, normalize, self.percentiles, describe(path, slice_axis, slice_index),
                                    results.get('intensity_range'))
        image = to_channels(image, self.channels)
        if not self.to_float32:
            image = np.round(image).astype(np.uint8)
        results['img'] = np.ascontiguousarray(image)
        results['img_shape'] = image.shape[:2]
        results['ori_shape'] = image.shape[:2]
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(normalize={self.normalize!r}, percentiles={self.percentiles}, '
                f'channels={self.channels}, to_float32={self.to_float32}, context_slices={self.context_slices}, '
                f'fill_outside_view={self.fill_outside_view})')


@TRANSFORMS.register_module()
class LoadTomoImageFromNDArray(LoadTomoImageFromFile):
    """:class:`LoadTomoImageFromFile` for an image already in memory: ``results['img']`` ((H, W) or (H, W, C), any
    dtype) is normalised and given its channels with the same settings, never read from a file.

    It stands in for the file loader when arrays are segmented (:func:`~libnet_mmdet.apis.segment_image`), as
    MMDetection's ``LoadImageFromNDArray`` stands in for ``LoadImageFromFile`` (``DetInferencer._init_pipeline``
    swaps the test pipeline's loader by type).

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``, ``ori_shape``. Args: as
    :class:`LoadTomoImageFromFile`.
    """

    def _read(self, results):
        return results['img'], '<array>'


#: Class id of each phase code (0 pore, 1 NMC, 2 carbon-binder) in a phase model's ``gt_seg_map``: Panoptic FPN's
#: order, the *thing* classes first (NMC particles: 0), then the *stuff* classes (pore: 1, carbon-binder: 2).
PHASE_CLASS_IDS = np.array([1, 0, 2], dtype=np.uint8)


@TRANSFORMS.register_module()
class LoadPhaseMap(BaseTransform):
    """Load the phase map of an image, or of one slice of a 3D phase stack, as the semantic target of a phase model.

    The phase file holds the codes 0 pore, 1 NMC, 2 carbon-binder (``phases.tif`` of the synthetic generator, the
    MATBOX convention); they become the class ids of :data:`PHASE_CLASS_IDS` (Panoptic FPN's order: NMC, pore,
    carbon-binder), which MMDetection's ``RandomCrop``, ``RandomFlip``, ``Resize`` and :class:`RandomRot90` carry
    along with the image and ``PackDetInputs`` packs as ``gt_sem_seg``.

    Required keys: ``seg_map_path``; optional ``slice_axis``, ``slice_index`` (as for the image).
    Added keys: ``gt_seg_map`` ((H, W) uint8 class ids).

    Raises:
        ImageFormatError: a phase map with values other than 0, 1, 2 (the message names file and slice).
    """

    def transform(self, results):
        path, slice_axis, slice_index = results['seg_map_path'], results.get('slice_axis'), results.get('slice_index')
        phases = read_image(path, slice_axis, slice_index)
        if phases.ndim != 2 or not np.issubdtype(phases.dtype, np.integer) or phases.min() < 0 or phases.max() > 2:
            raise ImageFormatError(f'{describe(path, slice_axis, slice_index)}: expected a 2D integer phase map with '
                                   f'values 0 (pore), 1 (NMC), 2 (carbon-binder), got shape {phases.shape}, dtype '
                                   f'{phases.dtype}')
        results['gt_seg_map'] = PHASE_CLASS_IDS[phases]
        return results
