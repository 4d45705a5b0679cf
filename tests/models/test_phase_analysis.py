"""tools/analyze.py with a phase model (--phase-model DIR|auto|none): phases predicted from the image and written to
OUT/phases.tif, or multi-Otsu flagged approximate in every output (issue 16)."""
import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from helpers import REPO_ROOT, import_tool, never_loaded, run_tool
from libnet_mmdet.analysis import particle_table
from libnet_mmdet.apis import model as model_api
from libnet_mmdet.apis.phases import predict_phases
from libnet_mmdet.synth import generate_volume, preset_params

TOOL = REPO_ROOT / 'tools' / 'analyze.py'


@pytest.fixture(scope='module')
def analyze_tool():
    """tools/analyze.py imported as a module (its ``main(argv)``), without a new interpreter."""
    return import_tool('analyze')


@pytest.fixture(scope='module')
def volume_files(tmp_path_factory):
    """labels.tif, image.tif and phases.tif of a small synthetic volume (too thin for xz / yz: one view), and the
    arrays."""
    root = tmp_path_factory.mktemp('analyze_phase_model')
    volume = generate_volume((16, 40, 48), preset_params('typical', mean_diameter_vox=12), seed=3)
    files = {}
    for name, array in (('labels', volume.labels_zyx), ('image', volume.image_zyx), ('phases', volume.phases_zyx)):
        files[name] = root / f'{name}.tif'
        tifffile.imwrite(files[name], array, photometric='minisblack')
    return files, volume


def analyze(analyze_tool, files, out, *options):
    analyze_tool.main([str(files['labels']), '--voxel-size-nm', '100', '--out', str(out), *map(str, options)])
    return pd.read_csv(out / 'particles.csv'), json.loads((out / 'summary.json').read_text())


def test_phases_from_the_phase_model(tmp_path, analyze_tool, volume_files, trained_phase_model, phase_model,
                                     capsys):
    files, volume = volume_files
    out = tmp_path / 'report'

    table, summary = analyze(analyze_tool, files, out, '--image', files['image'], '--phase-model',
                             trained_phase_model.folder)

    assert str(trained_phase_model.folder) in capsys.readouterr().err
    written = tifffile.imread(out / 'phases.tif')
    assert written.dtype == np.uint8 and written.shape == volume.labels_zyx.shape
    np.testing.assert_array_equal(written, predict_phases(phase_model, volume.image_zyx)[0])
    assert len(table) > 0 and set(table['phase_source']) == {'model'}
    expected = particle_table(volume.labels_zyx, phases_zyx=written, voxel_size_nm=100)
    np.testing.assert_allclose(table['surface_fraction_pore'], expected['surface_fraction_pore'], rtol=1e-6)
    assert summary['phase_source'] == 'model' and 'phase model' in summary['note']
    markdown = (out / 'summary.md').read_text()
    assert '| phases | model |' in markdown and 'approximate' not in markdown


def test_multi_otsu_fallback_is_flagged_in_every_output(tmp_path, analyze_tool, volume_files, monkeypatch, capsys):
    files, _ = volume_files
    monkeypatch.setattr(model_api, 'PHASE_MODEL_DIR', str(tmp_path / 'not_built'))  # 'auto' finds no model
    for option in ('none', 'auto'):
        out = tmp_path / option

        table, summary = analyze(analyze_tool, files, out, '--image', files['image'], '--phase-model', option)

        stdout = capsys.readouterr().out
        assert 'approximate' in stdout
        assert ('make model' in stdout) == (option == 'auto')  # how to get a model, when the default has none
        assert set(table['phase_source']) == {'multi_otsu_approximate'}
        assert summary['phase_source'] == 'multi_otsu_approximate' and 'approximate' in summary['note']
        assert 'approximate' in (out / 'summary.md').read_text()
        assert not (out / 'phases.tif').exists()


def test_phase_model_is_the_default_when_built(tmp_path, analyze_tool, volume_files, trained_phase_model,
                                               monkeypatch):
    files, _ = volume_files
    monkeypatch.setattr(model_api, 'PHASE_MODEL_DIR', str(trained_phase_model.folder))

    table, summary = analyze(analyze_tool, files, tmp_path / 'report', '--image', files['image'])

    assert set(table['phase_source']) == {'model'} and summary['phase_source'] == 'model'
    assert (tmp_path / 'report' / 'phases.tif').is_file()


def test_folder_without_a_phase_model_is_one_line_error(tmp_path, volume_files):
    files, _ = volume_files
    empty = tmp_path / 'no_model'
    empty.mkdir()
    out = tmp_path / 'report'

    result = run_tool(TOOL, files['labels'], '--image', files['image'], '--phase-model', empty,
                      '--voxel-size-nm', 100, '--out', out, timeout=300)

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'analyze.py: error: {empty}: no phase model there'), lines
    assert not out.exists()


def test_given_phases_are_used_even_with_a_phase_model(tmp_path, analyze_tool, volume_files, trained_phase_model,
                                                       monkeypatch, capsys):
    files, volume = volume_files
    monkeypatch.setattr(analyze_tool, 'init_phase_model', never_loaded)
    out = tmp_path / 'report'

    table, summary = analyze(analyze_tool, files, out, '--phases', files['phases'], '--image', files['image'],
                             '--phase-model', trained_phase_model.folder)

    assert set(table['phase_source']) == {'given'} and summary['phase_source'] == 'given'
    assert 'note: --phase-model not used: the phases come from --phases' in capsys.readouterr().err
    expected = particle_table(volume.labels_zyx, phases_zyx=volume.phases_zyx, voxel_size_nm=100)
    np.testing.assert_allclose(table['surface_fraction_pore'], expected['surface_fraction_pore'], rtol=1e-6)
    assert not (out / 'phases.tif').exists()
