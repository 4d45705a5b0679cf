"""PNG panels of the stages recorded by :func:`~libnet_mmdet.visualization.model_stages.record_stages`.

Every ``plot_*`` function takes the stages dict and returns a :class:`matplotlib.figure.Figure` (no pyplot state,
no GUI backend: safe in scripts, tests and notebooks); every box, mask and map it draws is an array of the stages
dict, so what a panel shows is what the model computed. :func:`write_panels` saves them all atomically and
returns the counts behind each panel.
"""
import os.path as osp

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from skimage.transform import resize

from ..evaluation import instances_to_labels
from ..io import check_int, check_number, check_output_dir, output_folder, write_json
from .render import render_labels, write_png

BOX_CMAP = 'viridis'  # box colour = score, 0 (purple) to 1 (yellow)


def _gray(image):
    """(H, W) display image of a prepared (H, W[, C]) slice."""
    return image[..., 0] if image.ndim == 3 else image


def _model_frame_image(stages):
    """The prepared slice resampled to the model's input frame (``img_shape``), where the intermediate boxes are."""
    gray = _gray(stages['image']).astype(np.float32)
    if gray.shape != tuple(stages['img_shape']):
        gray = resize(gray, stages['img_shape'], preserve_range=True)
    return gray


def _axes_grid(n, size=3.2, ncols=None):
    ncols = ncols or min(n, 5)
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(size * ncols, size * nrows))
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]
    return fig, axes


def _show(ax, gray, title):
    ax.imshow(gray, cmap='gray', vmin=0, vmax=255)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


MAX_SCORE_TEXTS = 40  # more score labels than this would hide the image


def _box_patch(box, colour):
    """The rectangle of an mmdet box (``x0, y0, x1, y1``, pixel corners: pixel ``j`` spans ``[j, j + 1)``) over an
    ``imshow`` image, whose pixel ``j`` spans ``[j - 0.5, j + 0.5)``."""
    x0, y0, x1, y1 = box
    return Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, linewidth=0.8, edgecolor=colour)


def _draw_boxes(ax, bboxes, scores, labels=False):
    """One rectangle per box, coloured by score (its score written when ``labels`` and at most
    ``MAX_SCORE_TEXTS`` boxes); returns the number drawn."""
    cmap = colormaps[BOX_CMAP]
    for box, score in zip(bboxes, scores):
        ax.add_patch(_box_patch(box, cmap(float(score))))
        if labels and len(bboxes) <= MAX_SCORE_TEXTS:
            ax.text(box[0] - 0.5, box[1] - 0.5, f'{score:.2f}', color='yellow', fontsize=6, va='bottom')
    return len(bboxes)


def _top(scores, k):
    """Indices of the ``k`` highest scores, highest first."""
    return np.argsort(-scores, kind='stable')[:k]


def plot_anchors(stages, positions=3):
    """Anchors per FPN level: every anchor shape at ``positions`` grid cells along the diagonal, and the anchor
    centres of the level (every other cell) as dots."""
    fig, axes = _axes_grid(len(stages['anchors']))
    gray = _model_frame_image(stages)
    for level, (ax, anchors, objectness, stride) in enumerate(zip(axes, stages['anchors'], stages['objectness'],
                                                                  stages['anchor_strides'])):
        per_cell, height, width = objectness.shape  # anchors are ordered (y, x, anchor shape)
        grid = anchors.reshape(height, width, per_cell, 4)
        sizes = sorted({int(round(w)) for w in (grid[0, 0, :, 2] - grid[0, 0, :, 0])})
        _show(ax, gray, f'P{level + 2}: stride {stride}, {len(anchors)} anchors\nwidths {sizes} px')
        centres = (grid[::2, ::2, 0, :2] + grid[::2, ::2, 0, 2:]).reshape(-1, 2) / 2 - 0.5  # in imshow's frame
        ax.plot(centres[:, 0], centres[:, 1], '.', color='cyan', markersize=1)
        cells = np.linspace(0, min(height, width) - 1, positions + 2)[1:-1].round().astype(int)
        for cell in cells:
            for box in grid[cell, cell]:
                ax.add_patch(_box_patch(box, 'orange'))
        ax.set_xlim(-0.5, gray.shape[1] - 0.5)
        ax.set_ylim(gray.shape[0] - 0.5, -0.5)
    return fig


