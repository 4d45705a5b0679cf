"""The project's one error type for bad input, and the rule for outputs that already exist.

Every error a user can cause by what they pass (a file that cannot be used, a bad argument, an output that would
replace another) is an :class:`InputError` whose message starts with the file or argument it is about, so that a
command-line tool can print it as one line: ``error: <file>: <problem>``.
"""
import math
import numbers
import os
import os.path as osp
import shutil

#: The file a tool leaves in every output folder it fills: ``overwrite`` only ever empties folders that hold it.
OUTPUT_MARKER = '.libnet_mmdet_output'


class InputError(ValueError):
    """Bad input: the message names the file (and slice, entry, ...) or the argument, then the problem."""


def check_int(value, name, minimum=0):
    """``value`` as an int, checked: an integer (numpy integers too; not a bool, not a float such as 2.0) that is at
    least ``minimum``.

    Raises:
        InputError: ``<name> must be an integer >= <minimum>, got <value>``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(f'{name} must be an integer >= {minimum}, got {value!r}')
    return int(value)


def check_min_voxels(value, name='min_voxels'):
    """``value`` checked as a ``min_voxels`` argument: ``'auto'`` as it is, else an int >= 0 (as :func:`check_int`).

    Raises:
        InputError: ``<name> must be 'auto' or an integer >= 0, got <value>``.
    """
    if isinstance(value, str) and value == 'auto':
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise InputError(f"{name} must be 'auto' or an integer >= 0, got {value!r}")
    return int(value)


def is_number_in(value, low=-math.inf, high=math.inf, low_open=False, high_open=False):
    """Whether ``value`` is a finite real number (numpy numbers too; not a bool, not NaN) from ``low`` to ``high``,
    either bound left out when ``low_open`` / ``high_open``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    if not isinstance(value, numbers.Integral) and not math.isfinite(value):  # a huge int is finite (no float)
        return False
    return (low < value if low_open else low <= value) and (value < high if high_open else value <= high)


def check_number(value, name, low=0, high=math.inf, low_open=False, high_open=False, unit=None):
    """``value`` as a float, checked: :func:`is_number_in` the range from ``low`` to ``high``.

    Raises:
        InputError: ``<name> must be a number >= <low> (<unit>), got <value>`` (``must be in (<low>, <high>]``
            where ``high`` is finite).
    """
    if not is_number_in(value, low, high, low_open, high_open):
        if high == math.inf:
            bounds = f"a number {'>' if low_open else '>='} {low:g}"
        else:
            bounds = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise InputError(f"{name} must be {bounds}{f' ({unit})' if unit else ''}, got {value!r}")
    return float(value)


def is_inside(path, folder):
    """True when ``path`` is ``folder`` or lies inside it (links resolved; neither needs to exist)."""
    path, folder = osp.realpath(path), osp.realpath(folder)
    return osp.commonpath([path, folder]) == folder


def _names_inside(path, folder):
    """True when the name ``path`` lies in ``folder`` as written (a link there to a file elsewhere is still an entry
    of the folder, which emptying it would remove)."""
    path, folder = osp.abspath(path), osp.abspath(folder)
    return osp.commonpath([path, folder]) == folder


def _paths(inputs):
    return [os.fspath(source) for source in inputs if isinstance(source, (str, os.PathLike))]


def check_writable(path, is_folder=False):
    """Raise :class:`InputError` unless ``path`` can be created or written by this user: the nearest existing path
    it would be made in (a folder ``path`` itself, if it exists) must be a folder (not a file such as the
    ``notes.txt`` of ``notes.txt/sub/out.tif``) that allows writing (``os.access``; nothing is written).
    ``InputError``: ``<path>: cannot write there (<folder> is not a folder)`` or ``(<folder> is not writable by
    this user)``."""
    folder = osp.abspath(path) if is_folder and osp.isdir(path) else osp.dirname(osp.abspath(path))
    while not osp.exists(folder):
        folder = osp.dirname(folder)
    if not osp.isdir(folder):
        raise InputError(f'{path}: cannot write there ({folder} is not a folder)')
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f'{path}: cannot write there ({folder} is not writable by this user)')


def check_output_file(path, overwrite=False, inputs=()):
    """Raise :class:`InputError` unless ``path`` can be written as a file: it must not be one of ``inputs`` (paths;
    other items are ignored) nor a folder, and must not exist unless ``overwrite``. Nothing is written or removed
    (writers replace the file atomically).

    Returns:
        str: ``path``.
    """
    path = os.fspath(path)
    for source in _paths(inputs):
        if osp.realpath(source) == osp.realpath(path):
            raise InputError(f'{path}: the output would overwrite the input {source}')
    if osp.isdir(path):
        raise InputError(f'{path}: is a folder; give a file name for the output')
    if osp.lexists(path) and not overwrite:
        raise InputError(f'{path}: exists; pass --overwrite (overwrite=True) to replace it')
    check_writable(path)  # also: a file where a folder on the way to ``path`` should be
    return path


def check_output_dir(path, overwrite=False, inputs=()):
    """Raise :class:`InputError` unless ``path`` can be filled as a new output folder: it must not exist, be
    empty (or hold nothing but :data:`OUTPUT_MARKER`: a run that stopped before it wrote anything), or (with
    ``overwrite``) be an output folder of ours (it holds :data:`OUTPUT_MARKER`), which :func:`prepare_output_dir`
    will empty. It must not hold any of ``inputs`` (paths, existing or to be written; other items are ignored),
    not even with ``overwrite``. Nothing is written or removed.

    Returns:
        str: ``path``.
    """
    path = os.fspath(path)
    for source in _paths(inputs):
        if is_inside(source, path) or _names_inside(source, path):
            raise InputError(f'{path}: the output folder holds the input {source}; choose another folder')
    if not osp.lexists(path):
        check_writable(path)
        return path
    if not osp.isdir(path):
        raise InputError(f'{path}: exists and is not a folder')
    check_writable(path, is_folder=True)
    entries = os.listdir(path)
    if not set(entries) - {OUTPUT_MARKER}:
        return path
    if not overwrite:
        raise InputError(f'{path}: folder is not empty; pass --overwrite (overwrite=True) to replace what an '
                         'earlier run wrote there, or choose a new folder')
    if OUTPUT_MARKER not in entries:
        raise InputError(f'{path}: folder is not empty and was not written by libnet-mmdet ({OUTPUT_MARKER} '
                         'missing): --overwrite only empties output folders of ours; choose a new folder')
    return path


def prepare_output_dir(path, overwrite=False, inputs=()):
    """Create the output folder ``path`` (new, or emptied when ``overwrite`` allows it and it holds none of
    ``inputs``, see :func:`check_output_dir`) and mark it as ours, so that one folder never mixes the files of two
    runs.

    Returns:
        str: ``path``.
    """
    path = check_output_dir(path, overwrite, inputs)
    if osp.isdir(path):
        for name in os.listdir(path):
            entry = osp.join(path, name)
            if osp.isdir(entry) and not osp.islink(entry):
                shutil.rmtree(entry)
            else:
                os.remove(entry)
    os.makedirs(path, exist_ok=True)
    with open(osp.join(path, OUTPUT_MARKER), 'w', encoding='utf-8') as marker:
        marker.write('written by libnet-mmdet; `--overwrite` may empty this folder\n')
    return path
