"""Tomography augmentations that MMDetection lacks: 90-degree rotations, 2D input for a 2.5D model, gamma,
Gaussian and Poisson noise, Gaussian blur, ring and streak artefacts, particle rescaling, the edge of a circular field
of view.

Use them with MMDetection's own transforms for the rest (flips: ``RandomFlip``; crops of large slices:
``RandomCrop(crop_type='absolute', allow_negative_crop=False, recompute_bbox=True)``; contrast / brightness:
``Contrast`` / ``Brightness``). ``RandomRot90`` + ``RandomFlip(prob=0.5)`` draws uniformly from the 8 symmetries
of the square pixel grid.

The intensity transforms expect the output of ``LoadTomoImageFromFile``: (H, W, C) float32 (or uint8) in
[0, 255], all channels equal for grayscale data, or the (previous, slice, next) slices of its
``context_slices=True``. They change the image only (boxes and masks are untouched), apply the same field to every
channel of a grayscale image and to each slice of a context image as to a slice of its own (the same gamma, blur
and artefacts, noise drawn for each), clip to [0, 255] and keep the dtype. Randomness comes from ``np.random``
(seeded per worker by MMEngine), like MMDetection's transforms.
"""
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.mask import BitmapMasks, PolygonMasks
from scipy import ndimage

from ...io.errors import check_int, check_number
from ...io.images import fill_by_mirror


def rot90_matrix(k, height, width):
    """3x3 homography of ``np.rot90(image, k)`` for an (height, width) image in pixel-corner coordinates.

    One counter-clockwise turn maps (x, y) to (y, width - x) and gives a (width, height) image.
    """
    matrix = np.eye(3, dtype=np.float32)
    for _ in range(k % 4):
        turn = np.array([[0, 1, 0], [-1, 0, width], [0, 0, 1]], dtype=np.float32)
        matrix = turn @ matrix
        height, width = width, height
    return matrix


def _rot90_masks(masks, k, matrix):
    """``BitmapMasks`` / ``PolygonMasks`` turned like ``np.rot90(image, k)`` (``matrix`` from rot90_matrix)."""
    height, width = (masks.width, masks.height) if k % 2 else (masks.height, masks.width)
    if isinstance(masks, BitmapMasks):
        return BitmapMasks(np.ascontiguousarray(np.rot90(masks.masks, k, axes=(1, 2))), height, width)
    if isinstance(masks, PolygonMasks):
        turned = []
        for polygons in masks.masks:
            turned.append([])
            for polygon in polygons:
                points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
                points = points @ matrix[:2, :2].T + matrix[:2, 2]
                turned[-1].append(points.reshape(-1))
        return PolygonMasks(turned, height, width)
    raise TypeError(f'RandomRot90: unsupported mask type {type(masks).__name__}')


@TRANSFORMS.register_module()
class RandomRot90(BaseTransform):
    """Rotate image, boxes, masks and segmentation map by k x 90 degrees (counter-clockwise, ``np.rot90``).

    With probability ``prob`` k is drawn uniformly from {1, 2, 3}, else the sample is left as it is: the default
    0.75 makes k uniform over {0, 1, 2, 3}. Exact (no interpolation); a non-square image swaps height and width.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``, ``gt_bboxes``, ``gt_masks``, ``gt_seg_map``,
    ``homography_matrix``. Added keys: ``rot90_k``.
    """

    def __init__(self, prob=0.75):
        check_number(prob, 'prob', high=1)
        self.prob = prob

    def transform(self, results):
        k = int(np.random.randint(1, 4)) if np.random.rand() < self.prob else 0
        results['rot90_k'] = k
        if k == 0:
            return results
        height, width = results['img'].shape[:2]
        matrix = rot90_matrix(k, height, width)
        results['img'] = np.ascontiguousarray(np.rot90(results['img'], k))
        results['img_shape'] = results['img'].shape[:2]
        if results.get('gt_bboxes') is not None:
            results['gt_bboxes'].project_(matrix)
        if results.get('gt_masks') is not None:
            results['gt_masks'] = _rot90_masks(results['gt_masks'], k, matrix)
        if results.get('gt_seg_map') is not None:
            results['gt_seg_map'] = np.ascontiguousarray(np.rot90(results['gt_seg_map'], k))
        previous = results.get('homography_matrix')
        results['homography_matrix'] = matrix if previous is None else matrix @ previous
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(prob={self.prob})'


