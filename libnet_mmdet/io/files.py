"""Atomic output files and folders: nothing is ever left half-written where a user (or a resumed run) would read
it."""
import contextlib
import json
import math
import os
import os.path as osp
import shutil
import tempfile

import numpy as np

from .errors import check_output_dir, prepare_output_dir


@contextlib.contextmanager
def atomic_output(path, mode='w'):
    """Open a temporary file next to ``path`` and move it onto ``path`` only when the block succeeds.

    Args:
        path (str | os.PathLike): final file path; its folder is created if missing.
        mode (str): ``'w'`` for text (UTF-8) or ``'wb'`` for bytes.

    Yields:
        file: the open temporary file.
    """
    path = os.fspath(path)
    folder, base = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp_path = tempfile.mkstemp(prefix=f'.{base}.', suffix='.tmp', dir=folder)
    os.close(handle)  # reopened by name: writers such as tifffile need the file's name
    try:
        with open(tmp_path, mode, **({} if 'b' in mode else {'encoding': 'utf-8', 'newline': ''})) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())  # the data are on disk before the file takes its final name
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600 files: the usual permissions of a new file
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
        raise


@contextlib.contextmanager
def output_folder(path, overwrite=False, inputs=()):
    """Fill the output folder ``path`` whole or not at all (the folder counterpart of ``atomic_output``).

    ``path`` is checked as :func:`check_output_dir` checks it (new, empty, or with ``overwrite`` an output folder of
    ours; holding none of ``inputs``). The block writes into a new hidden sibling, ``.<name>.partial-*`` (marked as
    ours), which takes the place of ``path`` when the block ends without an error; an earlier output there is
    removed only then. On an error or an interruption the partial folder is removed and ``path`` is as it was. A
    ``path`` that is a link is followed. Where the folder cannot be swapped (its parent is not writable by this
    user, or ``path`` is a mount point) the block fills ``path`` itself, emptied first (:func:`prepare_output_dir`).

    Yields:
        str: the folder to write into.

    Raises:
        InputError: as :func:`check_output_dir`, before anything is written or removed.
    """
    path = check_output_dir(path, overwrite, inputs)
    target = osp.realpath(path)
    parent, base = osp.split(target)
    os.makedirs(parent, exist_ok=True)  # a new nested output: writable, as checked
    swappable = (os.access(parent, os.W_OK | os.X_OK)
                 and not (osp.isdir(target) and os.stat(target).st_dev != os.stat(parent).st_dev))
    if not swappable:
        yield prepare_output_dir(path, overwrite, inputs)
        return
    partial = tempfile.mkdtemp(prefix=f'.{base}.partial-', dir=parent)
    old = None
    try:
        prepare_output_dir(partial)  # marked as ours
        yield partial
        os.chmod(partial, 0o777 & ~_umask())  # mkdtemp makes 0700 folders: the usual permissions of a new one
        if osp.lexists(target):  # empty, or an earlier output of ours (checked): set aside until the new one is in
            old = tempfile.mkdtemp(prefix=f'.{base}.old-', dir=parent)
            os.replace(target, old)
        os.replace(partial, target)
    except BaseException:
        if old is not None and not osp.lexists(target):  # stopped between the two renames: the earlier one back
            os.replace(old, target)
            old = None
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _umask():
    """The process's file-creation mask (reading it means setting it: set back at once)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def json_safe(obj):
    """``obj`` with every NaN or infinite float (nested in dicts, lists, tuples; tuples become lists) replaced by
    ``None``, and numpy numbers (``np.float32``, ``np.int64``, ``np.bool_``) made Python ones: what
    :func:`write_json` writes (JSON has no NaN, and ``json`` writes no numpy number but ``np.float64``)."""
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(value) for value in obj]
    return obj


def as_json(obj):
    """``obj`` as it reads back from a file :func:`write_json` wrote (tuples become lists, NaN ``None``), so that a
    record compares equal to its file."""
    return json.loads(json.dumps(json_safe(obj), allow_nan=False))


def write_json(path, obj, indent=None):
    """Write ``obj`` as JSON to ``path`` atomically; a NaN or infinite float is written as ``null``.

    ``json.dumps`` writes them as ``NaN`` / ``Infinity``, which strict JSON readers (JavaScript, ``jq``, pandas with
    the C parser) refuse; a missing value is ``null`` in every output of this package.
    """
    try:  # the C encoder: json.dump to a stream always runs the Python one
        text = json.dumps(obj, indent=indent, allow_nan=False)
    except (ValueError, TypeError):  # NaN, or a numpy number
        text = json.dumps(json_safe(obj), indent=indent, allow_nan=False)
    with atomic_output(path) as f:
        f.write(text)
