"""Atomic output files: nothing is ever left half-written where a user (or a resumed run) would read it."""
import contextlib
import json
import os
import tempfile


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


def write_json(path, obj, indent=None):
    """Write ``obj`` as JSON to ``path`` atomically."""
    text = json.dumps(obj, indent=indent)  # the C encoder: json.dump to a stream always runs the Python one
    with atomic_output(path) as f:
        f.write(text)
