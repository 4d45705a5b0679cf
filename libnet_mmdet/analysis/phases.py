"""Phase volumes: the pore / NMC / carbon-binder codes and an approximate three-phase segmentation of grayscale."""
import numpy as np
from skimage.filters import threshold_multiotsu

from ..io.images import check_finite
from ..io.volume import VolumeReader
from ..io.labels import CARBON_BINDER, NMC, PHASE_NAMES, PORE  # noqa: F401 (the phase codes, re-exported)

# Voxels used to fit the thresholds: a regular subsample keeps multi-Otsu fast on 512^3 volumes.
_MAX_FIT_VOXELS = 4_000_000
#: Intensity bins multi-Otsu fits its thresholds on (skimage's default).
MULTI_OTSU_BINS = 256


def check_phases(phases_zyx, shape, name='phases_zyx', reference_name='labels_zyx'):
    """Check a phase volume (integer, values in {0, 1, 2}, same shape as the labels) and return it as an array.

    Raises:
        TypeError: non-integer dtype.
        ValueError: shape mismatch or values other than 0, 1, 2.
    """
    phases_zyx = np.asarray(phases_zyx)
    if phases_zyx.shape != tuple(shape):
        raise ValueError(f'{name}: shape {phases_zyx.shape} does not match {reference_name} shape {tuple(shape)}')
    if phases_zyx.dtype == bool or not np.issubdtype(phases_zyx.dtype, np.integer):
        raise TypeError(f'{name}: a phase volume must have an integer dtype '
                        f'(0 pore, 1 NMC, 2 carbon-binder), got {phases_zyx.dtype}')
    low, high = phases_zyx.min(), phases_zyx.max()
    if low < PORE or high > CARBON_BINDER:
        raise ValueError(f'{name}: phase values must be 0 (pore), 1 (NMC) or 2 (carbon-binder); '
                         f'found values from {low} to {high}')
    return phases_zyx


def phase_fit_sample(image_zyx, name='image_zyx'):
    """The regular subsample of a grayscale volume that :func:`segment_phases` fits its thresholds on (one step on
    every axis, at most 4 M voxels, float64), checked: a caller with a file name checks its image before the work
    with ``name``. ``image_zyx``: a (Z, Y, X) array, or an open :class:`~libnet_mmdet.io.volume.VolumeReader` (only
    the sample's slices are read; NaN/Inf elsewhere are found when the volume is read).

    Raises:
        ValueError: not 3-D, NaN/Inf voxels, or fewer than three of the :data:`MULTI_OTSU_BINS` intensity bins
            holding voxels (two levels and a hot pixel: multi-Otsu cannot fit three classes; messages start with
            ``name``).
    """
    reader = image_zyx if isinstance(image_zyx, VolumeReader) else None
    image_zyx = image_zyx if reader else np.asarray(image_zyx)
    if len(image_zyx.shape) != 3:
        raise ValueError(f'{name}: expected a 3-D (Z, Y, X) grayscale volume, got shape {image_zyx.shape}')
    if reader is None:
        check_finite(image_zyx, name)  # NaN would break the fit or be coded as pore
    step = max(1, int(np.ceil((np.prod(image_zyx.shape) / _MAX_FIT_VOXELS) ** (1 / 3))))  # one step on every axis
    while np.prod([-(-n // step) for n in image_zyx.shape]) > _MAX_FIT_VOXELS:  # a thin volume: a larger one
        step += 1
    if reader:
        sample = np.stack([reader.read('z', z, z + 1)[0][::step, ::step]  # read() checks each slice for NaN
                           for z in range(0, reader.shape[0], step)]).astype(np.float64)
    else:
        sample = image_zyx[::step, ::step, ::step].astype(np.float64)
    if np.count_nonzero(np.histogram(sample, MULTI_OTSU_BINS)[0]) < 3:  # as threshold_multiotsu bins them
        raise ValueError(f'{name}: fewer than three of the {MULTI_OTSU_BINS} intensity bins between its minimum and '
                         'maximum hold voxels, cannot fit three phases (multi-Otsu)')
    return sample


def segment_phases(image_zyx, intensity_order=('pore', 'carbon_binder', 'nmc')):
    """Approximate three-phase segmentation of a grayscale nano-CT volume by multi-Otsu thresholding.

    Two thresholds from :func:`skimage.filters.threshold_multiotsu` (3 classes, 256 bins, fitted on a regular
    subsample of at most 4 M voxels, :func:`phase_fit_sample`) split the intensities into a dark, a middle and a
    bright class, named by ``intensity_order``. In absorption contrast NMC (transition metals) is brightest, the
    carbon-binder domain intermediate and pore darkest, hence the default. The result is *approximate*: no
    denoising, no partial-volume handling, and the carbon-binder/pore contrast of nano-CT is often weak; denoise the
    image first, or pass a real phase volume to :func:`particle_table` when one exists.

    Args:
        image_zyx (np.ndarray): (Z, Y, X) grayscale volume, any real dtype.
        intensity_order (tuple[str]): phase names from darkest to brightest, a permutation of
            ``('pore', 'carbon_binder', 'nmc')``.

    Returns:
        tuple: ``(phases_zyx, thresholds)``: uint8 (Z, Y, X) phase volume with the codes :data:`PORE`,
        :data:`NMC`, :data:`CARBON_BINDER`, and the two thresholds (float64, image intensity units).

    Raises:
        ValueError: not 3-D, NaN/Inf voxels, too few intensity levels (:func:`phase_fit_sample`), or a bad
            ``intensity_order``.
    """
    codes = {name: code for code, name in PHASE_NAMES.items()}
    if sorted(intensity_order) != sorted(codes):
        raise ValueError(f'intensity_order: expected a permutation of {tuple(codes)}, got {intensity_order!r}')
    image_zyx = np.asarray(image_zyx)
    thresholds = threshold_multiotsu(phase_fit_sample(image_zyx).ravel(), classes=3, nbins=MULTI_OTSU_BINS)
    lookup = np.array([codes[name] for name in intensity_order], dtype=np.uint8)
    intensity_class = (image_zyx >= thresholds[0]).astype(np.uint8) + (image_zyx >= thresholds[1])
    phases_zyx = lookup[intensity_class]
    return phases_zyx, thresholds.astype(np.float64)
