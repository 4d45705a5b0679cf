"""A phase model: pore / carbon-binder / NMC of every pixel of a slice, with Panoptic FPN's semantic branch."""
import numpy as np
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmengine.structures import PixelData

from ..datasets.transforms.loading import PHASE_CLASS_IDS
from ..io.errors import InputError

#: Number of phases a phase model predicts (codes 0 pore, 1 NMC, 2 carbon-binder).
PHASE_CHANNELS = 3
#: ``PanopticFPNHead``'s output channel of each phase code: the head puts its stuff classes first (class ids 1, 2 of
#: :data:`~libnet_mmdet.datasets.transforms.PHASE_CLASS_IDS`: pore, carbon-binder) and its one thing class (NMC,
#: class id 0) last, so pore is channel 0, NMC 2, carbon-binder 1.
HEAD_CHANNEL_OF_PHASE = np.where(PHASE_CLASS_IDS == 0, PHASE_CHANNELS - 1, PHASE_CLASS_IDS.astype(int) - 1)


def check_phase_classes(things, stuff, name):
    """Refuse a semantic head for other classes than the phases' 1 thing (NMC particles) and 2 stuff classes (pore,
    carbon-binder): its channels would be read as the wrong phases.

    Raises:
        InputError: naming ``name`` (a config file, or the model's type) and the head's classes.
    """
    if (things, stuff) != (1, 2):
        raise InputError(f'{name}: a phase model for {things} thing and {stuff} stuff classes; the phases need 1 '
                         'thing (NMC particles) and 2 stuff classes (pore, carbon-binder): semantic_head='
                         'dict(num_things_classes=1, num_stuff_classes=2)')


