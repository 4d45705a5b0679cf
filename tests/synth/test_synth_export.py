"""Dataset folder: TIFF stacks with voxel size, COCO and VIA exports, determinism, atomic writes."""
import hashlib
import json
import os

import numpy as np
from scipy import ndimage
import pytest
import tifffile
from pycocotools.coco import COCO

from libnet_mmdet.io import InputError, read_volume
from libnet_mmdet.synth import generate_volume, preset_params, write_dataset
from libnet_mmdet.synth.export import select_slices


def test_stacks_round_trip_with_voxel_size(dataset_dir, typical_volume):
    for name, array in (('image', typical_volume.image_zyx), ('labels', typical_volume.labels_zyx),
                        ('phases', typical_volume.phases_zyx)):
        stored, voxel_size_nm = read_volume(dataset_dir / f'{name}.tif')
        assert stored.dtype == array.dtype and np.array_equal(stored, array), name
        assert voxel_size_nm == pytest.approx([100.0] * 3), name
    params = json.loads((dataset_dir / 'params.json').read_text())
    assert params['seed'] == 3 and params['params']['mean_diameter_vox'] == 14.0
    assert params['summary']['n_particles'] == int(typical_volume.labels_zyx.max())
    assert not [name for name in os.listdir(dataset_dir) if name.endswith('.tmp')]


def test_uint32_labels_keep_their_voxel_size(tmp_path):
    from libnet_mmdet.io import write_tiff
    labels = np.arange(2 * 3 * 4, dtype=np.uint32).reshape(2, 3, 4) + 70000
    write_tiff(tmp_path / 'big.tif', labels, 50.0)
    stored, voxel_size_nm = read_volume(tmp_path / 'big.tif')
    assert stored.dtype == np.uint32 and np.array_equal(stored, labels)
    assert voxel_size_nm == pytest.approx([50.0] * 3)


def numpy_slice(volume_zyx, axis, index):
    """Slice ``index`` along ``axis`` by plain indexing: the oracle the export is checked against (with the export's
    own ``slice_2d`` a y/x swap went unseen: the fixture's Y and X are equal)."""
    return {'z': lambda: volume_zyx[index], 'y': lambda: volume_zyx[:, index, :],
            'x': lambda: volume_zyx[:, :, index]}[axis]()


def test_coco_export_masks_equal_the_label_slices(dataset_dir, typical_volume):
    labels, image = typical_volume.labels_zyx, typical_volume.image_zyx
    coco = COCO(str(dataset_dir / 'coco' / 'annotations.json'))
    expected_slices = select_slices(labels, ('z', 'y', 'x'))
    assert len(coco.imgs) == len(expected_slices) == sum(labels.shape)  # no empty slice in a dense packing
    assert coco.loadCats(coco.getCatIds()) == [{'id': 1, 'name': 'particle', 'supercategory': 'particle'}]
    for image_info in coco.loadImgs(coco.getImgIds()):
        labels_hw = numpy_slice(labels, image_info['volume_axis'], image_info['slice_index'])
        stored = tifffile.imread(dataset_dir / 'coco' / 'images' / image_info['file_name'])
        assert stored.dtype == image.dtype
        assert np.array_equal(stored, numpy_slice(image, image_info['volume_axis'], image_info['slice_index']))
        assert (image_info['height'], image_info['width']) == labels_hw.shape
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=image_info['id']))
        assert sorted(a['instance_id'] for a in annotations) == sorted(set(np.unique(labels_hw)) - {0})
        for annotation in annotations:
            mask = coco.annToMask(annotation)
            assert np.array_equal(mask.astype(bool), labels_hw == annotation['instance_id'])
            assert annotation['area'] == mask.sum() and annotation['iscrowd'] == 0
            rows, cols = np.nonzero(mask)
            assert annotation['bbox'] == [cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1]


def test_particle_coco_dataset_reads_the_export(dataset_dir):
    from libnet_mmdet.datasets import ParticleCocoDataset
    dataset = ParticleCocoDataset(ann_file=str(dataset_dir / 'coco' / 'annotations.json'),
                                  data_prefix=dict(img=str(dataset_dir / 'coco' / 'images')), pipeline=[],
                                  test_mode=True)
    coco = json.loads((dataset_dir / 'coco' / 'annotations.json').read_text())
    assert len(dataset) == len(coco['images'])
    assert sum(len(dataset.get_data_info(i)['instances']) for i in range(len(dataset))) == len(coco['annotations'])


