"""tools/segment.py without a trained model: every argument and output path is checked before the model is loaded
(a stand-in ``init_segmenter`` fails the test if it is reached), and Ctrl-C gives one line saying how to resume."""
import shlex

import h5py
import numpy as np
import pytest
import tifffile

from helpers import import_tool, never_loaded
from libnet_mmdet.volume.testing import IntensityPredictor, sphere_labels


@pytest.fixture
def segment_tool():
    """tools/segment.py imported as a module (its ``main(argv)``, ``parse_args`` and ``check_args``)."""
    return import_tool('segment')


@pytest.fixture
def stack(tmp_path):
    labels = sphere_labels((12, 24, 24), [((5, 8, 8), 4), ((6, 15, 16), 5)])
    path = tmp_path / 'stack.tif'
    tifffile.imwrite(path, np.array([0, 200, 120], np.uint8)[labels])
    return path


def _argv(stack, *extra):
    return [str(stack), '--config', 'model.py', '--checkpoint', 'model.pth', '--device', 'cpu',
            '--out', str(stack.parent / 'labels.tif'), *map(str, extra)]


@pytest.mark.parametrize('extra, message', [
    (['--voxel-size-nm', '0'], 'segment.py: error: voxel_size_nm: voxel sizes must be finite and > 0'),
    (['--voxel-size-nm', '50', '50'], 'segment.py: error: voxel_size_nm: expected one value or three'),
    (['--slab', '0'], 'segment.py: error: slab must be an integer >= 1'),
    (['--min-voxels', '-5'], "segment.py: error: min_voxels must be 'auto' or an integer >= 0"),
    (['--score-thr', '2'], r'segment.py: error: score_thr must be in \[0, 1\]'),
    (['--smooth', '-1'], r'segment.py: error: smooth must be in \[0, 8\] \(Gaussian sigma in voxels\), got -1'),
    (['--scale', '-1'], r'segment.py: error: scale must be in \(0, 16\]'),
    (['--batch-size', '0'], 'segment.py: error: batch_size must be an integer >= 1'),
    (['--tile-size', '64', '--overlap', '64'], r'segment.py: error: overlap must be an integer in \[0, tile_size'),
    (['--work-dir', '{tmp}'], 'segment.py: error: .*: the work folder would hold the output .*labels.tif'),
    (['--overlays', '{tmp}'], 'segment.py: error: .*: the output folder holds the input'),  # it may be emptied
    (['--overlap', '-1'], 'segment.py: error: overlap must be an integer >= 0'),  # with --tile-size auto too
    (['--overlays', '{tmp}/out', '--report', '{tmp}/out', '--voxel-size-nm', '50'],
     'segment.py: error: --overlays and --report: both are .*/out; give each its own folder'),
])
def test_bad_settings_are_one_line_before_the_model_is_loaded(segment_tool, stack, monkeypatch, extra, message):
    """Issue 17, defect 3 (--voxel-size-nm 0 failed after the whole inference)."""
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    extra = [value.format(tmp=stack.parent) for value in extra]
    with pytest.raises(SystemExit, match=message) as info:
        segment_tool.main(_argv(stack, *extra))
    assert '\n' not in str(info.value.code)
    assert sorted(p.name for p in stack.parent.iterdir()) == ['stack.tif']


def test_an_overlap_over_the_config_s_tile_size_is_refused_before_the_model_is_loaded(segment_tool, stack,
                                                                                       monkeypatch):
    """With --tile-size auto the tile size is the config's (256 px for CPU-tiny): it was checked only after the
    model had loaded."""
    from helpers import REPO_ROOT
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    argv = _argv(stack, '--overlap', '300')
    argv[argv.index('model.py')] = str(REPO_ROOT / 'configs/nmc/mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py')
    with pytest.raises(SystemExit, match=r'segment.py: error: overlap must be an integer in \[0, tile_size=256\)'):
        segment_tool.main(argv)
    assert sorted(p.name for p in stack.parent.iterdir()) == ['stack.tif']


