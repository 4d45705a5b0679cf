"""A stand-in for mmcv's compiled ``mmcv._ext``, for the GPU checks only: torchvision's CUDA kernels behind the three
mmcv ops a Mask R-CNN uses (NMS, RoIAlign forward and backward); any other op raises when called.

Why: the lent GPU machine has PyTorch 2.11 + CUDA 13 and no package registry, and mmcv 2.1.0's CUDA ops do not
build there within the device budget. ``benchmarks/gpu/run_checks.sh`` installs mmcv without ops (``mmcv-lite``)
and copies this file to ``mmcv/_ext.py``, so mmcv's own Python wrappers (``RoIAlign``, ``nms``, ``batched_nms``)
run unchanged on top of these kernels. Not part of the package; never used on a normal install.
"""
import torch
import torchvision  # noqa: F401  (registers torch.ops.torchvision)


def nms(bboxes, scores, iou_threshold, offset=0):
    """Indices of kept boxes, by decreasing score (mmcv's ``nms`` kernel contract)."""
    if offset != 0:
        raise NotImplementedError('mmcv_ext_torchvision: nms with offset=1')
    return torch.ops.torchvision.nms(bboxes, scores, iou_threshold)


def roi_align_forward(input, rois, output, argmax_y, argmax_x, aligned_height, aligned_width, spatial_scale,
                      sampling_ratio, pool_mode, aligned):
    """Average RoIAlign of ``input`` (N, C, H, W) over ``rois`` (K, 5: batch index, x1, y1, x2, y2) into
    ``output`` (K, C, aligned_height, aligned_width), in place."""
    if pool_mode != 1:
        raise NotImplementedError('mmcv_ext_torchvision: RoIAlign pool_mode="max"')
    output.copy_(torch.ops.torchvision.roi_align(input, rois.to(input.dtype), spatial_scale, aligned_height,
                                                 aligned_width, sampling_ratio, aligned))


def roi_align_backward(grad_output, rois, argmax_y, argmax_x, grad_input, aligned_height, aligned_width,
                       spatial_scale, sampling_ratio, pool_mode, aligned):
    """Gradient of :func:`roi_align_forward` with respect to its input, written into ``grad_input``."""
    batch, channels, height, width = grad_input.shape
    grad_input.copy_(torch.ops.torchvision._roi_align_backward(
        grad_output, rois.to(grad_output.dtype), spatial_scale, aligned_height, aligned_width, batch, channels,
        height, width, sampling_ratio, aligned))


def __getattr__(name):
    """Every other kernel mmcv's ops load: present (mmcv checks names at import), raising when called."""
    if name.startswith('__'):
        raise AttributeError(name)

    def missing(*args, **kwargs):
        raise NotImplementedError(f'mmcv_ext_torchvision: mmcv op kernel {name!r} has no stand-in')
    return missing