def plot_objectness(stages):
    """RPN objectness per FPN level: the highest probability over the anchor shapes of each cell, over the slice."""
    fig, axes = _axes_grid(len(stages['objectness']))
    gray = _model_frame_image(stages)
    height, width = gray.shape
    for level, (ax, objectness, stride) in enumerate(zip(axes, stages['objectness'], stages['anchor_strides'])):
        _show(ax, gray, f'P{level + 2} (stride {stride})')
        cells_h, cells_w = objectness.shape[1:]
        # each cell drawn centred on its anchors' centre, (row, col) x stride in mmdet's pixel-corner frame
        start = -0.5 - stride / 2
        image = ax.imshow(objectness.max(axis=0), cmap='magma', vmin=0, vmax=1, alpha=0.6,
                          extent=(start, start + cells_w * stride, start + cells_h * stride, start))
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
    fig.colorbar(image, ax=axes, shrink=0.6, label='objectness')
    fig.suptitle('RPN objectness: highest probability over the anchor shapes of each cell', fontsize=10)
    return fig


def plot_proposals(stages, topk=50):
    """The ``topk`` RPN proposals by objectness before and after the RPN's NMS."""
    fig, axes = _axes_grid(2, size=4.5)
    gray = _model_frame_image(stages)
    for ax, key, name in zip(axes, ('rpn_before_nms', 'rpn_after_nms'), ('before', 'after')):
        proposals = stages[key]
        keep = _top(proposals['scores'], topk)
        _show(ax, gray, f'RPN top {len(keep)} of {len(proposals["scores"])} proposals {name} NMS')
        _draw_boxes(ax, proposals['bboxes'][keep], proposals['scores'][keep])
    return fig


def plot_rcnn_boxes(stages, class_index=0, topk=50):
    """Boxes after the bbox head: the ``topk`` refined RoIs by the class score before NMS, and the ``topk``
    detections after NMS with their scores."""
    fig, axes = _axes_grid(2, size=4.5)
    gray = _model_frame_image(stages)
    before = stages['rcnn_before_nms']
    scores = before['scores'][:, class_index]
    keep = _top(scores, topk)
    _show(axes[0], gray, f'bbox head: top {len(keep)} of {len(scores)} refined RoIs (before NMS)')
    _draw_boxes(axes[0], before['bboxes'][keep, min(class_index, before['bboxes'].shape[1] - 1)], scores[keep])
    after = stages['rcnn_after_nms']
    keep = _top(after['scores'], topk)
    _show(axes[1], gray, f'bbox head: top {len(keep)} of {len(after["scores"])} detections after NMS')
    _draw_boxes(axes[1], after['bboxes'][keep], after['scores'][keep], labels=True)
    return fig


def plot_detections(stages, score_thr):
    """Final detections with ``score >= score_thr``: masks tinted by
    :func:`~libnet_mmdet.visualization.render_labels` (the highest score on top), boxes coloured by score, scores
    written."""
    detections = stages['detections']
    keep = np.flatnonzero(detections['scores'] >= score_thr)
    fig, (ax,) = _axes_grid(1, size=6)
    gray = _gray(stages['image'])
    _show(ax, gray, f'{len(keep)} detections with score >= {score_thr:g} (of {len(detections["scores"])})')
    if detections['masks'] is not None and len(keep):
        ax.imshow(render_labels(gray, instances_to_labels(detections['masks'], gray.shape, order=keep)))
    _draw_boxes(ax, detections['bboxes'][keep], detections['scores'][keep], labels=True)
    return fig


def plot_mask_probs(stages, n_masks=8):
    """The mask head's 28x28 probabilities of the ``n_masks`` best detections, next to the RoI they come from."""
    probs = stages['mask_probs'][:n_masks]
    after = stages['rcnn_after_nms']
    fig, axes = _axes_grid(max(len(probs), 1), size=2.4, ncols=min(max(len(probs), 1), 4))
    if not len(probs):
        axes[0].set_title('no detection: the mask head did not run', fontsize=9)
        axes[0].set_axis_off()
        return fig
    for ax, prob, box, score in zip(axes, probs, after['bboxes'], after['scores']):
        image = ax.imshow(prob, cmap='viridis', vmin=0, vmax=1)
        x0, y0, x1, y1 = box
        ax.set_title(f'score {score:.2f}, RoI {x1 - x0:.0f}x{y1 - y0:.0f} px', fontsize=8)
        ax.set_axis_off()
    fig.colorbar(image, ax=axes, shrink=0.6, label='mask probability')
    return fig


