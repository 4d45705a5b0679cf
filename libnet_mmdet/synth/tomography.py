"""Imaging model: per-slice parallel-beam X-ray tomography of a phase volume.

Each z-slice is projected over ``n_angles`` angles in [0, pi) onto a detector row (rotation axis along z), the
projections are blurred (source and detector), given a propagation phase-contrast term, turned into photon
counts with per-detector-pixel gain errors (rings) and Poisson noise, flat-field corrected with the nominal
flat and reconstructed by filtered back-projection (Ram-Lak filter). The projector is one sparse matrix
(linear-interpolation, pixel-driven) applied to all slices at once; its transpose is the back-projector. Smooth
intensity non-uniformity (beam-hardening cupping, a low-frequency gain field) multiplies the reconstruction.
"""
import numpy as np
from scipy import ndimage, sparse

from ..analysis import CARBON_BINDER, NMC, PORE
from .params import OUTPUT_DTYPES

#: uint8 and uint16 output map this range of relative attenuation (NMC = 1, pore = 0) linearly onto 0..255 and
#: 0..65535.
INTEGER_ATTENUATION_RANGE = (-0.5, 2.0)
_GAIN_FIELD_WAVES = 4  # cosine waves summed into the smooth gain field of `nonuniformity`
# Angles are processed in chunks whose projector holds at most this many non-zeros (~256 MiB), which bounds the
# memory for any slice size; a 256 x 256 slice at the Nyquist count of 402 angles takes two chunks.
_MAX_CHUNK_NONZEROS = 2 ** 25


def n_projection_angles(height, width, angular_sampling=1.0):
    """Number of projections: ``angular_sampling`` x the Nyquist count pi/2 x the slice width, at least 8."""
    return max(8, int(round(angular_sampling * np.pi / 2 * max(height, width))))


def projection_angles(n_angles):
    """``n_angles`` equally spaced projection angles in [0, pi) (radians)."""
    return np.linspace(0, np.pi, n_angles, endpoint=False)


def _n_detector_pixels(height, width):
    return int(np.ceil(np.hypot(height, width))) + 3  # the whole slice stays in the field of view


