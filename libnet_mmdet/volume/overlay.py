"""Overlay PNGs of 3D instance labels on their grayscale slices, for a quick visual check of a segmentation."""
import io
import os
import os.path as osp

import numpy as np
from PIL import Image
from skimage.color import label2rgb
from skimage.segmentation import find_boundaries

from ..fileio import atomic_output
from ..datasets.image_io import normalize_intensity


def overlay_rgb(image_hw, labels_hw, alpha=0.3):
    """(H, W, 3) uint8: the percentile-normalised slice with instances tinted and their boundaries in white."""
    gray = normalize_intensity(image_hw) / 255.0
    rgb = label2rgb(labels_hw, image=gray, alpha=alpha, bg_label=0, image_alpha=1.0)
    rgb[find_boundaries(labels_hw, mode='inner')] = 1.0
    return np.round(rgb * 255).astype(np.uint8)


def write_overlays(reader, labels_zyx, out_dir, step=10):
    """Write ``out_dir/overlay_z<index>.png`` for every ``step``-th z slice (atomically); returns the paths.

    Args:
        reader (VolumeReader): the input volume.
        labels_zyx (np.ndarray): (Z, Y, X) labels of the same shape (a memory map is read slice by slice).
        out_dir (str): created if missing.
        step (int): every how many z slices.
    """
    if int(step) != step or step < 1:
        raise ValueError(f'step must be a positive integer, got {step!r}')
    os.makedirs(out_dir, exist_ok=True)
    digits = len(str(reader.shape[0] - 1))
    paths = []
    for z in range(0, reader.shape[0], step):
        image = reader.read('z', z, z + 1)[0]
        buffer = io.BytesIO()
        Image.fromarray(overlay_rgb(image, np.asarray(labels_zyx[z]))).save(buffer, format='PNG')
        path = osp.join(out_dir, f'overlay_z{z:0{digits}d}.png')
        with atomic_output(path, 'wb') as f:
            f.write(buffer.getvalue())
        paths.append(path)
    return paths