@MODELS.register_module()
class PhaseSegmentor(BaseDetector):
    """Semantic segmentation of a tomography slice into pore, carbon-binder and NMC: a backbone, an FPN, the semantic
    head of Panoptic FPN (``PanopticFPNHead`` with NMC particles as its one *thing* class and pore and carbon-binder
    as *stuff*) and a full-resolution refinement, without the instance branch.

    The stock head predicts at the stride of its finest FPN level (4 px), too coarse for carbon-binder films one
    to three voxels thick. The refinement upsamples the head's logits to the input's resolution (bilinear),
    concatenates them with features of the image itself (two 3x3 convs at full resolution, ``refine_channels``
    wide) and adds a correction predicted from both (a 3x3 conv, then a 1x1 conv), as U-Net's skip connections
    bring back detail; it is kept narrow and without normalisation by default, as full-resolution layers dominate
    the CPU cost. Training adds the full-resolution cross-entropy (``loss_seg_fine``) to the stock head's loss at
    stride 4 (``loss_seg``), with the head's class order and ignore index, and pixels next to a phase boundary
    weighted ``boundary_weight`` times.

    It trains like any MMDetection detector (``tools/train.py``, ``DetDataPreprocessor`` with ``pad_seg=True``,
    samples with ``gt_sem_seg`` from :class:`~libnet_mmdet.datasets.transforms.LoadPhaseMap`); ``predict`` adds to
    each data sample ``phase_probs`` (``PixelData``, (3, H, W) float32 probabilities of the phase codes 0 pore,
    1 NMC, 2 carbon-binder at the input's own resolution) and ``pred_sem_seg`` (their argmax, (1, H, W) phase
    codes).

    Args:
        backbone, neck, semantic_head (dict): configs of the backbone, the neck (an FPN) and the semantic head
            (``PanopticFPNHead(num_things_classes=1, num_stuff_classes=2)``).
        in_channels (int): channels of the input images (the loader's ``channels``).
        refine_channels (int): channels of the full-resolution refinement.
        norm_cfg (dict | None): normalisation of the refinement's convs (None: none).
        boundary_weight (float): weight of the full-resolution loss at pixels next to a phase boundary (a 3x3
            neighbourhood of more than one phase in the target), the others weigh 1: what detachment counts is
            the phase just outside each particle, where blur and the phase-contrast fringe make it hardest.
        data_preprocessor (dict | None): ``DetDataPreprocessor`` config.
        train_cfg: unused (kept for the config layout of MMDetection detectors).
        test_cfg (dict | None): ``surface_pore_weight`` (float, default 1) and ``bulk_cb_slope`` (float, default
            0): how much the pore probability is favoured next to particles when
            :func:`~libnet_mmdet.apis.phases.predict_phases` decides the phases (``surface_pore_weight -
            bulk_cb_slope x`` the image's bulk carbon-binder share; ``pred_sem_seg`` here stays the plain argmax);
            ``mirror_pad_px`` (int, default 0): the mirror padding of every slice; ``view_edge_ramp_px`` (int,
            default 0): each view's probabilities weighted down on its slices' outer pixels
            (:func:`~libnet_mmdet.apis.phases.view_edge_weights`).
        init_cfg (dict | None): initialisation config.
    """

    def __init__(self, backbone, neck, semantic_head, in_channels=3, refine_channels=8, norm_cfg=None,
                 boundary_weight=1.0, data_preprocessor=None, train_cfg=None, test_cfg=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.boundary_weight = float(boundary_weight)
        self.test_cfg = test_cfg
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        self.semantic_head = MODELS.build(semantic_head)
        check_phase_classes(self.semantic_head.num_things_classes, self.semantic_head.num_stuff_classes,
                            type(self).__name__)
        channels, classes = refine_channels, self.semantic_head.num_classes
        self.image_feats = torch.nn.Sequential(
            ConvModule(in_channels, channels, 3, padding=1, norm_cfg=norm_cfg),
            ConvModule(channels, channels, 3, padding=1, norm_cfg=norm_cfg))
        self.refine = torch.nn.Sequential(
            ConvModule(channels + classes, channels, 3, padding=1, norm_cfg=norm_cfg),
            torch.nn.Conv2d(channels, classes, 1))

    def extract_feat(self, batch_inputs):
        """FPN features of a (N, C, H, W) batch."""
        return self.neck(self.backbone(batch_inputs))

    def _logits(self, batch_inputs):
        """``(coarse, fine)``: the stock head's (N, 3, H / 4, W / 4) logits and the refined (N, 3, H, W) ones, in
        the head's channel order (pore, carbon-binder, NMC)."""
        coarse = self.semantic_head(self.extract_feat(batch_inputs))['seg_preds']
        upsampled = F.interpolate(coarse, size=batch_inputs.shape[-2:], mode='bilinear', align_corners=False)
        fine = upsampled + self.refine(torch.cat([upsampled, self.image_feats(batch_inputs)], dim=1))
        return coarse, fine

    def _forward(self, batch_inputs, batch_data_samples=None):
        return self._logits(batch_inputs)[1]

    def loss(self, batch_inputs, batch_data_samples):
        coarse, fine = self._logits(batch_inputs)
        targets = torch.stack([sample.gt_sem_seg.sem_seg for sample in batch_data_samples]).float()  # (N, 1, H, W)
        coarse_targets = F.interpolate(targets, size=coarse.shape[-2:], mode='nearest')  # as the stock head
        weights = None
        if self.boundary_weight != 1:
            valid = targets != self.semantic_head.loss_seg.ignore_index
            low = -F.max_pool2d(torch.where(valid, -targets, -targets.new_tensor(1e3)), 3, stride=1, padding=1)
            high = F.max_pool2d(torch.where(valid, targets, targets.new_tensor(-1e3)), 3, stride=1, padding=1)
            weights = 1 + (self.boundary_weight - 1) * (valid & (low != high)).float()
        return dict(loss_seg=self._cross_entropy(coarse, coarse_targets),
                    loss_seg_fine=self._cross_entropy(fine, targets, weights))

    def _cross_entropy(self, logits, targets, weights=None):
        """The head's loss of (N, 3, h, w) logits against (N, 1, h, w) class ids (things merged into one channel
        by the head, padding ignored), each pixel weighted by ``weights`` ((N, 1, h, w) or None)."""
        head = self.semantic_head
        targets = head._set_things_to_void(targets[:, 0]).long()
        return head.loss_seg(logits.permute(0, 2, 3, 1).reshape(-1, head.num_classes), targets.reshape(-1),
                             weight=None if weights is None else weights.reshape(-1))

    def predict(self, batch_inputs, batch_data_samples, rescale=True):
        fine = self._logits(batch_inputs)[1]
        for sample, logits_chw in zip(batch_data_samples, fine):
            height, width = sample.metainfo['img_shape']
            logits_chw = logits_chw[:, :height, :width]
            if rescale and tuple(sample.metainfo['ori_shape']) != (height, width):
                logits_chw = F.interpolate(logits_chw[None], size=tuple(sample.metainfo['ori_shape']),
                                           mode='bilinear', align_corners=False)[0]
            probs = logits_chw.softmax(0)[HEAD_CHANNEL_OF_PHASE.tolist()]
            sample.phase_probs = PixelData(data=probs)
            sample.pred_sem_seg = PixelData(sem_seg=probs.argmax(0, keepdim=True))
        return batch_data_samples
