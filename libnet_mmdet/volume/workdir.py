"""The work folder of a streaming volume run (:func:`~libnet_mmdet.apis.segment_volume`): resume state and
chunked scratch arrays that every rank of a run reads and writes.

Layout (manifest format 4)::

    manifest.json                  {"format": 4, "identity": ...}: input shape and dtype, inference parameters,
                                   model fingerprint, code fingerprint (package source, library versions)
    view_<view>.zarr               (Z, Y, X) uint16: the 2D instance ids of every slice of a view, written slab by
                                   slab by the rank that segments it (chunks: one slab along the view's axis)
    parts/<view>_<start:06d>.json  one per finished slab of a view: the :func:`slab_checksum` of its input and of
                                   its 2D labels as written
    input.zarr                     (Z, Y, X) random-access copy of a page-wise input (views other than xy)
    labels3d.zarr                  (Z, Y, X) uint32: linked or fused 3D ids
    core.zarr                      (Z, Y, X) uint32: seed ids of fusion

The arrays are Zarr, chunked and compressed (:mod:`libnet_mmdet.io.chunked`): a rank reads only the chunks its
slab or block needs, and no two ranks write one chunk. A slab's 2D labels are written before its part file, so a
part file means a finished slab: a rerun with the same identity skips a slab whose part records the same input
checksum and whose labels read back as the part records them. A damaged part file (a disk error, a copy cut short)
counts as unfinished, and so do labels that do not read back as recorded (the chunks are not forced to the disk
before the part file is written: after a crash of the machine a chunk can be missing, empty or old): the slab is
segmented again, with a warning. That is always safe, because the view array only caches the model's output on its
slab (same model, parameters and input checksum); refusing to resume would throw away every other finished slab. A
damaged manifest or view array likewise starts the run (or that view) afresh. A folder is only used as a work
folder when it is new, empty or holds a manifest, since it is deleted after a successful run.
"""
import hashlib
import json
import os
import os.path as osp
import shutil
import warnings

import numpy as np

from ..io.chunked import ChunkedVolume, slab_chunks
from ..io.errors import InputError, check_writable
from ..io.files import as_json, write_json
from .views import VIEW_AXIS

MANIFEST = 'manifest.json'
MANIFEST_FORMAT = 4  # 3: 2D labels in chunked view arrays, part files hold checksums; 4: and of the labels
PARTS_DIR = 'parts'
VIEW_LABEL_DTYPE = np.uint16  # 2D ids per slice in the view arrays
VIEW_MAX_ID = np.iinfo(VIEW_LABEL_DTYPE).max


def slab_checksum(slab):
    """Hex digest of a slab's bytes (blake2b, 128 bit)."""
    return hashlib.blake2b(np.ascontiguousarray(slab).tobytes(), digest_size=16).hexdigest()