def test_settings_the_config_cannot_take_are_refused_before_the_model_is_loaded(segment_tool, stack, monkeypatch):
    """A stock recipe resizing every image to a fixed size cannot rescale slices: --scale 0.5 was refused only after
    the model had loaded; --overlap where the config gives no size to tile at was ignored (until 2026-12-07)."""
    from helpers import REPO_ROOT
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    config = str(REPO_ROOT / 'configs/nmc/mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py')
    argv = _argv(stack, '--scale', '0.5', '--cfg-options', 'test_dataloader.dataset.pipeline.1.scale=(1333,800)',
                 'test_dataloader.dataset.pipeline.1.scale_factor=None')
    argv[argv.index('model.py')] = config
    with pytest.raises(SystemExit, match=rf'segment.py: error: scale=0.5: the test pipeline of {config} resizes '
                       r'every image to the fixed size \(1333, 800\), so slices cannot be rescaled'):
        segment_tool.main(argv)
    from libnet_mmdet.apis import model as model_api
    monkeypatch.setattr(model_api, 'config_tile_size', lambda cfg: None)
    argv = _argv(stack, '--overlap', '32')
    argv[argv.index('model.py')] = config
    with pytest.raises(SystemExit, match=rf'segment.py: error: overlap=32 \(--overlap\): slices are not tiled '
                       rf'\({config} gives no training size to tile at; tile_size=N, --tile-size N, tiles\); leave '
                       'the overlap out'):
        segment_tool.main(argv)
    assert sorted(p.name for p in stack.parent.iterdir()) == ['stack.tif']


@pytest.mark.parametrize('extra, message', [
    (['--scale', 'auto'], r"scale='auto' \(--scale auto\) needs a model that records the particle diameters"),
    (['--min-voxels', 'auto'], r"min_voxels='auto' \(--min-voxels auto\) needs a model that records"),
])
def test_auto_settings_of_a_model_without_diameters_are_refused_before_it_is_loaded(segment_tool, stack,
                                                                                  monkeypatch, extra, message):
    """The CPU-tiny config records no particle diameters: --scale auto and --min-voxels auto were refused only after
    the input had been read and the model loaded; now from the config, naming it."""
    from helpers import REPO_ROOT
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    config = str(REPO_ROOT / 'configs/nmc/mask-rcnn_r18-gn_fpn-c64_cpu-tiny.py')
    argv = _argv(stack, *extra)
    argv[argv.index('model.py')] = config
    with pytest.raises(SystemExit, match=f'segment.py: error: {message}.*; {config} records none') as info:
        segment_tool.main(argv)
    assert '\n' not in str(info.value.code)
    assert sorted(p.name for p in stack.parent.iterdir()) == ['stack.tif']


def test_a_device_is_checked_before_the_model_is_loaded(segment_tool, stack, monkeypatch, capsys):
    """A misspelt device is refused while parsing, a CUDA one without CUDA before the model loads (it was a
    RuntimeError traceback after the checkpoint had loaded)."""
    import torch
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    with pytest.raises(SystemExit) as info:
        segment_tool.main(_argv(stack, '--device', 'gpu'))
    assert info.value.code == 2 and "argument --device: expected 'cpu', 'cuda' or 'cuda:N'" in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(SystemExit, match="segment.py: error: device 'cuda:1' \\(--device\\): CUDA is not available"):
        segment_tool.main(_argv(stack, '--device', 'cuda:1'))
    assert sorted(p.name for p in stack.parent.iterdir()) == ['stack.tif']


def test_no_output_goes_into_a_folder_input(segment_tool, stack, monkeypatch):
    """A folder of slices is an input: the labels, the work folder and the overlays stay out of it (labels.tif
    written there became a slice of the input for every later run)."""
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    slices = stack.parent / 'slices'
    slices.mkdir()
    for z, image in enumerate(tifffile.imread(stack)):
        tifffile.imwrite(slices / f'slice_{z:02d}.tif', image)
    for extra in (['--out', slices / 'labels.tif'], ['--out', stack.parent / 'l.tif', '--work-dir', slices / 'w'],
                  ['--out', stack.parent / 'l.tif', '--overlays', slices / 'png']):
        with pytest.raises(SystemExit, match=f'segment.py: error: .*: lies inside the input folder {slices}'):
            segment_tool.main([str(slices), '--config', 'm.py', '--checkpoint', 'm.pth', *map(str, extra)])
    assert len(list(slices.iterdir())) == 12
    assert sorted(p.name for p in stack.parent.iterdir()) == ['slices', 'stack.tif']


