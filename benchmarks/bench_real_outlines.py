"""Where the generalist's particle-phase Dice is lost on the real SegmentPy slices, and where outlines sit.

Usage:
    python benchmarks/bench_real_outlines.py [--generalist models/generalist] [--real-dir ../shared/data/real]
        [--seed 7000] [--pictures DIR] [--out benchmarks/results/real_outlines.json]

A diagnosis, not a tuning: nothing is chosen here. Per real slice (``REAL/segmentpy``, label 0 = NMC), the
generalist at ``scale='auto'`` (as ``bench_zero_shot.py``):

* Dice of the union of its instances with the expert NMC, and the lost pixels: missed NMC (false negatives) split
  into expert NMC components no instance touches and pixels within 3 px of an outline (ours or the expert's), and
  false positives;
* the signed distance (px) from each expert NMC outline pixel to our masks (positive: outside them), for expert
  outline pixels within 8 px of a mask;
* the *edge level* of an outline: the median of the slice (Gaussian-smoothed, sigma 1 px) on the inner pixels of
  the outline of a particle phase (the union of the instances: the seams between touching instances lie inside
  bright particle and are left out, as a phase mask has none), as a fraction between the far background (pixels
  more than 8 px from any particle of either) and the particle interior (our union eroded by 6 px; the truth's on
  synthetic slices) -- for our outlines and the expert's. (Until 2026-12-07 our outlines counted those seams.)

The same two outline measures on synthetic **validation** slices with exact labels (seed ``--seed``: four xy slices
each of ``typical`` / ``hard`` at 48 px and ``typical`` at 24 px, as ``bench_zero_shot.make_volume`` builds them),
where the true outline shows what level a correct outline has by this measure. ``--pictures``: per real slice a PNG
of the missed NMC (red) and false positives (blue) on the slice.
"""
import argparse
import os.path as osp
import sys

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.segmentation import find_boundaries
from real_slices import particle_slices  # noqa: E402 (benchmarks/ is sys.path[0])
from run_record import finish_record, run_record  # noqa: E402

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SYNTHETIC_CELLS = (('typical', 48.0), ('hard', 48.0), ('typical', 24.0))
NEAR_PX, OFFSET_PX, FAR_PX, INNER_PX = 3, 8, 8, 6


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--generalist', default=osp.join(REPO_ROOT, 'models', 'generalist'))
    parser.add_argument('--real-dir', default=osp.join(REPO_ROOT, '..', 'shared', 'data', 'real'))
    parser.add_argument('--seed', type=int, default=7000, help='synthetic validation seed (default 7000)')
    parser.add_argument('--pictures', help='folder for the per-slice error pictures (PNG)')
    parser.add_argument('--out', default=osp.join(REPO_ROOT, 'benchmarks', 'results', 'real_outlines.json'))
    return parser.parse_args(argv)


def signed_offsets(reference, masks):
    """Signed distance (px) from every outline pixel of ``reference`` within ``OFFSET_PX`` of ``masks`` to them."""
    signed = np.where(masks, -ndimage.distance_transform_edt(masks), ndimage.distance_transform_edt(~masks))
    offsets = signed[find_boundaries(reference, mode='inner')]
    return offsets[np.abs(offsets) <= OFFSET_PX]


def edge_levels(image, interior, outlines):
    """Edge level (see the module docstring) of the union of each labels/mask array in ``outlines`` (dict name ->
    array)."""
    smooth = ndimage.gaussian_filter(image.astype(np.float64), 1.0)
    anything = np.any([np.asarray(mask) > 0 for mask in outlines.values()], axis=0)
    far = ~ndimage.binary_dilation(anything, iterations=FAR_PX)
    high = np.median(smooth[ndimage.binary_erosion(interior, iterations=INNER_PX)])
    low = np.median(smooth[far])
    return {name: round(float((np.median(smooth[find_boundaries(np.asarray(mask) > 0, mode='inner')]) - low)
                              / (high - low)), 3)
            for name, mask in outlines.items()}


