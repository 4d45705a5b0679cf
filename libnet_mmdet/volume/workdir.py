"""The work folder of a streaming volume run (:func:`~libnet_mmdet.apis.segment_volume`): resume state and
scratch arrays.

Layout (manifest format 2)::

    manifest.json                  {"format": 2, "identity": ...}: input shape and dtype, inference parameters,
                                   model fingerprint
    parts/<view>_<start:06d>.npz   one per finished slab of a view: ``labels`` (n, h, w) uint16, the 2D instance
                                   ids of its slices, and ``checksum``, the :func:`slab_checksum` of its input
    input.npy                      (Z, Y, X) random-access copy of a page-wise input (views other than xy)
    view_<view>.npy                (Z, Y, X) uint16: the part files of a view gathered
    labels3d.npy                   (Z, Y, X) uint32: linked or fused 3D ids
    core.npy                       (Z, Y, X) uint32: provisional seed ids of fusion

A rerun with the same identity keeps the part files; a finished slab is skipped when its input has the same
checksum. A damaged part file (a disk error, a copy cut short) counts as unfinished: its slab is segmented again,
with a warning. That is always safe, because a part is only a cache of the model's output on its slab (same
model, parameters and input checksum) and is replaced atomically; refusing to resume would throw away every
other finished slab. A damaged manifest likewise starts the run afresh. A folder is only used as a work folder
when it is new, empty or holds a manifest, since it is deleted after a successful run. Scratch arrays (``.npy``)
are read and written slab by slab along any axis (:class:`~libnet_mmdet.io.volume.StoredVolume`), so that memory
holds a slab, never the volume.
"""
import hashlib
import json
import os
import os.path as osp
import shutil
import warnings

import numpy as np

from ..io.errors import InputError
from ..io.files import atomic_output, write_json
from ..io.volume import StoredVolume
from .views import VIEW_AXIS, view_slabs

MANIFEST = 'manifest.json'
MANIFEST_FORMAT = 2  # 2: finished slabs are part files, not manifest entries
PARTS_DIR = 'parts'
VIEW_LABEL_DTYPE = np.uint16  # 2D ids per slice in the part files and the gathered views
VIEW_MAX_ID = np.iinfo(VIEW_LABEL_DTYPE).max


def create_scratch(path, shape, dtype):
    """Create a zero-filled ``.npy`` scratch array on disk (sparse file: no data written)."""
    StoredVolume.create(path, shape, dtype)


def read_scratch(path, axis, start, stop):
    """Slices ``start:stop`` along ``axis`` of a ``.npy`` scratch array, as an (n, h, w) array in memory."""
    return StoredVolume.npy(path).read(axis, start, stop)


def write_scratch(path, axis, start, slab):
    """Write (n, h, w) slices at ``start`` along ``axis`` into a ``.npy`` scratch array and flush them."""
    StoredVolume.npy(path).write(axis, start, slab)


def slab_checksum(slab):
    """Hex digest of a slab's bytes (blake2b, 128 bit)."""
    return hashlib.blake2b(np.ascontiguousarray(slab).tobytes(), digest_size=16).hexdigest()


class WorkFolder:
    """The work folder of one volume run (see the module docstring).

    Attributes:
        path (str): the folder.
    """

    def __init__(self, path):
        self.path = os.fspath(path)

    def check(self):
        """Raise :class:`~libnet_mmdet.io.InputError` unless the folder can serve a run: new, empty, or a work
        folder (it holds the manifest). A folder of other files is refused: :meth:`remove` would delete them."""
        if not osp.lexists(self.path):
            return
        if not osp.isdir(self.path):
            raise InputError(f'{self.path}: exists and is not a folder; give another work folder (--work-dir)')
        entries = os.listdir(self.path)
        if entries and MANIFEST not in entries:
            raise InputError(f'{self.path}: not a work folder of a volume run (it holds other files and no '
                             f'{MANIFEST}; the work folder is deleted after success): give a new or empty folder '
                             '(--work-dir)')

    def open(self, identity, resume=True):
        """Prepare the folder for a run; returns True when it continues an earlier run.

        ``identity`` (JSON-serialisable) is stored in the manifest. A folder whose manifest has another identity
        or is damaged, or ``resume=False``, is started afresh: its part files are deleted.
        """
        self.check()
        identity = json.loads(json.dumps(identity))
        path = osp.join(self.path, MANIFEST)
        manifest = None
        if resume and osp.isfile(path):
            try:
                with open(path, encoding='utf-8') as f:
                    manifest = json.load(f)
            except ValueError as exc:  # JSON or UTF-8 decoding
                warnings.warn(f'{path}: damaged manifest ({exc}); starting the run afresh')
        if manifest == dict(format=MANIFEST_FORMAT, identity=identity):
            return True
        shutil.rmtree(osp.join(self.path, PARTS_DIR), ignore_errors=True)
        os.makedirs(osp.join(self.path, PARTS_DIR))
        write_json(path, dict(format=MANIFEST_FORMAT, identity=identity), indent=1)
        return False

    def scratch_path(self, name):
        """The path of the scratch array ``name`` (``'input'``, ``'view_xy'``, ``'labels3d'``, ...)."""
        return osp.join(self.path, f'{name}.npy')

    def part_path(self, view, start):
        """The part file of the slab of ``view`` starting at slice ``start``."""
        return osp.join(self.path, PARTS_DIR, f'{view}_{start:06d}.npz')

    def part_checksum(self, view, start, shape):
        """The input checksum a finished slab's part file was made from, or None if there is no part or it is
        damaged (warned: the slab is then segmented again, see the module docstring).

        Args:
            view (str), start (int): the slab.
            shape (tuple): (n, h, w) of the slab's slices, which the part's labels must have.
        """
        path = self.part_path(view, start)
        if not osp.isfile(path):
            return None
        try:
            with np.load(path) as part:
                labels, checksum = part['labels'], str(part['checksum'])  # reads (and CRC-checks) both
        except Exception as exc:  # decoding a damaged file of ours fails in many ways (zip, npy, pickle guard)
            problem = f'{type(exc).__name__}: {exc}'
        else:
            if labels.shape == tuple(shape) and labels.dtype == VIEW_LABEL_DTYPE:
                return checksum
            problem = f'labels {labels.shape} {labels.dtype}, expected {tuple(shape)} {np.dtype(VIEW_LABEL_DTYPE)}'
        warnings.warn(f'{path}: damaged part file ({problem}); segmenting this slab again')
        return None

    def write_part(self, view, start, labels, checksum):
        """Store a finished slab atomically: its (n, h, w) 2D labels (ids up to ``VIEW_MAX_ID``) and the checksum
        of its input."""
        with atomic_output(self.part_path(view, start), 'wb') as f:
            np.savez(f, labels=np.stack(labels).astype(VIEW_LABEL_DTYPE), checksum=checksum)

    def gather_views(self, shape, views, slab):
        """Copy the part files of every slab of ``views`` (:func:`~libnet_mmdet.volume.views.view_slabs`) into one
        (Z, Y, X) uint16 scratch array per view; returns {view: path}."""
        view_paths = {}
        for view, start, _ in view_slabs(shape, views, slab):
            if view not in view_paths:
                view_paths[view] = self.scratch_path(f'view_{view}')
                create_scratch(view_paths[view], shape, VIEW_LABEL_DTYPE)
            with np.load(self.part_path(view, start)) as part:
                write_scratch(view_paths[view], VIEW_AXIS[view], start, part['labels'])
        return view_paths

    def remove(self):
        """Delete the folder and everything in it."""
        shutil.rmtree(self.path)