def test_overlay_step_zero_is_refused_while_parsing(segment_tool, stack, monkeypatch, capsys):
    """Issue 17, defect 3: --overlay-step 0 used to write the labels, then exit 1."""
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    with pytest.raises(SystemExit) as info:
        segment_tool.main(_argv(stack, '--overlays', stack.parent / 'png', '--overlay-step', '0'))
    assert info.value.code == 2
    assert "argument --overlay-step: expected an integer >= 1, got '0'" in capsys.readouterr().err
    assert sorted(p.name for p in stack.parent.iterdir()) == ['stack.tif']


@pytest.mark.parametrize('make, message', [
    (lambda out: out.mkdir(), 'labels.tif: is a folder; give a file name'),
    (lambda out: out.write_text('an earlier result'), 'labels.tif: exists; pass --overwrite'),
])
def test_an_existing_or_folder_output_is_refused_before_the_run(segment_tool, stack, monkeypatch, make, message):
    """Issue 17, defects 2 and 3: --out naming a folder failed after the run, naming a temp path, leaving OUT.work;
    an existing --out was replaced without a word."""
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    out = stack.parent / 'labels.tif'
    make(out)
    with pytest.raises(SystemExit, match=f'segment.py: error: {out}: ') as info:
        segment_tool.main(_argv(stack))
    assert message in str(info.value.code)
    assert not (stack.parent / 'labels.tif.work').exists()
    assert out.is_dir() or out.read_text() == 'an earlier result'


def test_a_used_overlay_folder_needs_overwrite(segment_tool, stack, monkeypatch):
    monkeypatch.setattr(segment_tool, 'init_segmenter', lambda *args, **kwargs: IntensityPredictor())
    overlays = stack.parent / 'png'
    segment_tool.main(_argv(stack, '--overlays', overlays, '--overlay-step', 4))
    first = sorted(p.name for p in overlays.glob('*.png'))
    assert first == ['overlay_z00.png', 'overlay_z04.png', 'overlay_z08.png']
    (stack.parent / 'labels.tif').unlink()
    with pytest.raises(SystemExit, match=f'segment.py: error: {overlays}: folder is not empty; pass --overwrite'):
        segment_tool.main(_argv(stack, '--overlays', overlays, '--overlay-step', 6))
    assert not (stack.parent / 'labels.tif').exists()  # refused before the run
    segment_tool.main(_argv(stack, '--overlays', overlays, '--overlay-step', 6, '--overwrite'))
    assert sorted(p.name for p in overlays.glob('*.png')) == ['overlay_z00.png', 'overlay_z06.png']  # no mixing


def test_the_model_s_files_are_inputs_no_folder_may_remove(segment_tool, stack, monkeypatch):
    """A config and checkpoint kept in an earlier overlay folder were deleted by --overlays ... --overwrite, and
    those kept in a --work-dir with the run's manifest were deleted with the work folder after success."""
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    overlays = stack.parent / 'png'
    (overlays / 'model').mkdir(parents=True)
    (overlays / '.libnet_mmdet_output').write_text('ours')
    for name in ('config.py', 'model.pth'):
        (overlays / 'model' / name).write_text('')
    argv = [str(stack), '--config', overlays / 'model' / 'config.py', '--checkpoint', overlays / 'model' / 'model.pth',
            '--device', 'cpu', '--out', stack.parent / 'labels.tif']
    with pytest.raises(SystemExit, match=f'segment.py: error: {overlays}: the output folder holds the input '
                       f"{overlays / 'model' / 'config.py'}"):
        segment_tool.main([str(word) for word in argv + ['--overlays', overlays, '--overwrite']])
    work = stack.parent / 'work'
    (overlays / 'model').rename(work)
    (work / 'manifest.json').write_text('{}')
    argv[2], argv[4] = work / 'config.py', work / 'model.pth'
    with pytest.raises(SystemExit, match=f"segment.py: error: {work}: holds the input {work / 'config.py'}, which "
                       'it must never remove'):
        segment_tool.main([str(word) for word in argv + ['--work-dir', work]])
    assert sorted(p.name for p in work.iterdir()) == ['config.py', 'manifest.json', 'model.pth']


