"""tools/make_synthetic.py: one real run in a subprocess, argument errors in-process."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'make_synthetic.py'


def test_cli_writes_a_dataset(tmp_path):
    out_dir = tmp_path / 'out'
    result = subprocess.run(
        [sys.executable, str(TOOL), '--shape', '8', '48', '48', '--preset', 'clean', '--seed', '4', '--mean-diameter',
         '12', '--ring-strength', '0.004', '--hollow-radius-range', '0.3', '0.4', '--dtype', 'float32',
         '--export-axes', 'z', 'y', '--export-every', '2', '--out', str(out_dir)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for name in ('image.tif', 'labels.tif', 'phases.tif', 'particles.csv', 'params.json', 'coco/annotations.json',
                 'via/via_region_data.json'):
        assert (out_dir / name).is_file(), name
    record = json.loads((out_dir / 'params.json').read_text())
    assert record['seed'] == 4
    params = record['params']
    assert params['mean_diameter_vox'] == 12.0 and params['ring_strength'] == 0.004 and params['dose'] == 1e6
    assert params['hollow_radius_range'] == [0.3, 0.4] and params['output_dtype'] == 'float32'
    coco = json.loads((out_dir / 'coco' / 'annotations.json').read_text())
    assert {(image['volume_axis'], image['slice_index'] % 2) for image in coco['images']} == {('z', 0), ('y', 0)}


@pytest.mark.parametrize('arguments, message', [
    (['--solid-fraction', '1.2'], 'SynthParams.solid_fraction=1.2 is invalid'),
    (['--mean-diameter', '-3'], 'SynthParams.mean_diameter_vox=-3.0 is invalid'),
    (['--shape', '0', '64', '64'], 'the volume is empty'),
])
def test_cli_reports_bad_arguments(tool, tmp_path, arguments, message):
    with pytest.raises(SystemExit) as exit_info:  # one line, the tools' rule: "make_synthetic.py: error: ..."
        tool.main(['--out', str(tmp_path / 'out')] + arguments)
    assert str(exit_info.value.code).startswith('make_synthetic.py: error: ')
    assert message in exit_info.value.code
    assert not (tmp_path / 'out').exists()