def _angle_chunks(height, width, n_angles):
    """``slice`` objects splitting range(n_angles) so that each chunk's projector stays small."""
    per_chunk = max(1, _MAX_CHUNK_NONZEROS // (2 * height * width))
    return [slice(start, min(start + per_chunk, n_angles)) for start in range(0, n_angles, per_chunk)]


def projection_matrix(height, width, angles):
    """Sparse parallel-beam projector of an (H, W) slice for the given angles.

    Row ``a * D + t`` is detector pixel ``t`` at angle ``angles[a]`` (D = ceil(hypot(H, W)) + 3 pixels, centred
    on the slice centre); column ``y * W + x`` is pixel (y, x). Each pixel spreads its value over the two
    nearest detector pixels with linear-interpolation weights, so the transpose is the usual interpolating
    back-projector. Units: line integrals in pixels.

    Returns:
        scipy.sparse.csc_matrix: float32, shape (len(angles) * D, H * W).
    """
    n_angles, n_det = len(angles), _n_detector_pixels(height, width)
    y = (np.arange(height, dtype=np.float32) - (height - 1) / 2)[:, None, None]
    x = (np.arange(width, dtype=np.float32) - (width - 1) / 2)[None, :, None]
    position = (x * np.cos(angles).astype(np.float32) + y * np.sin(angles).astype(np.float32)
                + np.float32((n_det - 1) / 2)).reshape(height * width, n_angles)
    first = np.floor(position)
    weight = (position - first).astype(np.float32)
    rows = first.astype(np.int32) + (np.arange(n_angles, dtype=np.int32) * n_det)[None, :]
    indices = np.stack([rows, rows + 1], axis=-1).ravel()
    data = np.stack([1 - weight, weight], axis=-1).ravel()
    indptr = np.arange(0, indices.size + 1, 2 * n_angles, dtype=np.int64)
    return sparse.csc_matrix((data, indices, indptr), shape=(n_angles * n_det, height * width))


def _forward(matrix, volume_zyx):
    """(Z, Y, X) -> (Z, A, D) with one projector for all slices."""
    n_z = volume_zyx.shape[0]
    columns = np.ascontiguousarray(volume_zyx.reshape(n_z, -1).T, dtype=np.float32)
    return np.ascontiguousarray((matrix @ columns).T.reshape(n_z, -1, _n_detector_pixels(*volume_zyx.shape[1:])))


def _backward(matrix, sinograms, height, width):
    """(Z, A, D) -> (Z, Y, X), the transpose of :func:`_forward` (un-normalised back-projection)."""
    n_z = sinograms.shape[0]
    columns = np.ascontiguousarray(sinograms.reshape(n_z, -1).T, dtype=np.float32)
    return (matrix.T @ columns).T.reshape(n_z, height, width)


def project(volume_zyx, n_angles):
    """Parallel-beam projections of every z-slice.

    Args:
        volume_zyx (np.ndarray): (Z, Y, X) attenuation per voxel.
        n_angles (int): number of angles, :func:`projection_angles`.

    Returns:
        np.ndarray: float32 sinograms (Z, n_angles, D), line integrals in (attenuation x voxels).
    """
    height, width = volume_zyx.shape[1:]
    angles = projection_angles(n_angles)
    return np.concatenate([_forward(projection_matrix(height, width, angles[chunk]), volume_zyx)
                           for chunk in _angle_chunks(height, width, n_angles)], axis=1)


def _ramp_filter(n_padded):
    """Ram-Lak filter for ``np.fft.rfft`` of length ``n_padded``, built from its spatial form (no DC offset)."""
    odd = np.concatenate([np.arange(1, n_padded // 2 + 1, 2), np.arange(n_padded // 2 - 1, 0, -2)])
    kernel = np.zeros(n_padded)
    kernel[0] = 0.25
    kernel[1::2] = -1 / (np.pi * odd) ** 2
    return 2 * np.real(np.fft.rfft(kernel))


def _ramp_filtered(sinograms):
    """Sinograms (..., D) convolved with the Ram-Lak filter along the detector axis (zero-padded), float32."""
    n_det = sinograms.shape[-1]
    n_padded = max(64, int(2 ** np.ceil(np.log2(2 * n_det))))
    spectrum = np.fft.rfft(sinograms, n=n_padded, axis=-1) * _ramp_filter(n_padded)
    return np.fft.irfft(spectrum, n=n_padded, axis=-1)[..., :n_det].astype(np.float32)


def filtered_back_projection(sinograms, height, width):
    """Reconstruct (Z, Y, X) slices from (Z, A, D) parallel-beam sinograms made by :func:`project`.

    Returns:
        np.ndarray: float32 (Z, Y, X), attenuation per voxel (the inverse of :func:`project`).
    """
    n_angles = sinograms.shape[1]
    angles = projection_angles(n_angles)
    slices = sum(_backward(projection_matrix(height, width, angles[chunk]), _ramp_filtered(sinograms[:, chunk]),
                           height, width) for chunk in _angle_chunks(height, width, n_angles))
    return (slices * np.float32(np.pi / (2 * n_angles))).astype(np.float32)


def attenuation_map(labels_zyx, phases_zyx, params, rng):
    """Relative attenuation (float32, NMC = 1 on average) of every voxel: phase value x particle spread x texture.

    The texture (primary grains of a secondary particle) is Gaussian noise smoothed to ``grain_size_vox``
    and scaled to a standard deviation of ``grain_contrast``.
    """
    n_labels = int(labels_zyx.max()) + 1
    particle_scale = np.clip(1 + params.particle_contrast_cv * rng.standard_normal(n_labels), 0.5, 1.5)
    by_phase = np.zeros(3, dtype=np.float32)
    by_phase[[PORE, NMC, CARBON_BINDER]] = params.attenuation_pore, 1.0, params.attenuation_cb
    attenuation = by_phase[phases_zyx]
    nmc = phases_zyx == NMC
    attenuation[nmc] *= particle_scale.astype(np.float32)[labels_zyx[nmc]]
    if params.grain_contrast > 0:
        texture = ndimage.gaussian_filter(rng.standard_normal(phases_zyx.shape, dtype=np.float32),
                                          params.grain_size_vox / 2)
        texture *= np.float32(params.grain_contrast) / max(float(texture.std()), 1e-12)
        attenuation[nmc] *= 1 + texture[nmc]
    return attenuation


def simulate_tomography(labels_zyx, phases_zyx, params, rng):
    """Grayscale nano-CT reconstruction of a labelled phase volume.

    Every step after the projection acts along the detector row and z only, so the angles are simulated in
    chunks (bounded memory): project, blur, add the phase-contrast term, draw photon counts with the detector
    gains, take the log, ramp-filter and back-project each chunk, and sum.

    Args:
        labels_zyx (np.ndarray): (Z, Y, X) instance ids (for the per-particle attenuation spread).
        phases_zyx (np.ndarray): (Z, Y, X) uint8 phases, 0 pore, 1 NMC, 2 carbon-binder.
        params (SynthParams): imaging fields are used.
        rng (np.random.Generator): random source (particle contrast, texture, detector gains, photon noise).

    Returns:
        np.ndarray: float32 (Z, Y, X) reconstruction in units of the mean NMC attenuation (pore ~ 0, NMC ~ 1).
    """
    n_z, height, width = phases_zyx.shape
    n_angles = n_projection_angles(height, width, params.angular_sampling)
    angles = projection_angles(n_angles)
    relative = attenuation_map(labels_zyx, phases_zyx, params, rng)
    # absolute scale: the mean line integral over the rays crossing a slice gives sample_transmission
    mean_chord = float(np.mean(np.abs(width * np.cos(angles)) + np.abs(height * np.sin(angles))))
    mean_path = float(relative.sum(dtype=np.float64)) / n_z / mean_chord
    mu_per_relative = np.float32(-np.log(params.sample_transmission) / max(mean_path, 1e-6))
    n_det = _n_detector_pixels(height, width)
    gains = 1 + params.ring_strength * rng.standard_normal((n_z, 1, n_det))
    defects = rng.random((n_z, 1, n_det)) < params.ring_defect_fraction
    gains[defects] += 10 * params.ring_strength * rng.choice([-1.0, 1.0], size=int(defects.sum()))
    flat_counts = params.dose * np.clip(gains, 0.1, None)  # true flat field; the correction assumes `dose`
    reconstruction = np.zeros((n_z, height, width), dtype=np.float32)
    for chunk in _angle_chunks(height, width, n_angles):
        matrix = projection_matrix(height, width, angles[chunk])
        line_integrals = _forward(matrix, relative) * mu_per_relative
        if params.blur_sigma_vox > 0:
            line_integrals = ndimage.gaussian_filter(line_integrals,
                                                     (params.blur_sigma_vox, 0, params.blur_sigma_vox))
        if params.phase_contrast > 0:  # TIE: intensity ~ 1 + k laplacian(projected density), detector plane
            sigma = (params.phase_sigma_vox, 0, params.phase_sigma_vox)
            laplacian = (ndimage.gaussian_filter(line_integrals, sigma, order=(2, 0, 0))
                         + ndimage.gaussian_filter(line_integrals, sigma, order=(0, 0, 2)))
            line_integrals -= np.float32(params.phase_contrast * params.phase_sigma_vox ** 2) * laplacian
        counts = rng.poisson(flat_counts * np.exp(-line_integrals, dtype=np.float64)).astype(np.float32)
        measured = -np.log(np.maximum(counts, np.float32(0.5)) / np.float32(params.dose))
        reconstruction += _backward(matrix, _ramp_filtered(measured), height, width)
    return _apply_nonuniformity(reconstruction * np.float32(np.pi / (2 * n_angles)) / mu_per_relative, params, rng)


def _apply_nonuniformity(reconstruction, params, rng):
    """Multiply a (Z, Y, X) float32 reconstruction in place by the cupping profile and the smooth gain field.

    Cupping (beam hardening lowers the attenuation seen along the long central chords) is ``1 - cupping x
    (1 - (r / r_max)^2)``, r the distance from the rotation axis and r_max that of the slice corners. The gain
    field is ``1 + nonuniformity x w / max|w|``, w a sum of :data:`_GAIN_FIELD_WAVES` 3D cosine waves of random
    direction and phase with 0.25 to 1 periods across the volume. Nothing is drawn from ``rng`` when
    ``nonuniformity`` is 0, so the other random draws do not depend on these knobs.
    """
    n_z, height, width = reconstruction.shape
    if params.cupping > 0:
        yy = (np.arange(height, dtype=np.float32) - (height - 1) / 2)[:, None]
        xx = (np.arange(width, dtype=np.float32) - (width - 1) / 2)[None, :]
        r2 = (yy ** 2 + xx ** 2) / np.float32(max(yy[0, 0] ** 2 + xx[0, 0] ** 2, 1e-6))
        reconstruction *= 1 - np.float32(params.cupping) * (1 - r2)
    if params.nonuniformity > 0:
        axes = [np.arange(n, dtype=np.float32) / np.float32(max(n_z, height, width)) for n in (n_z, height, width)]
        field = np.zeros(reconstruction.shape, dtype=np.float32)
        directions = rng.standard_normal((_GAIN_FIELD_WAVES, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        cycles = rng.uniform(0.25, 1.0, _GAIN_FIELD_WAVES)
        phases = rng.uniform(0, 2 * np.pi, _GAIN_FIELD_WAVES)
        for direction, n_cycles, phase in zip(directions, cycles, phases):
            k = np.float32(2 * np.pi * n_cycles) * direction.astype(np.float32)
            field += np.cos(k[0] * axes[0][:, None, None] + k[1] * axes[1][None, :, None]
                            + k[2] * axes[2][None, None, :] + np.float32(phase))
        reconstruction *= 1 + np.float32(params.nonuniformity) * field / max(float(np.abs(field).max()), 1e-6)
    return reconstruction


def to_output_dtype(image_relative, dtype):
    """Cast a float32 relative-attenuation image (any shape) to the output dtype (one of :data:`OUTPUT_DTYPES`).

    ``'float32'`` keeps the values (NMC ~ 1, pore ~ 0); ``'uint8'`` and ``'uint16'`` map
    :data:`INTEGER_ATTENUATION_RANGE` linearly onto 0..M (M = 255 or 65535; clipped), so value v means attenuation
    ``-0.5 + 2.5 * v / M`` x NMC.
    """
    if dtype not in OUTPUT_DTYPES:
        raise ValueError(f'dtype={dtype!r} is invalid: expected one of {OUTPUT_DTYPES}')
    if dtype == 'float32':
        return image_relative.astype(np.float32)
    low, high = INTEGER_ATTENUATION_RANGE
    top = np.iinfo(dtype).max
    scaled = (image_relative - np.float32(low)) * np.float32(top / (high - low))
    return np.rint(np.clip(scaled, 0, top)).astype(dtype)
