"""The real SegmentPy slices (``../shared/data/real/segmentpy``) as the benchmarks read them: each ``<name>.tif``
with its expert labels ``<name>_label.tif``, label 0 = NMC (the particle phase)."""
import os
import os.path as osp

import numpy as np
import tifffile

SEGMENTPY_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '..', 'shared', 'data', 'real', 'segmentpy')


def particle_slices(folder=SEGMENTPY_DIR):
    """Yield ``(name, image, nmc)`` for each slice of ``folder`` in name order: the (H, W) float32 slice and the
    (H, W) bool particle phase of its expert labels."""
    for name in sorted(os.listdir(folder)):
        if name.endswith('.tif') and not name.endswith('_label.tif'):
            image = tifffile.imread(osp.join(folder, name)).astype(np.float32)
            yield name, image, tifffile.imread(osp.join(folder, name.replace('.tif', '_label.tif'))) == 0