def plot_activations(maps, names):
    """Mean absolute activation over the channels of each (C, h, w) feature map."""
    fig, axes = _axes_grid(len(maps))
    for ax, feature, name in zip(axes, maps, names):
        image = ax.imshow(np.abs(feature).mean(axis=0), cmap='inferno')
        ax.set_title(f'{name}: {feature.shape[0]} ch, {feature.shape[1]}x{feature.shape[2]}', fontsize=9)
        ax.set_axis_off()
        fig.colorbar(image, ax=ax, shrink=0.7)
    return fig


def write_panels(stages, out_dir, score_thr=0.5, topk=50, n_masks=8, overwrite=False):
    """Write every panel of ``stages`` to ``out_dir`` as PNG, and ``summary.json`` with the counts drawn.

    ``out_dir`` holds the panels of one run only: it must be new or empty, or, with ``overwrite``, an output folder
    of an earlier run, which the new one replaces once the figures are drawn and written
    (:func:`~libnet_mmdet.io.output_folder`).

    Args:
        stages (dict): from :func:`~libnet_mmdet.visualization.model_stages.record_stages`.
        out_dir (str | os.PathLike): the output folder (created if missing).
        score_thr (float): draw the final detections scoring at least this, in [0, 1].
        topk (int): proposals and boxes drawn per panel, >= 1.
        n_masks (int): mask probability maps drawn, >= 1.
        overwrite (bool): empty ``out_dir`` when it holds an earlier run's output.

    Returns:
        dict: ``panels`` (file names) and per-stage counts: ``anchors_per_level``, ``rpn_before_nms``,
        ``rpn_after_nms``, ``rcnn_rois``, ``rcnn_after_nms``, ``detections`` (all the model returned),
        ``detections_drawn`` (score >= ``score_thr``), ``masks_drawn``, ``score_thr``, ``scale`` (the
        :func:`~libnet_mmdet.visualization.record_stages` scale, 1.0 when it records none).

    Raises:
        InputError: a bad ``score_thr``, ``topk`` or ``n_masks``; ``out_dir`` is not a folder, or is not empty
            (without ``overwrite``, or not written by libnet-mmdet). Before any figure is drawn.
    """
    check_number(score_thr, 'score_thr', high=1)
    check_int(topk, 'topk', 1)
    check_int(n_masks, 'n_masks', 1)
    check_output_dir(out_dir, overwrite)
    figures = {
        'anchors.png': plot_anchors(stages),
        'rpn_objectness.png': plot_objectness(stages),
        'rpn_proposals.png': plot_proposals(stages, topk),
        'rcnn_boxes.png': plot_rcnn_boxes(stages, topk=topk),
        'detections.png': plot_detections(stages, score_thr),
        'mask_probs.png': plot_mask_probs(stages, n_masks),
        'activations_backbone.png': plot_activations(stages['backbone'],
                                                     [f'stage {i + 1}' for i in range(len(stages['backbone']))]),
        'activations_fpn.png': plot_activations(stages['fpn'], [f'P{i + 2}' for i in range(len(stages['fpn']))]),
    }
    scores = stages['detections']['scores']
    summary = {
        'panels': sorted(figures),
        'score_thr': float(score_thr),
        'anchors_per_level': [len(a) for a in stages['anchors']],
        'rpn_before_nms': len(stages['rpn_before_nms']['scores']),
        'rpn_after_nms': len(stages['rpn_after_nms']['scores']),
        'rcnn_rois': len(stages['rcnn_before_nms']['scores']),
        'rcnn_after_nms': len(stages['rcnn_after_nms']['scores']),
        'detections': len(scores),
        'detections_drawn': int((scores >= score_thr).sum()),
        'masks_drawn': min(len(stages['mask_probs']), n_masks),
        'scale': stages.get('scale', 1.0),
    }
    with output_folder(out_dir, overwrite) as folder:
        for name, fig in figures.items():
            write_png(osp.join(folder, name), fig)
        write_json(osp.join(folder, 'summary.json'), summary, indent=2)
    return summary
