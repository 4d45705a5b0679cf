"""summarize, write_report / plot_report outputs, and read_volume's voxel-size metadata."""
import json
import os

import numpy as np
import pandas as pd
import pytest
import tifffile
from matplotlib.image import imread

from libnet_mmdet.analysis import NMC, PORE, particle_table, summarize, write_report
from libnet_mmdet.analysis.report import plot_report, summary_markdown
from libnet_mmdet.io import InputError, atomic_output, read_volume
from libnet_mmdet.io.errors import OUTPUT_MARKER
from libnet_mmdet.volume import min_voxels_for_particles


def _table(esd, touches_border, pore=None):
    n = len(esd)
    return pd.DataFrame({
        'esd_um': esd, 'volume_um3': np.pi / 6 * np.asarray(esd) ** 3, 'sphericity': np.linspace(0.8, 0.9, n),
        'damage': np.zeros(n), 'touches_border': touches_border, 'depth_um': np.arange(n, dtype=float),
        'surface_fraction_pore': np.full(n, np.nan) if pore is None else pore,
        'surface_fraction_carbon_binder': np.full(n, np.nan) if pore is None else 1 - np.asarray(pore),
        'surface_fraction_particle': np.full(n, np.nan) if pore is None else np.zeros(n),
        'phase_source': 'none' if pore is None else 'given'})


def test_summarize_percentiles_means_and_border_exclusion():
    esd = np.arange(1.0, 11.0)
    df = _table(esd, [False] * 9 + [True], pore=np.linspace(0, 0.9, 10))

    summary = summarize(df)
    inner = summarize(df, exclude_border=True)

    assert summary['n_particles'] == 10 and summary['n_touching_border'] == 1
    assert summary['esd_um'] == pytest.approx({'mean': 5.5, 'd10': 1.9, 'd50': 5.5, 'd90': 9.1})
    assert summary['mean_detachment'] == pytest.approx(0.45)
    assert summary['mean_contact_carbon_binder'] == pytest.approx(0.55)
    assert summary['mean_sphericity'] == pytest.approx(0.85)
    assert summary['note'] == ''
    assert inner['n_particles'] == 9 and inner['n_touching_border'] == 1 and inner['exclude_border']
    assert inner['esd_um']['d50'] == pytest.approx(5.0)
    json.dumps(summary)  # plain Python numbers


def test_summarize_leaves_specks_out():
    df = _table(np.arange(1.0, 11.0), [True] + [False] * 9, pore=np.linspace(0, 0.9, 10))
    df['voxels'] = [1, 2, 30] + [4000] * 7  # median diameter (6 * 4000 / pi) ** (1/3) = 19.7 voxels: auto 148

    kept = summarize(df, min_voxels=100)
    auto = summarize(df, min_voxels='auto')
    inner = summarize(df, exclude_border=True, min_voxels=100)

    assert kept['n_particles'] == 7 and kept['n_below_min_voxels'] == 3 and kept['min_voxels'] == 100
    assert kept['mean_detachment'] == pytest.approx(np.mean(np.linspace(0, 0.9, 10)[3:]))
    assert auto['min_voxels'] == min_voxels_for_particles(df['voxels']) == 148 and auto['n_particles'] == 7
    assert inner['n_particles'] == 7 and inner['n_below_min_voxels'] == 2  # the border speck counted as cut
    assert summarize(df)['n_below_min_voxels'] == 0 and summarize(df)['min_voxels'] == 0
    assert summarize(df, min_voxels=np.int64(100)) == kept
    with pytest.raises(InputError, match="min_voxels must be 'auto' or an integer >= 0, got -1"):
        summarize(df, min_voxels=-1)


def test_auto_min_voxels_follows_the_particles_the_summary_keeps(tmp_path):
    df = _table(np.arange(1.0, 11.0), [True] * 6 + [False] * 4, pore=np.linspace(0, 0.9, 10))
    df['voxels'] = [8000] * 6 + [50, 60, 1000, 1000]  # the big ones are cut by the border

    everything = summarize(df, min_voxels='auto')
    inner = summarize(df, exclude_border=True, min_voxels='auto')
    gone = summarize(df, min_voxels=10 ** 6)

    assert everything['min_voxels'] == min_voxels_for_particles([8000]) and everything['n_particles'] == 8
    assert inner['min_voxels'] == min_voxels_for_particles([50, 60, 1000, 1000]) == 12 and inner['n_particles'] == 4
    assert gone['n_particles'] == 0 and gone['n_below_min_voxels'] == 10 and gone['mean_detachment'] is None
    assert gone['phase_source'] == 'given' and 'n/a' in summary_markdown(gone)
    with pytest.raises(InputError, match="min_voxels must be 'auto' or an integer >= 0, got 'Auto'"):
        write_report(df, tmp_path / 'report', min_voxels='Auto')
    assert not (tmp_path / 'report').exists()  # refused before the folder was made
    with pytest.raises(InputError, match='df: an empty particle table'):  # the histograms failed half-way
        write_report(df.iloc[:0], tmp_path / 'report')
    assert not (tmp_path / 'report').exists()


