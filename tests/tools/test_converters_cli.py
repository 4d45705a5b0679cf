"""tools/dataset_converters in-process: one line per user error (issue 17, defect 5: they printed a traceback before
their message) and the output rule (defect 2: labels2coco into a used folder left the old images beside a JSON
listing only the new ones)."""
import json

import numpy as np
import pytest
import tifffile

from helpers import import_tool


def _tool(name):
    return import_tool(f'dataset_converters/{name}').main


def _pair(folder, stem, n_particles):
    folder.mkdir(exist_ok=True)
    labels = np.zeros((24, 24), np.uint16)
    for k in range(n_particles):
        labels[2 + 6 * k:6 + 6 * k, 3:9] = k + 1
    tifffile.imwrite(folder / f'{stem}.tif', (labels > 0).astype(np.uint8) * 200)
    tifffile.imwrite(folder / f'{stem}_masks.tif', labels)


def test_labels2coco_never_mixes_two_conversions(tmp_path):
    main = _tool('labels2coco')
    source, out = tmp_path / 'source', tmp_path / 'coco'
    _pair(source, 'a', 2)
    main([str(source / 'a.tif'), str(source / 'a_masks.tif'), str(out)])
    _pair(source, 'b', 3)
    with pytest.raises(SystemExit, match=f'labels2coco.py: error: {out}: folder is not empty; pass --overwrite'):
        main([str(source / 'b.tif'), str(source / 'b_masks.tif'), str(out)])
    assert sorted(p.name for p in (out / 'images').iterdir()) == ['a.tif']
    main([str(source / 'b.tif'), str(source / 'b_masks.tif'), str(out), '--overwrite'])
    assert sorted(p.name for p in (out / 'images').iterdir()) == ['b.tif']
    coco = json.loads((out / 'annotations.json').read_text())
    assert [image['file_name'] for image in coco['images']] == ['b.tif'] and len(coco['annotations']) == 3


def test_converters_report_a_missing_input_in_one_line(tmp_path):
    missing = tmp_path / 'missing.tif'
    with pytest.raises(SystemExit) as info:
        _tool('labels2coco')([str(missing), str(missing), str(tmp_path / 'out')])
    assert str(info.value.code).startswith('labels2coco.py: error: ') and str(missing) in info.value.code
    with pytest.raises(SystemExit) as info:
        _tool('via2coco')([str(tmp_path / 'via.json'), str(tmp_path), str(tmp_path / 'coco.json')])
    assert info.value.code == f"via2coco.py: error: VIA annotation file not found: {tmp_path / 'via.json'}"
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'coco.json').exists()


def test_via2coco_replaces_an_existing_json_only_with_overwrite(tmp_path):
    main = _tool('via2coco')
    tifffile.imwrite(tmp_path / 'a.tif', np.zeros((20, 20), np.uint8))
    region = {'shape_attributes': {'name': 'rect', 'x': 2, 'y': 3, 'width': 5, 'height': 4}, 'region_attributes': {}}
    (tmp_path / 'via.json').write_text(json.dumps({'a.tif1': {'filename': 'a.tif', 'size': 1, 'regions': [region],
                                                              'file_attributes': {}}}))
    out = tmp_path / 'coco.json'
    out.write_text('my notes')
    argv = [str(tmp_path / 'via.json'), str(tmp_path), str(out)]
    with pytest.raises(SystemExit, match=f'via2coco.py: error: {out}: exists; pass --overwrite'):
        main(argv)
    assert out.read_text() == 'my notes'
    main(argv + ['--overwrite'])
    assert len(json.loads(out.read_text())['annotations']) == 1
    image = tifffile.imread(tmp_path / 'a.tif')
    with pytest.raises(SystemExit, match=f"via2coco.py: error: {tmp_path / 'a.tif'}: the COCO output must be a .json"):
        main(argv[:2] + [str(tmp_path / 'a.tif'), '--overwrite'])  # an input image is never replaced
    assert (tifffile.imread(tmp_path / 'a.tif') == image).all()
    for tolerance in ('nan', '-1'):
        with pytest.raises(SystemExit, match='via2coco.py: error: tolerance \\(--tolerance\\) must be a number >= 0'):
            main(argv + ['--overwrite', '--tolerance', tolerance])


def test_labels2coco_stays_out_of_its_input_folders_and_checks_its_slicing(tmp_path, capsys):
    main = _tool('labels2coco')
    source = tmp_path / 'source'
    _pair(source, 'a', 2)
    with pytest.raises(SystemExit, match=f"labels2coco.py: error: {source / 'coco'}: lies inside the input folder"):
        main([str(source), str(source), str(source / 'coco'), '--label-suffix', '_masks'])
    with pytest.raises(SystemExit, match="labels2coco.py: error: --axes must be .*each axis once, got "
                       "\\('z', 'z'\\)"):
        main([str(source / 'a.tif'), str(source / 'a_masks.tif'), str(tmp_path / 'out'), '--axes', 'zz'])
    with pytest.raises(SystemExit) as info:
        main([str(source / 'a.tif'), str(source / 'a_masks.tif'), str(tmp_path / 'out'), '--step', '0'])
    assert info.value.code == 2 and "argument --step: expected an integer >= 1, got '0'" in capsys.readouterr().err
    assert sorted(p.name for p in source.iterdir()) == ['a.tif', 'a_masks.tif'] and not (tmp_path / 'out').exists()
