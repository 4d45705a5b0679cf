"""Loading grayscale tomography slices (TIFF 8/16/32-bit, PNG, JPG) with robust intensity normalisation."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from ..image_io import NORMALIZE_MODES, check_finite, normalize_intensity, read_image, to_channels


@TRANSFORMS.register_module()
class LoadTomoImageFromFile(BaseTransform):
    """Load a 2D image, or one slice of a 3D TIFF stack, normalise its intensities and give it 1 or 3 channels.

    Use it in place of ``LoadImageFromFile``. TIFF files are read with tifffile (8/16-bit integer or float32 data
    as stored; a 2D page, or the slice ``results['slice_axis']`` = 'z' | 'y' | 'x', ``results['slice_index']``
    of a (Z, Y, X) stack, read without loading the whole stack when it is uncompressed); PNG/JPG/BMP with mmcv
    (8 or 16 bit). The image is then normalised per image (``normalize``) to [0, 255], the range the stock
    ``DetDataPreprocessor`` mean/std (ImageNet, 0-255) expect, and a grayscale image is repeated into
    ``channels`` channels.

    When ``results`` already holds an ``img`` array and no ``img_path`` (in-memory inference), that array is
    normalised instead of reading a file.

    Required keys: ``img_path`` (or ``img``); optional ``slice_axis``, ``slice_index``.
    Added / modified keys: ``img`` ((H, W, channels), float32 in [0, 255], or uint8 when ``to_float32=False``),
    ``img_shape``, ``ori_shape``.

    Args:
        normalize (str): ``'percentile'`` (default: the ``percentiles`` map to 0 and 255, beyond is clipped),
            ``'minmax'``, or ``'none'`` (values kept; only for 8-bit data).
        percentiles (tuple[float, float]): low and high percentile for ``'percentile'``.
        channels (int): 3 (default, for ImageNet-style backbones) or 1.
        to_float32 (bool): float32 output (default; keeps 16-bit precision). False rounds to uint8.

    Raises:
        FileNotFoundError: missing file.
        ImageFormatError (ValueError): unreadable/corrupt file, 4D input, slice out of range, NaN/Inf pixels; the
            message names the file and slice.
    """

    def __init__(self, normalize='percentile', percentiles=(0.5, 99.5), channels=3, to_float32=True):
        if normalize not in NORMALIZE_MODES:
            raise ValueError(f'normalize must be one of {NORMALIZE_MODES}, got {normalize!r}')
        low, high = percentiles
        if not 0 <= low < high <= 100:
            raise ValueError(f'percentiles must satisfy 0 <= low < high <= 100, got {percentiles!r}')
        if channels not in (1, 3):
            raise ValueError(f'channels must be 1 or 3, got {channels!r}')
        self.normalize = normalize
        self.percentiles = (float(low), float(high))
        self.channels = channels
        self.to_float32 = to_float32

    def transform(self, results):
        path = results.get('img_path')
        slice_axis, slice_index = results.get('slice_axis'), results.get('slice_index')
        if path is None and isinstance(results.get('img'), np.ndarray):
            image, path = results['img'], '<array>'
        else:
            image = read_image(path, slice_axis, slice_index)
        if image.ndim not in (2, 3):
            raise ValueError(f'{path}: expected a 2D image, got shape {image.shape}')
        check_finite(image, path, slice_axis, slice_index)
        if self.normalize == 'none' and not self.to_float32 and image.dtype != np.uint8:
            raise ValueError(f'{path}: normalize="none" with to_float32=False needs 8-bit data, got {image.dtype}')
        image = to_channels(normalize_intensity(image, self.normalize, self.percentiles), self.channels)
        if not self.to_float32:
            image = np.round(image).astype(np.uint8)
        results['img'] = np.ascontiguousarray(image)
        results['img_shape'] = image.shape[:2]
        results['ori_shape'] = image.shape[:2]
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(normalize={self.normalize!r}, percentiles={self.percentiles}, '
                f'channels={self.channels}, to_float32={self.to_float32})')