@pytest.mark.parametrize('voxels, message', [([], 'expected a 1D array of particle sizes, got shape \\(0,\\)'),
                                             ([[1, 2]], 'got shape \\(1, 2\\)'),
                                             ([10, 0, np.nan], 'must be finite and > 0, got \\[0.0, nan\\]')])
def test_min_voxels_for_particles_refuses_what_has_no_median_size(voxels, message):
    with pytest.raises(ValueError, match=message):
        min_voxels_for_particles(voxels)


def test_summarize_without_phases_flags_missing_contacts():
    summary = summarize(_table([1.0, 2.0], [False, False]))
    assert summary['mean_detachment'] is None and 'not computed' in summary['note']
    assert 'damage counts only the voids the labels leave out' in summary['note']  # a filled label's 0 is no measure


def test_the_depth_plot_names_its_reference_only_when_the_table_knows_it(tmp_path, monkeypatch):
    """A table read back from particles.csv has no attrs: its depth axis was labelled 'along z from the low side'
    whatever the table was made with."""
    import libnet_mmdet.analysis.report as report
    xlabels = []
    monkeypatch.setattr(report, '_scatter', lambda path, x, y, xlabel, *args: xlabels.append(xlabel))
    table = _table([1.0, 2.0], [False] * 2, pore=[0.2, 0.4])
    table.attrs.update(depth_axis='x', depth_from='high')
    plot_report(table, tmp_path)
    table.to_csv(tmp_path / 'particles.csv', index=False)
    plot_report(pd.read_csv(tmp_path / 'particles.csv'), tmp_path)
    depth_labels = [xlabel for xlabel in xlabels if xlabel.startswith('depth')]
    assert depth_labels == ['depth along x from the high side (µm)', 'depth (µm)']


def test_the_slices_over_phases_keep_each_code_shade_in_every_panel(tmp_path, phantoms, monkeypatch):
    """Visualization audit: each panel was stretched to its own values, so NMC showed white in a panel without
    carbon-binder and black in one without pore, against the title's 'black pore, white carbon-binder'."""
    import libnet_mmdet.analysis.report as report
    shape = (24, 28, 32)
    labels = np.zeros(shape, np.uint16)
    labels[phantoms.ball_mask(shape, (11.5, 13.5, 15.5), 6)] = 1
    phases = np.where(labels > 0, NMC, PORE).astype(np.uint8)  # no carbon-binder at all
    ranges, original = [], report.render_labels

    def render(image, labels_hw, intensity_range=None):
        ranges.append(intensity_range)
        return original(image, labels_hw, intensity_range=intensity_range)
    monkeypatch.setattr(report, 'render_labels', render)
    write_report(particle_table(labels, phases, voxel_size_nm=50), tmp_path / 'r', labels_zyx=labels,
                 phases_zyx=phases)
    assert ranges == [(0, 2)] * 3


def test_write_report_files(tmp_path, phantoms):
    shape = (24, 28, 32)
    labels = np.zeros(shape, np.uint16)
    labels[phantoms.ball_mask(shape, (11.5, 9, 9), 6)] = 1
    labels[phantoms.ball_mask(shape, (11.5, 18, 22), 7)] = 2
    phases = np.where(labels > 0, NMC, PORE).astype(np.uint8)
    df = particle_table(labels, phases, voxel_size_nm=50)
    out = tmp_path / 'report'

    umask = os.umask(0o022)  # one that leaves group and other bits (the temporary file is 0600 whatever the umask)
    try:
        summary = write_report(df, out, labels_zyx=labels, phases_zyx=phases)
    finally:
        os.umask(umask)

    expected = {'particles.csv', 'summary.json', 'summary.md', 'esd_histogram.png', 'sphericity_vs_esd.png',
                'detachment_vs_esd.png', 'detachment_vs_depth.png', 'slices.png', OUTPUT_MARKER}
    assert set(os.listdir(out)) == expected  # no temporary file left behind (the marker: a report folder)
    table = pd.read_csv(out / 'particles.csv')
    assert list(table['id']) == [1, 2] and not table.drop(columns='phase_source').isna().any().any()
    saved = json.loads((out / 'summary.json').read_text())
    assert saved['n_particles'] == 2 == summary['n_particles']
    assert saved['settings']['voxel_size_nm'] == [50, 50, 50] and saved['settings']['phase_source'] == 'given'
    assert 'D10 / D50 / D90' in (out / 'summary.md').read_text()
    slices = imread(out / 'slices.png')
    assert slices.ndim == 3 and slices.shape[1] > 2 * slices.shape[0]  # three panels side by side
    assert os.stat(out / 'summary.json').st_mode & 0o777 == 0o644  # as open() makes it, not the temp file's