def real_rows(model, folder, pictures):
    from libnet_mmdet.apis import segment_image
    from libnet_mmdet.evaluation import foreground_dice
    from libnet_mmdet.visualization import write_png
    rows = []
    for name, image, nmc in particle_slices(folder):
        labels, details = segment_image(model, image, scale='auto')
        ours = labels > 0
        missed, extra = nmc & ~ours, ours & ~nmc
        components, count = ndimage.label(nmc)
        touched = np.zeros(count + 1, bool)
        touched[np.unique(components[ours])] = True
        touched[0] = False
        untouched = missed & ~touched[components]
        near = ndimage.binary_dilation(find_boundaries(labels, mode='inner') | find_boundaries(nmc, mode='inner'),
                                       iterations=NEAR_PX)
        offsets = signed_offsets(nmc, ours)
        row = dict(slice=name, scale=details['scale'], instances=int(labels.max()),
                   dice=round(foreground_dice(labels, nmc), 4),
                   dice_otsu=round(foreground_dice(image > threshold_otsu(image), nmc), 4),
                   nmc_fraction_expert=round(float(nmc.mean()), 3), nmc_fraction_ours=round(float(ours.mean()), 3),
                   missed_px=int(missed.sum()), missed_untouched_components_px=int(untouched.sum()),
                   missed_near_outlines_px=int((missed & ~untouched & near).sum()), false_positive_px=int(extra.sum()),
                   expert_outline_offset_px=dict(median=float(np.median(offsets)),
                                                 quartiles=np.percentile(offsets, [25, 75]).tolist()),
                   edge_level=edge_levels(image, ours, dict(ours=labels, expert=nmc)))
        rows.append(row)
        print(row, flush=True)
        if pictures:
            low, high = np.percentile(image, [1, 99])
            grey = (np.clip((image - low) / (high - low + 1e-6), 0, 1) * 255).astype(np.uint8)
            picture = np.repeat(grey[..., None], 3, axis=2)
            picture[missed], picture[extra] = (255, 0, 0), (0, 80, 255)
            write_png(osp.join(pictures, name.replace('.tif', '_errors.png')), picture)
    return rows


def synthetic_rows(model, seed):
    sys.path.insert(0, osp.join(REPO_ROOT, 'benchmarks'))
    from bench_zero_shot import make_volume

    from libnet_mmdet.apis import segment_image
    rows = []
    for preset, diameter in SYNTHETIC_CELLS:
        volume = make_volume(preset, diameter, seed)
        levels, offsets = [], []
        for z in np.linspace(4, volume.image_zyx.shape[0] - 5, 4).astype(int):
            image, truth = volume.image_zyx[z].astype(np.float32), volume.labels_zyx[z]
            labels, details = segment_image(model, image, scale='auto')
            levels.append(edge_levels(image, truth > 0, dict(ours=labels, truth=truth)))
            offsets.append(signed_offsets(truth > 0, labels > 0))
        offsets = np.concatenate(offsets)
        rows.append(dict(preset=preset, diameter_px=diameter, seed=seed, slices=len(levels), scale=details['scale'],
                         edge_level={key: round(float(np.mean([lv[key] for lv in levels])), 3)
                                     for key in ('ours', 'truth')},
                         true_outline_offset_px=dict(median=float(np.median(offsets)),
                                                     quartiles=np.percentile(offsets, [25, 75]).tolist())))
        print(rows[-1], flush=True)
    return rows


def main(argv=None):
    args = parse_args(argv)
    from libnet_mmdet.apis import generalist_files, init_segmenter
    from libnet_mmdet.io import write_json
    files = generalist_files(args.generalist)
    if files is None:
        sys.exit(f'{args.generalist}: no generalist model there; run `make model`')
    folder = osp.join(args.real_dir, 'segmentpy')
    if not osp.isdir(folder):
        sys.exit(f'{folder}: absent (the real SegmentPy slices)')
    record = run_record()
    model = init_segmenter(*files, device='cpu')
    report = dict(real=real_rows(model, folder, args.pictures), synthetic_validation=synthetic_rows(model, args.seed))
    write_json(args.out, dict(report, run=finish_record(record)), indent=1)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
