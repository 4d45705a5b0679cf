"""notebooks/quick_demo.ipynb executes headlessly on the tiny model and a tiny synthetic volume."""
import os
import sys

import pytest

from helpers import REPO_ROOT

pytestmark = pytest.mark.slow

NOTEBOOK = REPO_ROOT / 'notebooks' / 'quick_demo.ipynb'


@pytest.mark.parametrize('own_stack', [False, True], ids=['synthetic', 'own stack with a voxel size'])
def test_quick_demo_notebook_runs(tiny_model, monkeypatch, tmp_path, own_stack):
    import nbclient  # pinned in requirements/tests.txt: a missing one is a broken install, not a skip
    import nbformat
    config, checkpoint = tiny_model
    for key, value in dict(LIBNET_CONFIG=config, LIBNET_CHECKPOINT=checkpoint, LIBNET_DEVICE='cpu',
                           LIBNET_SYNTH_SHAPE='8,64,64', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
                           CUDA_VISIBLE_DEVICES='').items():
        monkeypatch.setenv(key, str(value))  # the kernel inherits this environment
    if own_stack:  # LIBNET_VOLUME: a stack that records its voxel size, as our tools and Fiji write them
        from libnet_mmdet.io import write_tiff
        from libnet_mmdet.synth import generate_volume, preset_params
        synthetic = generate_volume((8, 64, 64), preset_params('typical', mean_diameter_vox=12), seed=1)
        write_tiff(tmp_path / 'stack.tif', synthetic.image_zyx, voxel_size_nm=(200, 100, 100))
        monkeypatch.setenv('LIBNET_VOLUME', str(tmp_path / 'stack.tif'))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert not any(cell.get('outputs') for cell in notebook.cells if cell.cell_type == 'code'), \
        'commit the notebook without outputs'
    # the kernel must be this interpreter (the venv with libnet_mmdet), not some other 'python3'
    notebook.cells.append(nbformat.v4.new_code_cell('import sys; print(sys.executable)'))
    nbclient.NotebookClient(notebook, kernel_name='python3', timeout=300,
                            resources={'metadata': {'path': str(REPO_ROOT)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == 'code' for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == 'error']
    text = ''.join(o.get('text', '') for o in outputs if o.output_type == 'stream')
    assert os.path.realpath(text.strip().splitlines()[-1]) == os.path.realpath(sys.executable)
    assert 'particles:' in text and ('| ground truth: None' in text) == own_stack
    assert sum('image/png' in o.get('data', {}) for o in outputs) >= 3  # slice, volume, diameter histogram
