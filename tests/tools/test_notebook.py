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


def _chosen_model(folder, environment):
    """(CONFIG, CHECKPOINT) the notebook's first cell chooses when run in ``folder`` as the repository root (the
    generalist looked for in ``folder/models/generalist``), or the error it raises."""
    import nbclient
    import nbformat
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == 'code')
    assert 'MODEL_FILES' in first.source
    notebook.cells = [nbformat.v4.new_code_cell(
        'import libnet_mmdet.apis.model as model_module, os\n'
        f"model_module.GENERALIST_DIR = os.path.join({str(folder)!r}, 'models', 'generalist')"), first,
        nbformat.v4.new_code_cell('print(CONFIG); print(CHECKPOINT)')]
    try:
        nbclient.NotebookClient(notebook, kernel_name='python3', timeout=120,
                                resources={'metadata': {'path': str(folder)}}).execute(env=environment)
    except nbclient.exceptions.CellExecutionError as exc:
        return str(exc).strip().splitlines()[-1]
    text = ''.join(o.get('text', '') for o in notebook.cells[-1].outputs if o.output_type == 'stream')
    return tuple(os.path.realpath(os.path.join(folder, path)) for path in text.split())


def test_the_notebook_falls_back_to_a_trained_recipe_then_to_the_demo_model(tmp_path, monkeypatch):
    """Without the generalist: the newest best checkpoint of the R101 recipe, else the newest checkpoint the demo
    trained, else a clear error."""
    real = os.path.realpath
    for key in ('LIBNET_CONFIG', 'LIBNET_CHECKPOINT'):
        monkeypatch.delenv(key, raising=False)
    environment = {**os.environ, 'CUDA_VISIBLE_DEVICES': '', 'OMP_NUM_THREADS': '1'}
    assert 'no model: run `make model`' in _chosen_model(tmp_path, environment)
    demo = tmp_path / 'demo_out'
    (demo / 'work_dir').mkdir(parents=True)
    (demo / 'train_config.py').write_text('')
    for age, name in enumerate(('iter_1000.pth', 'iter_500.pth')):  # the newest written counts, not the name
        (demo / 'work_dir' / name).write_bytes(b'')
        os.utime(demo / 'work_dir' / name, (1e9 + age, 1e9 + age))
    assert _chosen_model(tmp_path, environment) == (real(demo / 'train_config.py'),
                                                   real(demo / 'work_dir' / 'iter_500.pth'))
    trained = tmp_path / 'work_dirs' / 'mask-rcnn_r101_fpn' / 'best_coco_segm_mAP_50_epoch_12.pth'
    trained.parent.mkdir(parents=True)
    trained.write_bytes(b'')
    assert _chosen_model(tmp_path, environment) == (
        real(tmp_path / 'configs' / 'nmc' / 'mask-rcnn_r101_fpn.py'), real(trained))
    generalist = tmp_path / 'models' / 'generalist'
    generalist.mkdir(parents=True)
    for name in ('config.py', 'model.pth', 'model.json'):
        (generalist / name).write_text('')
    assert _chosen_model(tmp_path, environment) == (real(generalist / 'config.py'), real(generalist / 'model.pth'))
