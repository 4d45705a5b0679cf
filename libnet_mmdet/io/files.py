"""Atomic output files: nothing is ever left half-written where a user (or a resumed run) would read it."""
import contextlib
import json
import math
import os
import tempfile

import numpy as np


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
        umask = os.umask(0)  # mkstemp creates 0600 files: give the usual permissions of a new file
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
        raise


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