def test_write_report_refuses_a_nan_image_or_labels_of_another_volume(tmp_path, phantoms):
    """Audit #9: a NaN image drew its slice panel black; labels of another volume than df's went unnoticed."""
    shape = (12, 20, 20)
    labels = phantoms.ball_mask(shape, (5.5, 9.5, 9.5), 4).astype(np.uint16)
    df = particle_table(labels, voxel_size_nm=50)
    image = np.where(labels > 0, 200.0, 20.0)
    image[:, 0, 0] = np.nan
    out = tmp_path / 'report'
    with pytest.raises(ValueError, match=r'image_zyx: 12 NaN/Inf pixel\(s\), first at index \(0, 0, 0\)'):
        write_report(df, out, labels_zyx=labels, image_zyx=image)
    with pytest.raises(ValueError, match=r"labels_zyx: shape \(8, 20, 20\) is not the shape of the volume df was "
                                         r"measured on, \(12, 20, 20\) \(df.attrs\['volume_shape'\]\)"):
        write_report(df, out, labels_zyx=labels[:8])
    assert not out.exists()  # refused before the folder was made


def test_summarize_and_write_report_refuse_what_is_not_a_particle_table(tmp_path):
    """Audit #19: KeyError / AttributeError from deep inside instead of one clear error."""
    out = tmp_path / 'report'
    with pytest.raises(ValueError, match=r'df: not a particle_table \(missing columns esd_um, volume_um3, '):
        summarize(pd.DataFrame())
    with pytest.raises(TypeError, match=r'df: not a particle_table \(a pandas DataFrame\), got dict'):
        write_report({'a': 1}, out)
    table = _table([1.0, 2.0], [False, False])
    with pytest.raises(ValueError, match=r'df: not a particle_table \(missing columns touches_border, depth_um\)'):
        write_report(table.drop(columns=['touches_border', 'depth_um']), out)
    with pytest.raises(ValueError, match=r'df: not a particle_table \(missing columns voxels\)$'):
        summarize(table, min_voxels=10)  # without min_voxels, a table needs no voxels column
    assert summarize(table)['n_particles'] == 2 and not out.exists()


def test_write_report_never_mixes_two_reports(tmp_path):
    """Issue 17, defect 1: a second report into the same folder is refused, or (overwrite) replaces the first."""
    out = tmp_path / 'report'
    write_report(_table([1.0, 2.0, 3.0], [False] * 3, pore=[0.1, 0.2, 0.3]), out)
    first = {name: (out / name).read_bytes() for name in os.listdir(out)}
    assert 'detachment_vs_esd.png' in first
    without = _table([1.0, 2.0], [False] * 2)
    with pytest.raises(InputError, match='report: folder is not empty; pass --overwrite'):
        write_report(without, out)
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == first
    write_report(without, out, overwrite=True)
    assert 'detachment_vs_esd.png' not in os.listdir(out)
    assert json.loads((out / 'summary.json').read_text())['n_particles'] == 2


def test_a_report_that_fails_half_way_leaves_the_earlier_one_whole(tmp_path, monkeypatch):
    """A full disk at the second plot of an --overwrite rerun: the earlier report had been emptied first and the
    folder kept a table, a summary and one plot (until 2026-12-07)."""
    import libnet_mmdet.analysis.report as report_module
    out = tmp_path / 'report'
    write_report(_table([1.0, 2.0, 3.0], [False] * 3, pore=[0.1, 0.2, 0.3]), out)
    first = {name: (out / name).read_bytes() for name in os.listdir(out)}
    calls = []
    real_write_png = report_module.write_png

    def full_disk(path, picture, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, 'No space left on device', str(path))
        return real_write_png(path, picture, **kwargs)

    monkeypatch.setattr(report_module, 'write_png', full_disk)
    with pytest.raises(OSError, match='No space left'):
        write_report(_table([1.0, 2.0], [False] * 2), out, overwrite=True)
    assert len(calls) == 2
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == first
    assert os.listdir(tmp_path) == ['report']  # no partial folder left beside it