def test_ctrl_c_says_how_to_resume_and_the_rerun_resumes(segment_tool, stack, monkeypatch, capsys):
    """Issue 17, defect 5: Ctrl-C printed ~90 lines of traceback."""
    out = stack.parent / 'labels.tif'
    monkeypatch.setattr(segment_tool, 'init_segmenter', lambda *args, **kwargs: IntensityPredictor(fail_after=4))
    with pytest.raises(SystemExit) as info:
        segment_tool.main(_argv(stack, '--slab', 4))
    assert info.value.code == 130
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (f'segment.py: interrupted: finished slabs are kept in {out}.work; run the same '
                                    'command again to resume')
    assert 'Traceback' not in err and not out.exists()
    restarted = IntensityPredictor()
    monkeypatch.setattr(segment_tool, 'init_segmenter', lambda *args, **kwargs: restarted)
    segment_tool.main(_argv(stack, '--slab', 4))
    assert restarted.n_images == 12 - 4 and tifffile.imread(out).max() == 2
    assert not (stack.parent / 'labels.tif.work').exists()
    with pytest.raises(KeyboardInterrupt):  # --debug: the traceback
        monkeypatch.setattr(segment_tool, 'init_segmenter', lambda *args, **kwargs: IntensityPredictor(fail_after=0))
        segment_tool.main(_argv(stack, '--overwrite', '--debug'))


def test_ctrl_c_after_the_labels_says_what_is_left(segment_tool, stack, monkeypatch, capsys):
    """Stopped while the report is written, OUT is complete and its work folder gone: the line says so and gives
    the tools/analyze.py command that writes the report, instead of a resume that the rerun would refuse."""
    def stopped(*args, **kwargs):
        raise KeyboardInterrupt
    out, report = stack.parent / 'labels.tif', stack.parent / 'report'
    monkeypatch.setattr(segment_tool, 'init_segmenter', lambda *args, **kwargs: IntensityPredictor())
    monkeypatch.setattr(segment_tool, 'write_particle_report', stopped)
    with pytest.raises(SystemExit) as info:
        segment_tool.main(_argv(stack, '--report', report, '--voxel-size-nm', 50, '--phase-model', 'none'))
    assert info.value.code == 130 and tifffile.imread(out).max() == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f'segment.py: interrupted: {out} is complete, the report is not; to write it: python tools/analyze.py {out} '
        f'--image {stack} --out {report} --overwrite --phase-model none --voxel-size-nm 50')


def test_the_command_left_to_write_the_report_runs_as_printed(segment_tool):
    """Quoted for the shell (a path with a space), with the voxel size given to segment.py (OUT records it, the
    input another or none: analyze.py would refuse the pair) and the device (until 2026-12-07 neither)."""
    args = segment_tool.parse_args(['my scan.tif', '--out', 'labels.tif', '--report', 'my report', '--voxel-size-nm',
                                    '150', '50', '50', '--device', 'cpu'])
    assert shlex.split(segment_tool.report_command(args)) == [
        'python', 'tools/analyze.py', 'labels.tif', '--image', 'my scan.tif', '--out', 'my report', '--overwrite',
        '--voxel-size-nm', '150', '50', '50']
    args.device = 'cuda:1'
    assert shlex.split(segment_tool.report_command(args))[-2:] == ['--device', 'cuda:1']