@TRANSFORMS.register_module()
class RandomContextDrop(BaseTransform):
    """With probability ``prob``, give every channel of a context image (``LoadTomoImageFromFile(context_slices=
    True)``: previous, slice, next) the slice's own channel: what a 2.5D model gets from a 2D image, which has no
    neighbours, so that it learns to segment one as well.

    Required keys: ``img`` ((H, W, 3)). Modified keys: ``img``.
    """

    def __init__(self, prob=0.25):
        check_number(prob, 'prob', high=1)
        self.prob = prob

    def transform(self, results):
        image = results['img']
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f'RandomContextDrop needs an (H, W, 3) context image, got shape {image.shape}')
        if np.random.rand() < self.prob:
            results['img'] = np.ascontiguousarray(np.repeat(image[..., 1:2], 3, axis=-1))
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(prob={self.prob})'


class _IntensityTransform(BaseTransform):
    """With probability ``prob``, replaces the image by ``_changed(image)``: ``image`` is channel 0 as (H, W)
    float64 when all channels are equal (grayscale data; the change then goes to every channel), else the
    (H, W, C) float64 image (a context image: its channels are slices)."""

    def __init__(self, prob=0.5):
        check_number(prob, 'prob', high=1)
        self.prob = prob

    def _changed(self, image):
        """The changed (H, W) or (H, W, C) float64 image, the same change for every channel but the noise."""
        raise NotImplementedError

    def transform(self, results):
        if np.random.rand() >= self.prob:
            return results
        image = results['img']
        grayscale = image.ndim == 2 or bool((image == image[..., :1]).all())
        gray = (image[..., 0] if image.ndim == 3 and grayscale else image).astype(np.float64)
        change = self._changed(gray) - gray
        new = image.astype(np.float64) + (change[..., None] if image.ndim == 3 and grayscale else change)
        new = np.clip(new, 0, 255)
        results['img'] = (np.round(new) if image.dtype == np.uint8 else new).astype(image.dtype)
        return results

    def __repr__(self):
        params = ', '.join(f'{key}={value!r}' for key, value in vars(self).items())
        return f'{self.__class__.__name__}({params})'


def _check_range(name, value_range, low=0.0):
    if isinstance(value_range, (str, bytes)) or not hasattr(value_range, '__len__') or len(value_range) != 2:
        raise ValueError(f'{name} must be (low, high), got {value_range!r}')
    low_value, high_value = value_range
    if not low <= low_value <= high_value:
        raise ValueError(f'{name} must be (low, high) with {low} <= low <= high, got {value_range!r}')
    return (float(low_value), float(high_value))


@TRANSFORMS.register_module()
class RandomGamma(_IntensityTransform):
    """Gamma correction ``255 * (I / 255) ** gamma`` with gamma uniform in ``gamma_range`` (< 1 brightens).

    For contrast and brightness use MMDetection's ``Contrast`` / ``Brightness``.
    """

    def __init__(self, prob=0.5, gamma_range=(0.7, 1.5)):
        super().__init__(prob)
        self.gamma_range = _check_range('gamma_range', gamma_range, low=1e-3)

    def _changed(self, image):
        gamma = np.random.uniform(*self.gamma_range)
        return 255.0 * (np.clip(image, 0, 255) / 255.0) ** gamma


@TRANSFORMS.register_module()
class RandomGaussianNoise(_IntensityTransform):
    """Additive Gaussian noise with standard deviation uniform in ``std_range`` (grey levels of 0-255)."""

    def __init__(self, prob=0.5, std_range=(2.0, 10.0)):
        super().__init__(prob)
        self.std_range = _check_range('std_range', std_range)

    def _changed(self, image):
        return image + np.random.normal(0.0, np.random.uniform(*self.std_range), image.shape)