def _changed_keys(old, new, prefix=''):
    """Dotted keys whose values differ between two JSON-like dicts (a value that is not a dict on either side is
    compared whole)."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if old == new else [prefix.rstrip('.') or 'identity']
    return [key for name in sorted(set(old) | set(new))
            for key in _changed_keys(old.get(name), new.get(name), f'{prefix}{name}.')]


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
        check_writable(self.path, is_folder=True)
        if not osp.lexists(self.path):
            return
        if not osp.isdir(self.path):
            raise InputError(f'{self.path}: exists and is not a folder; give another work folder (--work-dir)')
        entries = os.listdir(self.path)
        if entries and MANIFEST not in entries:
            raise InputError(f'{self.path}: not a work folder of a volume run (it holds other files and no '
                             f'{MANIFEST}; the work folder is deleted after success): give a new or empty folder '
                             '(--work-dir)')

    def finished_slabs(self):
        """How many slabs of any view the folder holds finished (0 for a folder that does not exist)."""
        parts = osp.join(self.path, PARTS_DIR)
        return len(os.listdir(parts)) if osp.isdir(parts) else 0

    def open(self, identity, resume, shape, views, slab):
        """Prepare the folder for a run (one process); returns True when it continues an earlier run.

        ``identity`` (JSON-serialisable) is stored in the manifest. A folder whose manifest has another identity
        or is damaged, or ``resume=False``, is started afresh: its part files and arrays are deleted. The view
        arrays of ``views`` ((Z, Y, X) ``shape``, chunks of ``slab`` slices along each view's axis and z) are
        created where missing or damaged (that view's part files deleted).
        """
        self.check()
        identity = as_json(identity)
        path = osp.join(self.path, MANIFEST)
        manifest = None
        if resume and osp.isfile(path):
            try:
                with open(path, encoding='utf-8') as f:
                    manifest = json.load(f)
            except ValueError as exc:  # JSON or UTF-8 decoding
                warnings.warn(f'{path}: damaged manifest ({exc}); starting the run afresh')
        resumed = manifest == dict(format=MANIFEST_FORMAT, identity=identity)
        finished = self.finished_slabs()
        if isinstance(manifest, dict) and not resumed and finished:
            changed = _changed_keys(manifest.get('identity'), identity) or ['format']
            warnings.warn(f"{self.path}: discarding its {finished} finished slab(s), made with other settings "
                          f"({', '.join(changed[:5])}); the run starts afresh (the earlier settings would have "
                          'resumed them)')
        if not resumed:
            self._delete_all_but_manifest()
            os.makedirs(osp.join(self.path, PARTS_DIR), exist_ok=True)
            write_json(path, dict(format=MANIFEST_FORMAT, identity=identity), indent=1)  # replaces the old one
        for view in views:
            array_path = self.scratch_path(f'view_{view}')
            try:
                ChunkedVolume.open(array_path)
                continue
            except Exception as exc:  # missing, or damaged in one of the ways a store can be
                parts = [part for part in os.listdir(osp.join(self.path, PARTS_DIR)) if part.startswith(f'{view}_')]
                if resumed and (parts or osp.exists(array_path)):  # not a view this run adds
                    warnings.warn(f'{array_path}: missing or damaged ({type(exc).__name__}); segmenting the '
                                  f'{view} view again')
            for part in parts:
                os.remove(osp.join(self.path, PARTS_DIR, part))
            ChunkedVolume.create(array_path, shape, VIEW_LABEL_DTYPE,
                                 slab_chunks(shape, slab, ('z', VIEW_AXIS[view])))
        return resumed

    def scratch_path(self, name):
        """The path of the chunked scratch array ``name`` (``'input'``, ``'view_xy'``, ``'labels3d'``, ...)."""
        return osp.join(self.path, f'{name}.zarr')

    def view(self, view):
        """The (Z, Y, X) array of a view's 2D labels (:class:`~libnet_mmdet.io.chunked.ChunkedVolume`)."""
        return ChunkedVolume.open(self.scratch_path(f'view_{view}'))

    def part_path(self, view, start):
        """The part file of the slab of ``view`` starting at slice ``start``."""
        return osp.join(self.path, PARTS_DIR, f'{view}_{start:06d}.json')

    def part_checksum(self, view, start, stop):
        """The input checksum a finished slab's part file records, or None if there is no part, it is damaged or
        the view array's labels of slices ``start:stop`` do not read back as it records them (both warned: the slab
        is then segmented again, see the module docstring)."""
        path = self.part_path(view, start)
        if not osp.isfile(path):
            return None
        try:
            with open(path, encoding='utf-8') as f:
                part = json.load(f)
            checksum, labels = part['checksum'], part['labels']
            if not (isinstance(checksum, str) and isinstance(labels, str)):
                raise TypeError(f'checksums {checksum!r}, {labels!r}')
        except (ValueError, KeyError, TypeError) as exc:  # JSON / UTF-8 decoding, not a dict with checksums
            warnings.warn(f'{path}: damaged part file ({type(exc).__name__}: {exc}); segmenting this slab again')
            return None
        try:
            if slab_checksum(self.view(view).read(VIEW_AXIS[view], start, stop)) == labels:
                return checksum
            problem = 'other values'
        except Exception as exc:  # a chunk cut short or damaged in one of the ways a store can be
            problem = f'unreadable: {type(exc).__name__}'
        warnings.warn(f"{self.scratch_path(f'view_{view}')}: the {view} labels of slices {start}:{stop} do not read "
                      f'back as {path} records them ({problem}; written just before a crash?); segmenting this slab '
                      'again')
        return None

    def write_part(self, view, start, labels, checksum):
        """Store a finished slab: its (n, h, w) 2D labels (ids up to ``VIEW_MAX_ID``) into the view's array, then
        its part file (atomically) with the checksum of its input and of the labels."""
        labels = np.stack(labels).astype(VIEW_LABEL_DTYPE)
        self.view(view).write(VIEW_AXIS[view], start, labels)
        write_json(self.part_path(view, start), dict(checksum=checksum, labels=slab_checksum(labels)))

    def remove(self):
        """Delete the folder and everything in it, the manifest last."""
        self._delete_all_but_manifest()
        if osp.lexists(osp.join(self.path, MANIFEST)):
            os.remove(osp.join(self.path, MANIFEST))
        os.rmdir(self.path)

    def _delete_all_but_manifest(self):
        """Delete the folder's entries but its manifest, the part files first: a deletion cut short (Ctrl-C while a
        large view array goes) leaves a folder that the next run still takes for a work folder, and in which a slab
        counts as finished only where its part file is left and its labels read back as it records them."""
        if not osp.isdir(self.path):
            return
        for entry in sorted(os.listdir(self.path), key=lambda name: name != PARTS_DIR):
            if entry != MANIFEST:
                entry = osp.join(self.path, entry)
                shutil.rmtree(entry) if osp.isdir(entry) and not osp.islink(entry) else os.remove(entry)