def test_amp_reaches_the_model_loader(segment_tool, stack, monkeypatch):
    """--amp loads the model with mixed-precision features (``init_segmenter(..., amp=True)``); off by default."""
    calls = []

    def loader(*args, **kwargs):
        calls.append(kwargs.get('amp'))
        return IntensityPredictor()
    monkeypatch.setattr(segment_tool, 'init_segmenter', loader)
    segment_tool.main(_argv(stack, '--amp'))
    segment_tool.main(_argv(stack, '--overwrite'))
    assert calls == [True, False]


@pytest.mark.parametrize('extra, message', [
    (['--out', 'res/labels.tif', '--work-dir', 'res'], '.*res: the work folder would hold the output .*res/labels.tif '
     'and is deleted when the run ends'),
    (['--out', 'res/labels.tif', '--report', 'res', '--phase-model', 'none'], '--report .*res: would hold --out '
     '.*res/labels.tif; give --report a folder of its own'),
    (['--out', 'labels.tif', '--work-dir', 'w', '--overlays', 'w/png'], '--overlays .*w/png: lies in the work folder '
     '.*w, which is deleted when the run ends'),
    (['--out', 'labels.tif', '--phase-model', 'phases'], '--phase-model: the phases are for --report; add --report '
     'DIR or leave --phase-model out'),
    (['--out', 'labels.tif', '--overlay-step', '5'], '--overlay-step: the step between overlay slices is for '
     '--overlays; add --overlays DIR or leave --overlay-step out'),
    (['--out', 'labels.tif', '--tile-size', 'none', '--overlap', '32'], r'overlap=32 \(--overlap\): slices are not '
     r'tiled \(tile_size=None, --tile-size none\); leave the overlap out'),
])
def test_outputs_stay_apart_and_options_apply(segment_tool, stack, monkeypatch, extra, message):
    """A work folder holding --out (deleted after the run, with the labels in it), a report folder holding --out
    (it may be emptied; the line called OUT "the input"), and --phase-model without --report (silently ignored)
    are refused before the model loads, as are --overlay-step without --overlays and --overlap without tiles (until
    2026-12-07 silently ignored)."""
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    outputs = stack.parent / 'outputs'
    outputs.mkdir()
    extra = [word if word.startswith('--') or word in ('none', 'phases') or word.isdigit() else str(outputs / word)
             for word in extra]
    with pytest.raises(SystemExit, match=f'segment.py: error: {message}') as info:
        segment_tool.main([str(stack), '--config', 'model.py', '--checkpoint', 'model.pth', '--device', 'cpu',
                           '--voxel-size-nm', '50', *extra])
    assert '\n' not in str(info.value.code)
    assert list(outputs.iterdir()) == []


def test_a_report_multi_otsu_cannot_fit_is_refused_before_the_model_and_one_without_particles_named(
        segment_tool, stack, monkeypatch):
    """A two-level scan without a phase model: segmented whole, then 'image_zyx: fewer than three of the 256
    intensity bins ...' (until 2026-12-07); now refused first, naming the file. A volume with no particle: its
    report's error names OUT (was 'labels_zyx: no instance')."""
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    two_levels = stack.parent / 'binary.tif'
    tifffile.imwrite(two_levels, (tifffile.imread(stack) > 0).astype(np.uint16) * 40000)
    argv = [str(two_levels), '--config', 'model.py', '--checkpoint', 'model.pth', '--device', 'cpu',
            '--voxel-size-nm', '50', '--out', str(stack.parent / 'labels.tif'), '--phase-model', 'none']
    with pytest.raises(SystemExit, match=f'segment.py: error: {two_levels}: fewer than three of the 256 intensity '
                       'bins'):
        segment_tool.main(argv + ['--report', str(stack.parent / 'report')])
    monkeypatch.setattr(segment_tool, 'init_segmenter', lambda *args, **kwargs: lambda images: [
        (np.zeros(np.shape(image)[:2], np.int32), np.zeros(0, np.float32)) for image in images])
    argv[0] = str(stack)
    with pytest.raises(SystemExit, match=f"segment.py: error: {stack.parent / 'labels.tif'}: no particle was found, "
                       'so there is no report to write'):
        segment_tool.main(argv + ['--report', str(stack.parent / 'report'), '--views', 'xy'])
    assert not (stack.parent / 'report').exists()