@TRANSFORMS.register_module()
class RandomPoissonNoise(_IntensityTransform):
    """Photon-counting (shot) noise: grey level 255 corresponds to ``photons`` counts, ``photons`` uniform in
    ``photons_range`` (fewer photons, noisier)."""

    def __init__(self, prob=0.5, photons_range=(20.0, 200.0)):
        super().__init__(prob)
        self.photons_range = _check_range('photons_range', photons_range, low=1e-3)

    def _changed(self, image):
        photons = np.random.uniform(*self.photons_range)
        return np.random.poisson(np.clip(image, 0, None) * (photons / 255.0)) * (255.0 / photons)


@TRANSFORMS.register_module()
class RandomGaussianBlur(_IntensityTransform):
    """Gaussian blur (``scipy.ndimage.gaussian_filter``) with sigma uniform in ``sigma_range`` pixels."""

    def __init__(self, prob=0.5, sigma_range=(0.5, 1.5)):
        super().__init__(prob)
        self.sigma_range = _check_range('sigma_range', sigma_range)

    def _changed(self, image):
        sigma = np.random.uniform(*self.sigma_range)
        return ndimage.gaussian_filter(image, (sigma, sigma, 0)[:image.ndim], mode='reflect')


@TRANSFORMS.register_module()
class RandomRingArtifact(_IntensityTransform):
    """Ring artefacts (miscalibrated detector pixels): bright or dark thin circles around the rotation axis.

    The axis lies within ``centre_jitter`` (fraction of the image size) of the image centre; ``num_rings``
    (low, high) rings at random radii, each with a random sign, amplitude in ``amplitude_range`` grey levels and
    Gaussian profile of width (sigma, pixels) in ``width_range``.
    """

    def __init__(self, prob=0.3, num_rings=(1, 6), amplitude_range=(5.0, 25.0), width_range=(0.5, 2.0),
                 centre_jitter=0.1):
        super().__init__(prob)
        self.num_rings = tuple(int(n) for n in _check_range('num_rings', num_rings, low=1))
        self.amplitude_range = _check_range('amplitude_range', amplitude_range)
        self.width_range = _check_range('width_range', width_range, low=1e-3)
        check_number(centre_jitter, 'centre_jitter', high=0.5)  # a share of the image size: the centre stays inside
        self.centre_jitter = float(centre_jitter)

    def _changed(self, image):
        height, width = image.shape[:2]
        centre = np.array([height, width]) * (0.5 + np.random.uniform(-1, 1, 2) * self.centre_jitter)
        rows, cols = np.ogrid[:height, :width]
        radius = np.hypot(rows + 0.5 - centre[0], cols + 0.5 - centre[1])
        rings = np.zeros((height, width))
        for _ in range(np.random.randint(self.num_rings[0], self.num_rings[1] + 1)):
            ring_radius = np.random.uniform(0, radius.max())
            amplitude = np.random.choice([-1.0, 1.0]) * np.random.uniform(*self.amplitude_range)
            sigma = np.random.uniform(*self.width_range)
            rings += amplitude * np.exp(-0.5 * ((radius - ring_radius) / sigma) ** 2)
        return image + (rings[..., None] if image.ndim == 3 else rings)


@TRANSFORMS.register_module()
class RandomStreakArtifact(_IntensityTransform):
    """Streak artefacts (beam hardening, photon starvation near dense particles): bright or dark straight lines.

    ``num_streaks`` (low, high) lines through random points at random angles, each with a random sign, amplitude
    in ``amplitude_range`` grey levels and Gaussian cross-section of width (sigma, pixels) in ``width_range``.
    """

    def __init__(self, prob=0.3, num_streaks=(1, 3), amplitude_range=(5.0, 25.0), width_range=(0.5, 3.0)):
        super().__init__(prob)
        self.num_streaks = tuple(int(n) for n in _check_range('num_streaks', num_streaks, low=1))
        self.amplitude_range = _check_range('amplitude_range', amplitude_range)
        self.width_range = _check_range('width_range', width_range, low=1e-3)

    def _changed(self, image):
        height, width = image.shape[:2]
        rows, cols = np.ogrid[:height, :width]
        streaks = np.zeros((height, width))
        for _ in range(np.random.randint(self.num_streaks[0], self.num_streaks[1] + 1)):
            point = np.random.uniform(0, 1, 2) * (height, width)
            angle = np.random.uniform(0, np.pi)
            distance = np.abs((rows + 0.5 - point[0]) * np.cos(angle) - (cols + 0.5 - point[1]) * np.sin(angle))
            amplitude = np.random.choice([-1.0, 1.0]) * np.random.uniform(*self.amplitude_range)
            streaks += amplitude * np.exp(-0.5 * (distance / np.random.uniform(*self.width_range)) ** 2)
        return image + (streaks[..., None] if image.ndim == 3 else streaks)


