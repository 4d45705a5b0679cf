"""PhaseTiffDataset and LoadPhaseMap: image / phase-map pairs (2D files, sliced 3D stacks) for a phase model."""
import numpy as np
import pytest
import tifffile
from mmengine.config import Config

from helpers import REPO_ROOT
from libnet_mmdet.datasets import AnnotationError, PhaseTiffDataset
from libnet_mmdet.datasets.transforms import PHASE_CLASS_IDS
from libnet_mmdet.io import ImageFormatError

PHASE_CONFIG = REPO_ROOT / 'configs' / 'nmc' / 'phase-fpn_r18-gn_fpn-c64_cpu-tiny_generalist.py'
LOAD = [dict(type='LoadTomoImageFromFile', normalize='none', channels=1), dict(type='LoadPhaseMap')]
PORE, NMC, CB = 0, 1, 2
INTENSITY = np.array([100, 1000, 400], np.uint16)  # of pore, NMC, carbon-binder: NMC brightest, pore darkest


def random_phases(rng, shape):
    """Blocky phase codes 0..2 (blocks of 4 px, so that augmentations keep phase regions recognisable)."""
    coarse = rng.integers(0, 3, [-(-n // 4) for n in shape]).astype(np.uint8)
    blocks = coarse
    for axis, n in enumerate(shape):
        blocks = np.repeat(blocks, 4, axis=axis)
    return np.ascontiguousarray(blocks[tuple(slice(0, n) for n in shape)])


def write_pair(root, name, phases, image=None):
    """``root/images/<name>`` and ``root/phases/<name>`` (image: the phases' intensities unless given)."""
    for folder, array in (('images', INTENSITY[phases] if image is None else image), ('phases', phases)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(root / folder / name, array, photometric='minisblack')
    return root / 'images' / name, root / 'phases' / name


def build(root, **kwargs):
    return PhaseTiffDataset(data_prefix=dict(img=str(root / 'images'), seg=str(root / 'phases')),
                            pipeline=LOAD, **kwargs)


def test_stack_is_sliced_along_the_axes_with_their_phase_maps(tmp_path):
    phases = random_phases(np.random.default_rng(0), (6, 20, 24))
    write_pair(tmp_path, 'vol.tif', phases)

    dataset = build(tmp_path, slice_axes='zyx', slice_step=2)

    assert len(dataset) == 3 + 10 + 12  # every 2nd slice of 6 z, 20 y, 24 x
    assert len(build(tmp_path)) == 6  # default: z only, every slice
    seen = set()
    for item in (dataset[i] for i in range(len(dataset))):
        axis, index = item['slice_axis'], item['slice_index']
        truth = np.take(phases, index, axis='zyx'.index(axis))
        assert index % 2 == 0
        np.testing.assert_array_equal(item['gt_seg_map'], PHASE_CLASS_IDS[truth])
        np.testing.assert_array_equal(item['img'][..., 0], INTENSITY[truth])  # image and map of the same slice
        assert (item['height'], item['width']) == truth.shape
        assert item['instances'] == []
        seen.add((axis, index))
    assert len(seen) == len(dataset)


def test_2d_pairs_with_a_suffix(tmp_path):
    rng = np.random.default_rng(1)
    for name in ('a', 'b'):
        phases = random_phases(rng, (16, 20))
        (tmp_path / 'images').mkdir(exist_ok=True)
        tifffile.imwrite(tmp_path / 'images' / f'{name}.tif', INTENSITY[phases])
        tifffile.imwrite(tmp_path / 'images' / f'{name}_phases.tif', phases)
    dataset = PhaseTiffDataset(data_prefix=dict(img=str(tmp_path / 'images' / 'a.tif'),
                                                seg=str(tmp_path / 'images' / 'a_phases.tif')), pipeline=LOAD)
    assert len(dataset) == 1

    dataset = PhaseTiffDataset(data_prefix=dict(img=str(tmp_path / 'images'), seg=str(tmp_path / 'images')),
                               seg_suffix='_phases', pipeline=LOAD)

    assert [item['img_path'].split('/')[-1] for item in dataset] == ['a.tif', 'b.tif']
    for item in dataset:
        truth = tifffile.imread(item['seg_map_path'])
        assert 'slice_axis' not in item
        np.testing.assert_array_equal(item['gt_seg_map'], PHASE_CLASS_IDS[truth])


def test_phase_codes_become_panoptic_class_ids():
    assert PHASE_CLASS_IDS[PORE] == 1 and PHASE_CLASS_IDS[NMC] == 0 and PHASE_CLASS_IDS[CB] == 2


def test_mismatched_shapes_name_both_files(tmp_path):
    image, seg = write_pair(tmp_path, 'vol.tif', np.zeros((4, 16, 16), np.uint8),
                            image=np.zeros((4, 16, 17), np.uint16))
    with pytest.raises(AnnotationError, match='differ in shape') as info:
        build(tmp_path)
    assert str(image) in str(info.value) and str(seg) in str(info.value)


def test_float_phase_map_names_the_file(tmp_path):
    _, seg = write_pair(tmp_path, 'vol.tif', np.zeros((4, 16, 16), np.float32),
                        image=np.zeros((4, 16, 16), np.uint16))
    with pytest.raises(AnnotationError, match='integer dtype') as info:
        build(tmp_path)
    assert str(seg) in str(info.value)


def test_phase_value_3_is_refused_when_the_dataset_is_built(tmp_path):
    """It used to fail only when its slice was drawn, possibly deep into a training run."""
    phases = np.ones((4, 16, 16), np.uint8)
    phases[2, 5, 5] = 3
    _, seg = write_pair(tmp_path, 'vol.tif', phases, image=np.zeros((4, 16, 16), np.uint16))
    with pytest.raises(AnnotationError, match=f'{seg}: phase values must be 0 .pore., 1 .NMC. or 2 '
                       '.carbon-binder.; found values from 1 to 3'):
        build(tmp_path)


def test_the_phase_loader_still_names_file_and_slice(tmp_path):
    """LoadPhaseMap checks what it loads too (a pipeline used without the dataset)."""
    from libnet_mmdet.datasets.transforms import LoadPhaseMap
    phases = np.ones((4, 16, 16), np.uint8)
    phases[2, 5, 5] = 3
    _, seg = write_pair(tmp_path, 'vol.tif', phases, image=np.zeros((4, 16, 16), np.uint16))
    with pytest.raises(ImageFormatError, match='values 0 .pore., 1 .NMC., 2 .carbon-binder.') as info:
        LoadPhaseMap()(dict(seg_map_path=str(seg), slice_axis='z', slice_index=2))
    assert f'{seg} [z=2]' in str(info.value)


@pytest.mark.parametrize('shape', [(3, 300, 280), (3, 64, 80)])
def test_shipped_train_pipeline_gives_aligned_phase_targets(tmp_path, shape):
    """The shipped config's train_pipeline: inputs and gt_sem_seg of the same (cropped, rotated) shape, with the
    class ids of the phase under each pixel (the brightest pixels are NMC's, the darkest pore's)."""
    phases = random_phases(np.random.default_rng(2), shape)
    write_pair(tmp_path, 'vol.tif', phases)
    pipeline = Config.fromfile(str(PHASE_CONFIG)).to_dict()['train_pipeline']
    dataset = PhaseTiffDataset(data_prefix=dict(img=str(tmp_path / 'images'), seg=str(tmp_path / 'phases')),
                               pipeline=pipeline)
    crop = Config.fromfile(str(PHASE_CONFIG)).crop_size
    for i in range(len(dataset)):
        packed = dataset[i]
        image = packed['inputs'].numpy()[1].astype(float)  # the slice's own channel (2.5D: its neighbours beside)
        target = packed['data_samples'].gt_sem_seg.sem_seg.numpy()
        expected = sorted(min(n, c) for n, c in zip(shape[1:], crop))
        assert sorted(image.shape) == expected
        assert target.shape == (1,) + image.shape
        assert set(np.unique(target)) <= {0, 1, 2}
        mean = {phase: image[target[0] == PHASE_CLASS_IDS[phase]].mean() for phase in (PORE, NMC, CB)}
        assert mean[NMC] > mean[CB] > mean[PORE]
