"""Summary statistics, PNG plots and the on-disk report (CSV, JSON, Markdown, PNG) of a particle table."""
import os

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..io import InputError, atomic_output, check_labels, check_min_voxels, output_folder, write_json, write_tiff
from ..io.images import check_finite
from ..volume.labels import min_voxels_for_particles
from ..visualization.render import render_labels, write_png
from .particles import PHASES_MODEL, PHASES_MULTI_OTSU, PHASES_NONE
from .phases import check_phases

REPORT_DPI = 120  # resolution of the report's PNG plots
#: Columns of a particle table that :func:`summarize` reads (and ``voxels`` unless ``min_voxels`` is 0).
SUMMARY_COLUMNS = ('esd_um', 'volume_um3', 'sphericity', 'damage', 'touches_border', 'surface_fraction_pore',
                   'surface_fraction_carbon_binder', 'surface_fraction_particle', 'phase_source')

_PHASE_NOTE = {
    PHASES_MODEL: 'carbon-binder and pore predicted by the phase model (its accuracy: BENCHMARKS.md)',
    PHASES_MULTI_OTSU: 'approximate: carbon-binder and pore from a multi-Otsu segmentation of the grayscale image',
    PHASES_NONE: 'no phase volume or image given: carbon-binder / pore / particle contact not computed, and damage '
                 'counts only the voids the labels leave out (0 for filled labels, as the models give)',
}