@TRANSFORMS.register_module()
class RandomParticleScale(BaseTransform):
    """Resize a slice so that its typical particle gets a diameter drawn from ``diameter_range``: one model then
    learns particles of every size in that range, whatever their size in the training volumes.

    The slice's typical diameter is the median equivalent diameter ``sqrt(4 * area / pi)`` (px) of its
    ground-truth masks, crowd (ignored) regions left out (the same measure ``scale='auto'`` uses at inference); the
    target is drawn log-uniformly from ``diameter_range`` and the slice is resized by ``target / typical`` (clipped
    to ``max_factor`` either way) with MMDetection's ``Resize``; the masks are resized as the image is (bilinear,
    then >= 0.5: ``Resize`` takes their nearest pixel corner, which moved them 0.25-0.5 px off the particles they
    label) and the boxes recomputed from them. Before enlarging, a random window of about ``crop_size / factor`` is
    cut with MMDetection's ``RandomCrop`` (boxes recomputed from the masks), so that an
    enlargement costs no more than the ``crop_size`` window the pipeline cuts next. A slice without masks (or with
    crowd regions only) is left as it is. Put it after ``LoadAnnotations`` and before ``RandomCrop``.

    Args:
        diameter_range (tuple[float, float]): (low, high) typical particle diameter after resizing, px; the config
            records it as ``particle_diameter_px`` for the inference API.
        crop_size (tuple[int, int] | None): the ``crop_size`` of the ``RandomCrop`` that follows (mmdet's (W, H);
            square in our configs); None never pre-crops.
        max_factor (float): the resize factor stays within [1 / max_factor, max_factor].

    Required keys: ``img``, ``gt_masks`` (``BitmapMasks``), ``gt_bboxes``. Modified keys: those of ``Resize`` and
    ``RandomCrop``. Added keys: ``particle_scale_factor`` (float).
    """

    def __init__(self, diameter_range=(12.0, 48.0), crop_size=None, max_factor=8.0):
        self.diameter_range = _check_range('diameter_range', diameter_range, low=1.0)
        check_number(max_factor, 'max_factor', low=1)
        if crop_size is not None and (not hasattr(crop_size, '__len__') or len(crop_size) != 2
                                      or not all(int(n) == n and n >= 1 for n in crop_size)):
            raise ValueError(f'crop_size must be None or two sizes >= 1 px, got {crop_size!r}')
        self.crop_size = None if crop_size is None else tuple(int(n) for n in crop_size)
        self.max_factor = float(max_factor)
        self._crop = TRANSFORMS.build(dict(type='RandomCrop', crop_size=(1, 1), crop_type='absolute',
                                           allow_negative_crop=True, recompute_bbox=True))
        self._resize = TRANSFORMS.build(dict(type='Resize', scale_factor=1.0, keep_ratio=True))

    def transform(self, results):
        masks, flags = results.get('gt_masks'), results.get('gt_ignore_flags')
        ignored = np.zeros(0 if masks is None else len(masks), bool) if flags is None else np.asarray(flags, bool)
        if masks is None or ignored.all():  # no particle (crowd / ignored regions are none)
            results['particle_scale_factor'] = 1.0
            return results
        typical = float(np.median(np.sqrt(4 * masks.areas[~ignored] / np.pi)))
        low, high = np.log(self.diameter_range)
        target = float(np.exp(np.random.uniform(low, high)))
        factor = float(np.clip(target / max(typical, 1e-6), 1 / self.max_factor, self.max_factor))
        if factor > 1 and self.crop_size is not None:
            self._crop.crop_size = tuple(int(np.ceil(n / factor)) + 1 for n in self.crop_size)
            results = self._crop(results)
        self._resize.scale_factor = (factor, factor)
        masks = results['gt_masks']
        results = self._resize(results)
        height, width = results['img'].shape[:2]
        # sampled at the pixel centres as the image is, >= 0.5 foreground; in float32: OpenCV's fixed-point bilinear
        # of uint8 0/1 masks rounds weights up to ~0.6 down to 0, moving every scaled mask's edge inwards
        weights = BitmapMasks(masks.masks.astype(np.float32), masks.height, masks.width)
        weights = weights.resize((height, width), interpolation='bilinear').masks
        results['gt_masks'] = BitmapMasks((weights >= 0.5).astype(np.uint8), height, width)
        results['gt_bboxes'] = results['gt_masks'].get_bboxes(type(results['gt_bboxes']))
        results['particle_scale_factor'] = factor
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(diameter_range={self.diameter_range}, crop_size={self.crop_size}, '
                f'max_factor={self.max_factor})')


