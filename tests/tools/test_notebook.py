"""notebooks/quick_demo.ipynb executes headlessly on the tiny model and a tiny synthetic volume."""
import os
import sys

import pytest

from helpers import REPO_ROOT

pytestmark = pytest.mark.slow

NOTEBOOK = REPO_ROOT / 'notebooks' / 'quick_demo.ipynb'


def test_quick_demo_notebook_runs(tiny_model, monkeypatch):
    nbformat = pytest.importorskip('nbformat')
    nbclient = pytest.importorskip('nbclient')
    config, checkpoint = tiny_model
    for key, value in dict(LIBNET_CONFIG=config, LIBNET_CHECKPOINT=checkpoint, LIBNET_DEVICE='cpu',
                           LIBNET_SYNTH_SHAPE='8,64,64', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
                           CUDA_VISIBLE_DEVICES='').items():
        monkeypatch.setenv(key, str(value))  # the kernel inherits this environment
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
    assert 'particles:' in text and '| ground truth:' in text
    assert sum('image/png' in o.get('data', {}) for o in outputs) >= 3  # slice, volume, diameter histogram