def test_a_launcher_without_its_starter_is_one_line(segment_tool, stack, monkeypatch):
    """--launcher pytorch outside torchrun was MMEngine's KeyError: 'RANK' traceback on a GPU node."""
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit, match='segment.py: error: --launcher pytorch: RANK, WORLD_SIZE, MASTER_ADDR, '
                       r'MASTER_PORT not set; start the job with torchrun \(tools/dist_\*.sh\)'):
        segment_tool.main(_argv(stack, '--launcher', 'pytorch'))
    assert sorted(p.name for p in stack.parent.iterdir()) == ['stack.tif']


def test_a_report_larger_than_memory_and_an_unreadable_input_are_refused_before_the_model(segment_tool, stack,
                                                                                          monkeypatch):
    """The report holds the whole volume: without the memory for it the run is refused at the start, not after
    the segmentation; an input whose voxels cannot be read (an HDF5 filter that is not installed) likewise."""
    monkeypatch.setattr(segment_tool, 'init_segmenter', never_loaded)
    monkeypatch.setattr('libnet_mmdet.cli.available_memory_bytes', lambda: 12 * 24 * 24 * 4 - 1)  # uint8 + 3 bytes
    with pytest.raises(SystemExit, match=f'segment.py: error: --report: the report of {stack} \\(12, 24, 24\\): '
                       'needs at least 0.0 GiB of memory, 0.0 GiB are available; segment without --report, then run '
                       'tools/analyze.py'):
        segment_tool.main(_argv(stack, '--report', stack.parent / 'report', '--voxel-size-nm', 50, '--phase-model',
                                'none'))

    volume_h5 = stack.parent / 'volume.h5'
    with h5py.File(volume_h5, 'w') as f:
        f['data'] = np.zeros((4, 24, 24), np.uint8)

    def unreadable(self, index):  # what h5py raises for a compression filter that is not installed
        raise OSError("Can't synchronously read data (can't open directory: /usr/local/hdf5/lib/plugin)")
    monkeypatch.setattr(h5py.Dataset, '__getitem__', unreadable)
    with pytest.raises(SystemExit, match=f"segment.py: error: {volume_h5}:/data \\[z=0\\]: cannot read its voxels "
                       "\\(Can't synchronously read data"):
        segment_tool.main(_argv(volume_h5))
    assert sorted(p.name for p in stack.parent.iterdir()) == ['stack.tif', 'volume.h5']


def test_an_error_after_the_labels_says_what_is_left(segment_tool, stack, monkeypatch):
    """A failure while the report is written (a full disk, memory) ends with the error and what is complete and how
    to write the rest: the rerun refuses the finished OUT, and its work folder is gone."""
    out, report = stack.parent / 'labels.tif', stack.parent / 'report'

    def full_disk(*args, **kwargs):
        raise OSError(28, 'No space left on device', str(report / 'particles.csv'))
    monkeypatch.setattr(segment_tool, 'init_segmenter', lambda *args, **kwargs: IntensityPredictor())
    monkeypatch.setattr(segment_tool, 'write_particle_report', full_disk)
    with pytest.raises(SystemExit) as info:
        segment_tool.main(_argv(stack, '--report', report, '--voxel-size-nm', 50, '--phase-model', 'none'))
    assert info.value.code == (
        f'segment.py: error: {report}/particles.csv: No space left on device; {out} is complete, the report is not; '
        f'to write it: python tools/analyze.py {out} --image {stack} --out {report} --overwrite --phase-model none '
        '--voxel-size-nm 50')
    assert tifffile.imread(out).max() == 2