def test_via_export_round_trips(dataset_dir, typical_volume):
    """The project's VIA reader turns the export back into the label slices."""
    import pycocotools.mask as mask_utils
    from libnet_mmdet.datasets.via import load_via_data_list
    labels = typical_volume.labels_zyx
    via = json.loads((dataset_dir / 'via' / 'via_region_data.json').read_text())
    coco = json.loads((dataset_dir / 'coco' / 'annotations.json').read_text())
    assert len(via) == len(coco['images'])
    for key, entry in via.items():
        assert key == f"{entry['filename']}{entry['size']}"
        assert entry['size'] == os.path.getsize(dataset_dir / 'coco' / 'images' / entry['filename'])
    data_list = load_via_data_list(str(dataset_dir / 'via' / 'via_region_data.json'),
                                   str(dataset_dir / 'coco' / 'images'))
    ious = []
    for info, entry in zip(data_list, via.values()):
        labels_hw = numpy_slice(labels, entry['file_attributes']['volume_axis'],
                                int(entry['file_attributes']['slice_index']))
        masks = [mask_utils.decode(dict(inst['mask'], counts=inst['mask']['counts'].encode())).astype(bool)
                 for inst in info['instances']]  # the reader rasterises regions to exact RLE
        drawn = {}
        for mask in masks:
            owner = np.bincount(labels_hw[mask]).argmax()  # the particle under the polygon
            drawn[owner] = drawn.get(owner, np.zeros(labels_hw.shape, bool)) | mask
        assert sorted(drawn) == sorted(set(np.unique(labels_hw)) - {0})
        for particle_id, mask in drawn.items():
            truth = ndimage.binary_fill_holes(labels_hw == particle_id)
            ious.append((mask & truth).sum() / (mask | truth).sum())
    assert len(ious) > 100
    assert min(ious) == 1.0  # exact: VIA polygons trace the filled pieces


def _file_hashes(folder):
    hashes = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, 'rb') as stream:
                hashes[os.path.relpath(path, folder)] = hashlib.sha256(stream.read()).hexdigest()
    return hashes


def test_same_seed_gives_identical_files(tmp_path):
    params = preset_params('typical', mean_diameter_vox=10.0)
    for name, seed in (('first', 7), ('second', 7), ('other_seed', 8)):
        write_dataset(tmp_path / name, generate_volume((8, 40, 40), params, seed=seed), axes=('z', 'x'))
    first, second, other = (_file_hashes(tmp_path / name) for name in ('first', 'second', 'other_seed'))
    assert len(first) > 10 and first == second
    assert first['labels.tif'] != other['labels.tif'] and first['image.tif'] != other['image.tif']


def test_refuses_a_used_folder_unless_overwrite_which_empties_it(tmp_path, typical_volume):
    """Audit #4 (a), (b): overwrite=True wrote into any non-empty folder, and left the slice images of an earlier
    export with another ``every`` next to the new annotation files."""
    out = tmp_path / 'dataset'
    write_dataset(out, typical_volume, axes=('y',), every=4, via=False)
    assert len(list((out / 'coco' / 'images').iterdir())) == 16
    with pytest.raises(InputError, match=f'{out}: folder is not empty; pass --overwrite'):
        write_dataset(out, typical_volume)
    written = write_dataset(out, typical_volume, axes=('y',), every=8, coco=True, via=False, overwrite=True)
    assert 'via' not in written
    coco = json.loads((out / 'coco' / 'annotations.json').read_text())
    assert [image['slice_index'] for image in coco['images']] == list(range(0, typical_volume.labels_zyx.shape[1], 8))
    assert sorted(p.name for p in (out / 'coco' / 'images').iterdir()) == [i['file_name'] for i in coco['images']]
    (tmp_path / 'notes.txt').write_text('keep me')
    with pytest.raises(InputError, match='folder is not empty and was not written by libnet-mmdet'):
        write_dataset(tmp_path, typical_volume, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['dataset', 'notes.txt']


@pytest.mark.parametrize('kwargs, error, message', [
    (dict(min_area_px=None), InputError, 'min_area_px must be an integer >= 0, got None'),
    (dict(min_area_px=-1), InputError, 'min_area_px must be an integer >= 0, got -1'),
    (dict(coco='no'), InputError, "coco must be True or False, got 'no'"),
    (dict(via=None), InputError, 'via must be True or False, got None'),
    (dict(skip_empty=1), InputError, 'skip_empty must be True or False, got 1'),
    (dict(volume='image'), TypeError, r'volume: expected a SyntheticVolume \(generate_volume\), got ndarray')])
def test_checks_every_argument_before_writing(tmp_path, typical_volume, kwargs, error, message):
    """Audit #4 (c), (d): min_area_px=None failed after every TIFF was written, an image array instead of the volume
    after the folder was created."""
    kwargs = dict(kwargs)  # the parameter set stays as it is for a rerun
    volume = typical_volume.image_zyx if kwargs.pop('volume', None) else typical_volume
    with pytest.raises(error, match=message):
        write_dataset(tmp_path / 'out', volume, **kwargs)
    assert not (tmp_path / 'out').exists()


def test_slice_selection_options():
    labels = np.zeros((4, 8, 8), dtype=np.uint16)
    labels[1, 2:4, 2:4] = 1
    assert select_slices(labels, ('z',)) == [('z', 1)]
    assert select_slices(labels, ('z',), skip_empty=False) == [('z', i) for i in range(4)]
    assert select_slices(labels, 'zy', every=np.int64(4), skip_empty=False) == [('z', 0), ('y', 0), ('y', 4)]
    for axes in (('xy',), ('z', 'z'), ()):  # a repeated axis would export its slices twice
        with pytest.raises(ValueError, match=r"axes must be a non-empty selection of \('z', 'y', 'x'\), each axis "
                           'once, got'):
            select_slices(labels, axes)
    for every in (0, True, 2.0):
        with pytest.raises(ValueError, match=f'every must be an integer >= 1, got {every!r}'):
            select_slices(labels, ('z',), every=every)
