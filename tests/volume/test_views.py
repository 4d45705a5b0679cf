"""views='auto': fusion where the volume allows it, else linking (libnet_mmdet.volume.views.resolve_views)."""
import numpy as np
import pytest
import tifffile

from libnet_mmdet.apis import check_volume_args, segment_volume
from libnet_mmdet.io import InputError
from libnet_mmdet.volume.testing import IntensityPredictor, same_instances, sphere_labels
from libnet_mmdet.volume.views import MIN_VIEW_SIDE, VIEWS, check_view_names, resolve_views

SIDE = MIN_VIEW_SIDE


def test_auto_fuses_isotropic_volumes_whose_slices_are_large_enough():
    assert resolve_views('auto', (SIDE, SIDE, SIDE)) == (VIEWS, 'fusion')
    assert resolve_views('auto', (SIDE, 64, 80), np.array([100.0, 100.0, 100.0])) == (VIEWS, 'fusion')
    assert resolve_views('auto', (SIDE, 64, 80), np.array([105.0, 100.0, 100.0]))[0] == VIEWS  # within 10 %


@pytest.mark.parametrize('shape, voxel_size, why', [
    ((SIDE - 1, 64, 64), None, f'xz/yz slices under {SIDE} px'),
    ((64, 64, SIDE - 1), None, f'xz/yz slices under {SIDE} px'),
    ((64, 64, 64), np.array([300.0, 100.0, 100.0]), 'anisotropic voxels 300x100x100 nm'),
])
def test_auto_links_thin_volumes_and_anisotropic_voxels(shape, voxel_size, why):
    views, reason = resolve_views('auto', shape, voxel_size)
    assert views == ('xy',) and reason.startswith('linking') and why in reason


def test_explicit_views_are_kept_and_auto_is_a_name():
    assert resolve_views(('xy',), (64, 64, 64)) == (('xy',), None)
    assert resolve_views(('xz', 'yz'), (4, 64, 64)) == (('xz', 'yz'), None)  # what the user asked for
    assert check_view_names('auto') == 'auto' and check_view_names('xz') == ('xz',)
    with pytest.raises(ValueError, match="views must be 'auto' or distinct names"):
        check_view_names(('auto', 'xy'))
    with pytest.raises(InputError, match="views must be 'auto'"):
        check_volume_args(views=('xy', 'xy'))


def test_segment_volume_auto_fuses_a_cube_and_links_a_thin_stack(tmp_path, capsys):
    spheres = [((16, 16, 16), 7), ((16, 16, 31), 7), ((17, 33, 24), 8)]  # touching side by side
    truth = sphere_labels((SIDE + 2, 48, 48), spheres)
    image = np.array([0, 200, 120, 160], np.uint8)[truth]
    tifffile.imwrite(tmp_path / 'cube.tif', image)
    out = tmp_path / 'cube_labels.tif'

    labels = segment_volume(IntensityPredictor(), tmp_path / 'cube.tif', out=out, views='auto', keep_work=True,
                            progress=False)

    assert 'views: auto -> xy xz yz (fusion)' in capsys.readouterr().out
    assert same_instances(labels, truth)
    work = sorted(entry.name for entry in (tmp_path / 'cube_labels.tif.work').iterdir())
    assert [name for name in work if name.startswith('view_')] == [f'view_{view}.zarr' for view in VIEWS], work
    fused = segment_volume(IntensityPredictor(), image, views=VIEWS, progress=False)
    np.testing.assert_array_equal(labels, fused)
    tifffile.imwrite(tmp_path / 'thin.tif', image[:SIDE - 1])
    segment_volume(IntensityPredictor(), tmp_path / 'thin.tif', out=tmp_path / 'thin_labels.tif', views='auto',
                   progress=False)
    assert f'views: auto -> xy (linking: xz/yz slices under {SIDE} px' in capsys.readouterr().out