@TRANSFORMS.register_module()
class RandomFieldOfView(BaseTransform):
    """Cut the slice with the edge of a circular field of view, and show the model what the inference API shows it
    there: particles cut by the edge, the outside filled with the mirror image of the inside.

    Reconstructions of a region of interest hold a disc of data in a square of fill; the inference API gives the
    fill the values of its mirror images inside (:func:`~libnet_mmdet.io.images.fill_by_mirror`) and never labels
    it, so a particle cut by the edge ends there in its own reflection. With probability ``prob`` this transform does
    the same to a training slice: a disc whose radius is uniform in ``radius_range`` x the slice's larger side and
    whose edge passes through a random point of the slice's middle half, at a random angle; masks are cut to the
    disc, instances left with fewer than ``min_area`` pixels dropped, boxes recomputed from the masks.

    Args:
        prob (float): chance that a slice is cut.
        radius_range (tuple[float, float]): (low, high) disc radius as a fraction of the slice's larger side.
        min_area (int): least pixels of an instance inside the disc to keep it.

    Required keys: ``img`` ((H, W) or (H, W, C)), ``gt_masks`` (``BitmapMasks``), ``gt_bboxes``. Modified keys:
    ``img``, ``gt_masks``, ``gt_bboxes``, ``gt_bboxes_labels``, ``gt_ignore_flags``. Added keys:
    ``field_of_view`` ((H, W) bool, True inside; None when the slice was not cut).
    """

    def __init__(self, prob=0.25, radius_range=(0.3, 4.0), min_area=16):
        check_number(prob, 'prob', high=1)
        self.prob = prob
        self.radius_range = _check_range('radius_range', radius_range, low=1e-3)
        self.min_area = check_int(min_area, 'min_area', 1)

    def transform(self, results):
        results['field_of_view'] = None
        if np.random.rand() >= self.prob:
            return results
        height, width = results['img'].shape[:2]
        radius = np.random.uniform(*self.radius_range) * max(height, width)
        edge_point = np.random.uniform(0.25, 0.75, 2) * (height, width)
        angle = np.random.uniform(0, 2 * np.pi)
        centre = edge_point - radius * np.array([np.sin(angle), np.cos(angle)])
        rows, cols = np.ogrid[:height, :width]
        inside = np.hypot(rows + 0.5 - centre[0], cols + 0.5 - centre[1]) <= radius
        results['img'] = fill_by_mirror(results['img'], ~inside)
        results['field_of_view'] = inside
        masks = results.get('gt_masks')
        if masks is None:
            return results
        cut = BitmapMasks(masks.masks & inside.astype(masks.masks.dtype), height, width)
        keep = cut.areas >= self.min_area
        results['gt_masks'] = cut[keep]
        results['gt_bboxes'] = results['gt_masks'].get_bboxes(type(results['gt_bboxes']))
        for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
            if results.get(key) is not None:
                results[key] = results[key][keep]
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(prob={self.prob}, radius_range={self.radius_range}, '
                f'min_area={self.min_area})')