def test_an_error_during_the_run_says_a_rerun_resumes_only_when_slabs_are_finished(segment_tool, stack, monkeypatch):
    """Out of memory hours into a run: the line says the finished slabs are kept (a rerun with the same settings
    resumes); an error before any slab is finished says nothing of the kind."""
    class OutOfMemoryAfter(IntensityPredictor):
        def __call__(self, images):
            if self.n_images + len(images) > self.fail_after:
                raise MemoryError('Unable to allocate 2.00 GiB')
            return super().__call__(images)
    out = stack.parent / 'labels.tif'
    kept = (f'; finished slabs are kept in {out}.work; run the same command again to resume (with the same '
            'settings)')
    for fail_after, extra, note in ((4, [], kept), (0, ['--no-resume'], '')):  # --no-resume: none finished
        monkeypatch.setattr(segment_tool, 'init_segmenter', lambda *args, **kwargs: OutOfMemoryAfter(fail_after))
        with pytest.raises(SystemExit) as info:
            segment_tool.main(_argv(stack, '--slab', 4, *extra))
        assert info.value.code == f'segment.py: error: out of memory (Unable to allocate 2.00 GiB){note}'
        assert not out.exists()
    monkeypatch.setattr(segment_tool, 'init_segmenter', lambda *args, **kwargs: OutOfMemoryAfter(4))
    with pytest.raises(SystemExit, match='finished slabs are kept'):
        segment_tool.main(_argv(stack, '--slab', 4))
    out.write_bytes(b'an earlier result')  # a refused argument says nothing of the slabs: a rerun is refused too
    with pytest.raises(SystemExit) as info:
        segment_tool.main(_argv(stack, '--slab', 4))
    assert info.value.code == f'segment.py: error: {out}: exists; pass --overwrite (overwrite=True) to replace it'


def test_bad_voxels_found_mid_run_say_to_mend_the_input_before_resuming(segment_tool, tmp_path, monkeypatch):
    """A NaN in a slice no check before the model reads: the line said 'run the same command again to resume',
    which fails the same way; it says to mend the input first (the unchanged slabs are then kept)."""
    from libnet_mmdet.apis.inference import RANGE_SLICES, evenly_spaced
    labels = sphere_labels((40, 24, 24), [((8, 8, 8), 4), ((30, 15, 16), 5)])
    image = np.array([0, 200, 120], np.float32)[labels]
    nan_z = min(set(range(8, 40)) - set(evenly_spaced(40, RANGE_SLICES)))  # not among the slices sampled first
    image[nan_z, 3, 3] = np.nan
    stack = tmp_path / 'stack.tif'
    tifffile.imwrite(stack, image)
    monkeypatch.setattr(segment_tool, 'init_segmenter', lambda *args, **kwargs: IntensityPredictor())
    out = tmp_path / 'labels.tif'
    for extra, rerun in (([], 'the same command resumes'), (['--no-resume'], 'run it again without --no-resume')):
        with pytest.raises(SystemExit) as info:
            segment_tool.main(_argv(stack, '--slab', 4, *extra))
        assert info.value.code.startswith(f'segment.py: error: {stack} [z={nan_z}]: 1 NaN/Inf pixel(s)')
        assert info.value.code.endswith(f'; finished slabs are kept in {out}.work; once {stack} is mended, {rerun} '
                                        '(slabs whose voxels did not change are kept)')


def test_a_broken_phase_checkpoint_is_found_before_the_segmentation(segment_tool, stack, monkeypatch):
    """--report with a phase model whose model.pth is not a checkpoint failed only after the whole segmentation."""
    from mmengine.config import Config
    from helpers import REPO_ROOT
    phase_dir = stack.parent / 'phases'
    phase_dir.mkdir()
    Config.fromfile(REPO_ROOT / 'configs/nmc/phase-fpn_r18-gn_fpn-c64_cpu-tiny_generalist.py').dump(
        str(phase_dir / 'config.py'))
    (phase_dir / 'model.pth').write_bytes(b'not a checkpoint')
    (phase_dir / 'model.json').write_text('{}')
    predictor = IntensityPredictor()
    monkeypatch.setattr(segment_tool, 'init_segmenter', lambda *args, **kwargs: predictor)
    with pytest.raises(SystemExit, match=f"segment.py: error: {phase_dir / 'model.pth'}: not a readable checkpoint"):
        segment_tool.main(_argv(stack, '--report', stack.parent / 'report', '--voxel-size-nm', 50, '--phase-model',
                                phase_dir))
    assert predictor.n_images == 0 and not (stack.parent / 'labels.tif').exists()