def test_plot_report_skips_detachment_without_phases(tmp_path):
    written = plot_report(_table([1.0, 2.0, 3.0], [False] * 3), tmp_path)
    assert sorted(os.path.basename(p) for p in written) == ['esd_histogram.png', 'sphericity_vs_esd.png']


def test_atomic_output_keeps_the_old_file_on_error(tmp_path):
    target = tmp_path / 'out.txt'
    target.write_text('old')
    with pytest.raises(RuntimeError):
        with atomic_output(target) as stream:
            stream.write('partial')
            raise RuntimeError('boom')
    assert target.read_text() == 'old' and os.listdir(tmp_path) == ['out.txt']


def test_read_volume_voxel_size_from_metadata(tmp_path):
    volume = np.zeros((3, 4, 5), np.uint16)
    imagej = tmp_path / 'imagej.tif'
    tifffile.imwrite(imagej, volume, imagej=True, resolution=(1 / 0.05, 1 / 0.05),
                     metadata={'spacing': 0.1, 'unit': 'um', 'axes': 'ZYX'})
    ome = tmp_path / 'ome.ome.tif'
    tifffile.imwrite(ome, volume, ome=True, metadata={'axes': 'ZYX', 'PhysicalSizeX': 40, 'PhysicalSizeXUnit': 'nm',
                                                      'PhysicalSizeY': 40, 'PhysicalSizeYUnit': 'nm',
                                                      'PhysicalSizeZ': 0.08, 'PhysicalSizeZUnit': 'µm'})
    inch = tmp_path / 'inch.tif'
    tifffile.imwrite(inch, volume, photometric='minisblack', resolution=(72, 72), resolutionunit='INCH')
    centimetre = tmp_path / 'cm.tif'
    tifffile.imwrite(centimetre, volume, photometric='minisblack', resolution=(1e5, 1e5), resolutionunit='CENTIMETER')

    array, size = read_volume(imagej)
    assert array.shape == (3, 4, 5) and size == pytest.approx([100, 50, 50])
    assert read_volume(ome)[1] == pytest.approx([80, 40, 40])
    assert read_volume(inch)[1] is None  # 72 dpi is a default, not a voxel size
    assert read_volume(centimetre)[1] == pytest.approx([100, 100, 100])


@pytest.mark.parametrize('resolution, unit, expected', [
    (72 / 2.54, 'CENTIMETER', None),  # 72 dpi stored per cm: was read as a 352,778 nm voxel
    (96 / 25.4, 'MILLIMETER', None),
    (20, 'MILLIMETER', [50_000] * 3),  # millimetre and micrometre units: were read as not recorded
    (0.02, 'MICROMETER', [50_000] * 3),
    (20, 'MICROMETER', [50] * 3),
])
def test_resolution_tags_in_every_metric_unit_and_print_defaults(tmp_path, resolution, unit, expected):
    path = tmp_path / 'tags.tif'
    tifffile.imwrite(path, np.zeros((3, 4, 5), np.uint16), photometric='minisblack', resolution=(resolution,) * 2,
                     resolutionunit=unit)
    size = read_volume(path)[1]
    assert size is None if expected is None else size == pytest.approx(expected)


def test_an_imagej_calibration_of_72_dpi_is_a_print_default_too(tmp_path):
    path = tmp_path / 'imagej.tif'
    tifffile.imwrite(path, np.zeros((3, 4, 5), np.uint16), imagej=True, resolution=(72 / 2.54,) * 2,
                     metadata={'unit': 'cm', 'axes': 'ZYX'})  # was read as a 352,778 nm voxel
    assert read_volume(path)[1] is None


def test_read_volume_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.tif: file not found'):
        read_volume(tmp_path / 'missing.tif')
    flat = tmp_path / 'flat.tif'
    tifffile.imwrite(flat, np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match=r'flat.tif: expected a 3-D \(Z, Y, X\) stack, got shape \(4, 5\)'):
        read_volume(flat)
    junk = tmp_path / 'junk.tif'
    junk.write_bytes(b'not a tiff')
    with pytest.raises(ValueError, match='junk.tif: cannot read as TIFF'):
        read_volume(junk)