def check_particle_table(df, columns, name='df'):
    """Raise unless ``df`` is a pandas DataFrame with every one of ``columns`` (a particle table).

    Raises:
        TypeError: ``<name>: not a particle_table (a pandas DataFrame), got <type>``.
        InputError: ``<name>: not a particle_table (missing columns ...)``.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f'{name}: not a particle_table (a pandas DataFrame), got {type(df).__name__}')
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise InputError(f"{name}: not a particle_table (missing columns {', '.join(missing)})")


def summarize(df, exclude_border=False, min_voxels=0):
    """Summary of a particle table from :func:`~libnet_mmdet.analysis.particle_table`.

    Args:
        df (pandas.DataFrame): the particle table.
        exclude_border (bool): leave out the particles that touch the volume border (cut, so biased small).
        min_voxels (int | str): leave out the particles of fewer voxels: specks, whose damage and contact fractions
            are those of a few voxels; ``'auto'``: :func:`~libnet_mmdet.volume.min_voxels_for_particles` of the
            particles ``exclude_border`` keeps (a sphere a third of their median equivalent diameter across; 0 when
            it keeps none); 0 keeps all (a table without a ``voxels`` column needs 0).

    Returns:
        dict: ``n_particles``, ``n_touching_border``, ``exclude_border``, ``min_voxels`` (resolved),
        ``n_below_min_voxels``, ``total_volume_um3``, ``esd_um``
        (``mean``, ``d10``, ``d50``, ``d90``: number-weighted percentiles), ``mean_sphericity``, ``mean_damage``,
        ``mean_detachment`` (mean ``surface_fraction_pore``), ``mean_contact_carbon_binder``,
        ``mean_contact_particle``, ``phase_source`` and ``note`` (why contact values are approximate or missing,
        ``''`` when given); plain Python numbers, JSON-serialisable. Means of contact fractions skip NaN; a value
        that cannot be computed is ``None``.

    Raises:
        TypeError: ``df`` is not a DataFrame.
        InputError: ``df`` lacks a column of :data:`SUMMARY_COLUMNS` (or ``voxels``, needed unless ``min_voxels``
            is 0), or ``min_voxels`` is neither ``'auto'`` nor an integer >= 0.
    """
    min_voxels = check_min_voxels(min_voxels)
    check_particle_table(df, SUMMARY_COLUMNS + (('voxels',) if min_voxels else ()))
    n_touching = int(df['touches_border'].sum())
    phase_source = str(df['phase_source'].iloc[0]) if len(df) else df.attrs.get('phase_source', PHASES_NONE)
    if exclude_border:
        df = df[~df['touches_border']]
    if min_voxels == 'auto':
        min_voxels = min_voxels_for_particles(df['voxels']) if len(df) else 0
    n_small = 0
    if min_voxels:
        n_small = int((df['voxels'] < min_voxels).sum())
        df = df[df['voxels'] >= min_voxels]
    esd = df['esd_um'].to_numpy(dtype=np.float64)
    d10, d50, d90 = np.percentile(esd, [10, 50, 90]) if esd.size else (np.nan,) * 3
    return {
        'n_particles': int(len(df)),
        'n_touching_border': n_touching,
        'exclude_border': bool(exclude_border),
        'min_voxels': int(min_voxels),
        'n_below_min_voxels': n_small,
        'total_volume_um3': _number(df['volume_um3'].sum()),
        'esd_um': {'mean': _number(esd.mean() if esd.size else np.nan), 'd10': _number(d10),
                   'd50': _number(d50), 'd90': _number(d90)},
        'mean_sphericity': _mean(df['sphericity']),
        'mean_damage': _mean(df['damage']),
        'mean_detachment': _mean(df['surface_fraction_pore']),
        'mean_contact_carbon_binder': _mean(df['surface_fraction_carbon_binder']),
        'mean_contact_particle': _mean(df['surface_fraction_particle']),
        'phase_source': phase_source,
        'note': _PHASE_NOTE.get(phase_source, ''),
    }


def _number(value):
    value = float(value)
    return value if np.isfinite(value) else None


def _mean(series):
    values = series.to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    return _number(values.mean()) if values.size else None


def summary_markdown(summary):
    """The summary dict of :func:`summarize` as a short Markdown report."""
    def fmt(value, digits=3):
        return 'n/a' if value is None else f'{value:.{digits}f}'

    esd = summary['esd_um']
    specks = (f"; {summary['n_below_min_voxels']} of fewer than {summary['min_voxels']} voxels, excluded"
              if summary['min_voxels'] else '')
    lines = [
        '# Particle statistics', '',
        '| quantity | value |', '|---|---|',
        f"| particles | {summary['n_particles']} ({summary['n_touching_border']} touch the volume border"
        f"{', excluded' if summary['exclude_border'] else ''}"
        f"{specks}) |",
        f"| total volume (µm³) | {fmt(summary['total_volume_um3'])} |",
        f"| ESD mean / D10 / D50 / D90 (µm) | {fmt(esd['mean'])} / {fmt(esd['d10'])} / {fmt(esd['d50'])} / "
        f"{fmt(esd['d90'])} |",
        f"| mean sphericity | {fmt(summary['mean_sphericity'])} |",
        f"| mean damage (crack / hollow fraction) | {fmt(summary['mean_damage'])} |",
        f"| mean detachment (surface fraction facing pore) | {fmt(summary['mean_detachment'])} |",
        f"| mean surface fraction facing carbon-binder | {fmt(summary['mean_contact_carbon_binder'])} |",
        f"| mean surface fraction facing other particles | {fmt(summary['mean_contact_particle'])} |",
        f"| phases | {summary['phase_source']} |",
    ]
    if summary['note']:
        lines += ['', f"**Note:** {summary['note']}."]
    return '\n'.join(lines) + '\n'


def _scatter(path, x, y, xlabel, ylabel, title):
    figure = Figure(figsize=(5, 4), layout='constrained')
    axes = figure.add_subplot()
    axes.scatter(x, y, s=8, alpha=0.6, edgecolors='none')
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axes.grid(alpha=0.3)
    write_png(path, figure, dpi=REPORT_DPI)


def _slice_panels(path, labels_zyx, background_zyx, centre_zyx, background_name, value_range=None):
    """Three orthogonal slices through ``centre_zyx`` of ``background_zyx`` with the labels overlaid
    (``value_range``: the background values shown black and white in every panel; None: each slice's own)."""
    figure = Figure(figsize=(13, 4.9), layout='constrained')
    figure.suptitle(f'particles (colour, yellow boundaries) over {background_name}')
    views = (('XY plane, z = {}', 0), ('XZ plane, y = {}', 1), ('YZ plane, x = {}', 2))
    for column, (title, axis) in enumerate(views):
        index = int(centre_zyx[axis])
        overlay = render_labels(np.take(background_zyx, index, axis=axis), np.take(labels_zyx, index, axis=axis),
                                intensity_range=value_range)
        axes = figure.add_subplot(1, 3, column + 1)
        axes.imshow(overlay, interpolation='nearest')
        axes.set_title(title.format(index))
        axes.set_axis_off()
    write_png(path, figure, dpi=REPORT_DPI)


def plot_report(df, out_dir, labels_zyx=None, image_zyx=None, phases_zyx=None):
    """Write the report plots of a particle table as PNG files (matplotlib, Agg backend, atomic writes).

    Files: ``esd_histogram.png``, ``sphericity_vs_esd.png``; with contact fractions (phase volume or image
    given): ``detachment_vs_esd.png``, ``detachment_vs_depth.png``; with ``labels_zyx``: ``slices.png`` (the
    three orthogonal central slices of ``image_zyx``, else ``phases_zyx``, else the label mask, with the
    labels overlaid in colour and their boundaries in yellow).

    Args:
        df (pandas.DataFrame): table from :func:`~libnet_mmdet.analysis.particle_table`.
        out_dir (str | os.PathLike): existing or new folder.
        labels_zyx, image_zyx, phases_zyx (np.ndarray | None): (Z, Y, X) volumes of the same shape.

    Returns:
        list[str]: paths of the files written.
    """
    os.makedirs(out_dir, exist_ok=True)
    written = []

    def path(name):
        written.append(os.path.join(out_dir, name))
        return written[-1]

    figure = Figure(figsize=(5, 4), layout='constrained')
    axes = figure.add_subplot()
    axes.hist(df['esd_um'], bins=min(50, max(5, len(df) // 5)), color='tab:blue', edgecolor='white')
    for name, value, style in zip(('D10', 'D50', 'D90'), np.percentile(df['esd_um'], [10, 50, 90]), (':', '-', '--')):
        axes.axvline(value, color='black', linestyle=style, linewidth=1, label=f'{name} = {value:.3g} µm')
    axes.legend(fontsize='small')
    axes.set(xlabel='equivalent spherical diameter (µm)', ylabel='particles', title=f'ESD, n = {len(df)}')
    write_png(path('esd_histogram.png'), figure, dpi=REPORT_DPI)
    _scatter(path('sphericity_vs_esd.png'), df['esd_um'], df['sphericity'], 'ESD (µm)', 'sphericity',
             'Sphericity vs size')
    if df['surface_fraction_pore'].notna().any():
        approximate = ' (approximate phases)' if df['phase_source'].iloc[0] == PHASES_MULTI_OTSU else ''
        ylabel = 'detachment (surface fraction facing pore)'
        _scatter(path('detachment_vs_esd.png'), df['esd_um'], df['surface_fraction_pore'], 'ESD (µm)', ylabel,
                 'Detachment vs size' + approximate)
        depth_axis, depth_from = df.attrs.get('depth_axis'), df.attrs.get('depth_from')
        reference = f' along {depth_axis} from the {depth_from} side' if depth_axis and depth_from else ''
        _scatter(path('detachment_vs_depth.png'), df['depth_um'], df['surface_fraction_pore'],
                 f'depth{reference} (µm)', ylabel,  # a table read back from particles.csv: no reference known
                 'Detachment vs depth' + approximate)
    if labels_zyx is not None:
        labels_zyx = np.asarray(labels_zyx)
        # codes keep their shade in every panel (a panel without carbon-binder showed NMC white)
        background, name, value_range = next(
            (v, n, r) for v, n, r in ((image_zyx, 'the grayscale image', None),
                                      (phases_zyx, 'the phases (black pore, gray NMC, white carbon-binder)', (0, 2)),
                                      (labels_zyx != 0, 'the particle mask', (0, 1))) if v is not None)
        _slice_panels(path('slices.png'), labels_zyx, np.asarray(background), np.array(labels_zyx.shape) // 2, name,
                      value_range)
    return written


def write_report(df, out_dir, labels_zyx=None, image_zyx=None, phases_zyx=None, exclude_border=False,
                 min_voxels=0, overwrite=False):
    """Write ``particles.csv``, ``summary.json``, ``summary.md`` and the plots of :func:`plot_report` to ``out_dir``,
    and ``phases.tif`` (uint8 (Z, Y, X), 0 pore, 1 NMC, 2 carbon-binder, with the voxel size) when ``phases_zyx``
    is given (with ``labels_zyx``) and the phases were predicted by a phase model (``df.attrs['phase_source'] ==
    'model'``).

    ``out_dir`` holds one report only: it must be new or empty, or, with ``overwrite``, a report folder of an
    earlier run, which the new report replaces whole once it is complete (:func:`~libnet_mmdet.io.output_folder`), so
    that no file of another run (a detachment plot of a run with phases) stays next to this summary and a failure
    half-way leaves the earlier report as it was.
    ``summary.json`` also records ``df.attrs`` (voxel size, depth reference, phase source and thresholds) under
    ``"settings"``. ``exclude_border`` and ``min_voxels`` leave particles out of the summary as :func:`summarize`
    does (the CSV and the plots keep every particle).

    Args:
        df (pandas.DataFrame): the table of :func:`~libnet_mmdet.analysis.particle_table`.
        out_dir (str | os.PathLike): the report folder.
        labels_zyx (np.ndarray | None): (Z, Y, X) integer labels of the volume ``df`` was measured on, for
            ``slices.png``.
        image_zyx (np.ndarray | None): (Z, Y, X) grayscale of the same shape, finite (the slices' background).
        phases_zyx (np.ndarray | None): (Z, Y, X) phase volume of the same shape (0 pore, 1 NMC, 2 carbon-binder).
        exclude_border, min_voxels: as :func:`summarize`.
        overwrite (bool): empty ``out_dir`` first when it is a report folder of an earlier run.

    Returns:
        dict: the summary (:func:`summarize`).

    Raises:
        InputError: ``out_dir`` exists and is not empty (without ``overwrite``), is not a folder, or holds files
            of something else than a report.
        TypeError / ValueError: ``df`` is not a particle table (:func:`check_particle_table`: not a DataFrame, or
            a column of :data:`SUMMARY_COLUMNS` or ``depth_um`` missing; InputError: no row), ``labels_zyx`` is
            not a 3D label volume or not of the shape ``df.attrs['volume_shape']`` records, ``image_zyx`` /
            ``phases_zyx`` (checked by :func:`~libnet_mmdet.analysis.phases.check_phases`) differ from it in shape,
            ``image_zyx`` holds NaN/Inf (ImageFormatError), ``image_zyx`` or ``phases_zyx`` is given without
            ``labels_zyx`` (ValueError: they are drawn with it), or ``min_voxels`` is neither ``'auto'`` nor an
            int >= 0 (InputError); before anything is written.
    """
    check_particle_table(df, SUMMARY_COLUMNS + ('depth_um',))  # the plots need the depth too
    if len(df) == 0:  # before any file: the histograms failed after the table and summary were written
        raise InputError('df: an empty particle table (no particle to report)')
    if labels_zyx is not None:
        labels_zyx = check_labels(labels_zyx, 'labels_zyx', allow_empty=True)
        volume_shape = df.attrs.get('volume_shape')  # None for a table read back from particles.csv
        if volume_shape is not None and labels_zyx.shape != tuple(volume_shape):
            raise ValueError(f'labels_zyx: shape {labels_zyx.shape} is not the shape of the volume df was measured '
                             f"on, {tuple(volume_shape)} (df.attrs['volume_shape'])")
        if image_zyx is not None:
            if np.shape(image_zyx) != labels_zyx.shape:
                raise ValueError(f'image_zyx: shape {np.shape(image_zyx)} does not match labels_zyx shape '
                                 f'{labels_zyx.shape}')
            image_zyx = check_finite(np.asarray(image_zyx), 'image_zyx')  # NaN would draw its slice panel black
        if phases_zyx is not None:
            phases_zyx = check_phases(phases_zyx, labels_zyx.shape).astype(np.uint8, copy=False)
    elif image_zyx is not None or phases_zyx is not None:
        raise ValueError('write_report: image_zyx and phases_zyx are drawn with labels_zyx: pass it too')
    summary = summarize(df, exclude_border=exclude_border, min_voxels=min_voxels)  # its errors before any write
    with output_folder(out_dir, overwrite) as folder:
        with atomic_output(os.path.join(folder, 'particles.csv')) as stream:
            df.to_csv(stream, index=False)
        write_json(os.path.join(folder, 'summary.json'), {**summary, 'settings': dict(df.attrs)}, indent=2)
        with atomic_output(os.path.join(folder, 'summary.md')) as stream:
            stream.write(summary_markdown(summary))
        plot_report(df, folder, labels_zyx=labels_zyx, image_zyx=image_zyx, phases_zyx=phases_zyx)
        if phases_zyx is not None and df.attrs.get('phase_source') == PHASES_MODEL:
            write_tiff(os.path.join(folder, 'phases.tif'), phases_zyx, df.attrs.get('voxel_size_nm'))
    return summary
