"""Imaging model: exact FBP on a phantom, phase contrast, rings, output dtypes."""
import dataclasses

import numpy as np
import pytest

from libnet_mmdet.synth import generate_volume, preset_params
from libnet_mmdet.synth.tomography import filtered_back_projection, project
from libnet_mmdet.synth.tomography import n_projection_angles, to_output_dtype

PORE, NMC, CARBON_BINDER = 0, 1, 2


def test_projection_and_fbp_reconstruct_a_phantom():
    height, width = 48, 64
    yy, xx = np.mgrid[:height, :width]
    disc = ((yy - 22) ** 2 + (xx - 30) ** 2 < 14 ** 2).astype(np.float32)
    phantom = np.stack([disc, 0.5 * disc])
    sinograms = project(phantom, n_projection_angles(height, width))
    assert sinograms[0].sum(axis=1) == pytest.approx(np.full(sinograms.shape[1], disc.sum()), rel=1e-4)
    recon = filtered_back_projection(sinograms, height, width)
    core = (yy - 22) ** 2 + (xx - 30) ** 2 < 10 ** 2
    far = (yy - 22) ** 2 + (xx - 30) ** 2 > 18 ** 2
    assert recon[0][core].mean() == pytest.approx(1.0, abs=0.02)
    assert recon[1][core].mean() == pytest.approx(0.5, abs=0.01)
    assert abs(recon[0][far].mean()) < 0.02


def test_particles_are_brighter_than_binder_and_pore(damaged_volume):
    image, phases = damaged_volume.image_zyx, damaged_volume.phases_zyx
    assert image.dtype == np.float32
    means = [image[phases == phase].mean() for phase in (PORE, NMC, CARBON_BINDER)]
    assert means[NMC] == pytest.approx(1.0, abs=0.15)
    assert means[NMC] > means[CARBON_BINDER] > means[PORE]


def test_uint16_is_the_scaled_float_image(typical_volume):
    params = dataclasses.replace(typical_volume.params, output_dtype='float32')
    float_volume = generate_volume(typical_volume.labels_zyx.shape, params, seed=typical_volume.seed)
    assert typical_volume.image_zyx.dtype == np.uint16
    assert np.array_equal(to_output_dtype(float_volume.image_zyx, 'uint16'), typical_volume.image_zyx)
    means = [typical_volume.image_zyx[typical_volume.phases_zyx == phase].mean() for phase in (PORE, NMC)]
    assert means == pytest.approx([65535 * 0.5 / 2.5, 65535 * 1.5 / 2.5], rel=0.15)  # pore ~ 0, NMC ~ 1 on -0.5..2.0
    attenuation = np.float32([-1, -0.5, 0, 1, 2, 3])  # the documented scale: -0.5..2.0 onto 0..M, clipped
    assert to_output_dtype(attenuation, 'uint16').tolist() == [0, 0, 13107, 39321, 65535, 65535]
    assert to_output_dtype(attenuation, 'uint8').tolist() == [0, 0, 51, 153, 255, 255]
    with pytest.raises(ValueError, match='dtype'):
        to_output_dtype(float_volume.image_zyx, 'int8')


def _ring_share(image_difference):
    """Share of the variance of an (H, W) image explained by its means over half-circles around the centre.

    Over a 180-degree scan, detector pixel centre + r makes the half ring y > centre and pixel centre - r the
    half ring y < centre, so ring artefacts are constant along half circles; noise is not.
    """
    height, width = image_difference.shape
    yy, xx = np.mgrid[:height, :width]
    radius = np.hypot(yy - (height - 1) / 2, xx - (width - 1) / 2)
    bins = (np.floor(radius / 0.5).astype(int) * 2 + (yy > (height - 1) / 2)).ravel()
    profile = np.bincount(bins, image_difference.ravel()) / np.maximum(np.bincount(bins), 1)
    return profile[bins].var() / image_difference.var()


def test_ring_strength_adds_rings_and_dose_adds_noise():
    base = preset_params('clean', mean_diameter_vox=12.0, dose=1e11, output_dtype='float32')
    reference = generate_volume((4, 64, 64), base, seed=1)
    with_rings = generate_volume((4, 64, 64), dataclasses.replace(base, ring_strength=0.02), seed=1)
    noisy = generate_volume((4, 64, 64), dataclasses.replace(base, dose=1e3), seed=1)
    assert np.array_equal(reference.labels_zyx, with_rings.labels_zyx)
    ring_difference = with_rings.image_zyx - reference.image_zyx
    noise_difference = noisy.image_zyx - reference.image_zyx
    assert np.abs(ring_difference).mean() > 0.01 and np.abs(noise_difference).mean() > 0.01
    assert min(_ring_share(difference) for difference in ring_difference) > 0.6
    assert max(_ring_share(difference) for difference in noise_difference) < 0.2


def test_phase_contrast_darkens_the_pore_next_to_particles():
    from scipy import ndimage
    base = preset_params('clean', mean_diameter_vox=12.0, output_dtype='float32', cb_coverage=0.0,
                         cb_bridge_radius_vox=0.0)
    plain = generate_volume((8, 64, 64), base, seed=2)
    halo = generate_volume((8, 64, 64), dataclasses.replace(base, phase_contrast=2.0), seed=2)
    nmc = plain.phases_zyx == NMC
    rim = ndimage.binary_dilation(nmc) & ~nmc & (plain.labels_zyx == 0)
    inner = nmc & ~ndimage.binary_erosion(nmc)
    assert halo.image_zyx[rim].mean() < plain.image_zyx[rim].mean() - 0.03
    assert halo.image_zyx[inner].mean() > plain.image_zyx[inner].mean() + 0.03
