"""Distributed volume segmentation: 2 CPU processes (gloo) give exactly the single-process output, through the API
(spawned ranks, deterministic predictor, fused views, resume with another world size) and through
``tools/dist_segment.sh`` with a trained model."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile
import torch.distributed as dist
import torch.multiprocessing as mp

from helpers import REPO_ROOT, run_tool
from libnet_mmdet.apis import segment_volume
from libnet_mmdet.io import InputError
from libnet_mmdet.volume.testing import IntensityPredictor, sphere_labels

SPHERES = [((6, 10, 10), 5), ((8, 10, 20.5), 5.5), ((14, 24, 14), 6), ((3, 26, 27), 4), ((17, 8, 27), 3.5)]
VIEWS = ('xy', 'xz', 'yz')


@pytest.fixture(scope='module')
def compressed_stack(tmp_path_factory):
    """A zlib TIFF (read page by page: rank 0 makes the random-access copy, rank 1 reads it)."""
    labels = sphere_labels((20, 32, 34), SPHERES)
    path = tmp_path_factory.mktemp('dist_segment') / 'stack.tif'
    tifffile.imwrite(path, np.array([0, 200, 120, 90, 160, 240], np.uint8)[labels], compression='zlib')
    return path


def _rank_main(rank, world_size, init_file, stack, out, counts_dir):
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=world_size)
    try:
        predictor = IntensityPredictor()
        labels = segment_volume(predictor, stack, out=out, views=VIEWS, slab=4, progress=False)
        assert (labels is None) == (rank > 0)
        with open(os.path.join(counts_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(predictor.n_images, f)
    finally:
        dist.destroy_process_group()


def _run_distributed(world_size, stack, out, tmp_path):
    counts_dir = tmp_path / f'counts_{world_size}'
    counts_dir.mkdir()
    mp.start_processes(_rank_main, args=(world_size, str(tmp_path / f'init_{world_size}'), str(stack), str(out),
                                         str(counts_dir)), nprocs=world_size, start_method='fork')
    return [json.loads((counts_dir / f'rank{r}.json').read_text()) for r in range(world_size)]


def test_two_ranks_equal_one_process(compressed_stack, tmp_path):
    reference = np.array(segment_volume(IntensityPredictor(), compressed_stack, out=tmp_path / 'one.tif',
                                        views=VIEWS, slab=4, progress=False))
    counts = _run_distributed(2, compressed_stack, tmp_path / 'two.tif', tmp_path)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / 'two.tif'), reference)
    n_slices = 20 + 32 + 34
    assert sum(counts) == n_slices and min(counts) > n_slices // 3  # both ranks did a share of every view
    assert not (tmp_path / 'two.tif.work').exists()


def test_an_interrupted_run_resumes_with_more_ranks(compressed_stack, tmp_path):
    out = tmp_path / 'labels.tif'
    with pytest.raises(KeyboardInterrupt):  # one process, stopped after 5 xy slabs and 3 xz slabs
        segment_volume(IntensityPredictor(fail_after=20 + 12), compressed_stack, out=out, views=VIEWS, slab=4,
                       progress=False)
    counts = _run_distributed(2, compressed_stack, out, tmp_path)
    assert sum(counts) == (32 - 12) + 34  # only the unfinished slabs, shared by the two ranks
    reference = segment_volume(IntensityPredictor(), compressed_stack, views=VIEWS, slab=4, progress=False)
    np.testing.assert_array_equal(tifffile.imread(out), reference)


def test_distributed_needs_an_output_file(compressed_stack, monkeypatch):
    monkeypatch.setattr('libnet_mmdet.apis.volume.get_dist_info', lambda: (0, 2))
    with pytest.raises(ValueError, match='distributed segmentation needs out='):
        segment_volume(IntensityPredictor(), compressed_stack, progress=False)


def test_launcher_choice_on_the_cpu():
    from libnet_mmdet.cli import init_distributed
    assert init_distributed('none', 'cuda:0') == 'cuda:0'  # no launcher: nothing to join, device as asked
    with pytest.raises(InputError, match='--launcher slurm needs CUDA; on CPUs start the job with torchrun'):
        init_distributed('slurm', 'cpu')


@pytest.mark.slow
def test_dist_segment_tool_equals_single_process(trained_tiny, tmp_path):
    """``tools/dist_segment.sh`` (torchrun, 2 CPU processes) with a trained model == ``tools/segment.py``."""
    from libnet_mmdet.synth import generate_volume, preset_params
    stack = tmp_path / 'stack.tif'
    tifffile.imwrite(stack, generate_volume((6, 96, 96), preset_params('typical', mean_diameter_vox=20),
                                            seed=3).image_zyx)
    config, checkpoint = trained_tiny
    common = ['--config', str(config), '--checkpoint', str(checkpoint), '--device', 'cpu', '--slab', '2',
              '--score-thr', '0.3', '--views', 'xy', 'xz', '--cfg-options', 'model.test_cfg.rpn.max_per_img=200',
              'model.test_cfg.rcnn.max_per_img=50']
    single = run_tool('tools/segment.py', stack, '--out', tmp_path / 'one.tif', *common)
    assert single.returncode == 0, single.stderr[-3000:]

    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               CUDA_VISIBLE_DEVICES='', PORT='29533')
    result = subprocess.run(['bash', 'tools/dist_segment.sh', str(stack), '2', '--out', str(tmp_path / 'two.tif'),
                             *common], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert result.stdout.count('particles') == 1  # rank 0 alone reports
    labels = tifffile.imread(tmp_path / 'two.tif')
    assert labels.max() > 0
    np.testing.assert_array_equal(labels, tifffile.imread(tmp_path / 'one.tif'))
