"""libnet_mmdet.visualization.model_stages.check_two_stage_config: configs as files or as Config objects."""
import pytest

from helpers import REPO_ROOT, TINY_CONFIG
from libnet_mmdet.apis import read_config
from libnet_mmdet.io import InputError
from libnet_mmdet.visualization import check_two_stage_config

PHASE_CONFIG = REPO_ROOT / 'configs' / 'nmc' / 'phase-fpn_r18-gn_fpn-c64_cpu-tiny_generalist.py'


def test_check_two_stage_config_takes_a_path_like_its_siblings(tmp_path):
    """Audit #22: a path raised AttributeError: 'str' object has no attribute 'get'."""
    check_two_stage_config(TINY_CONFIG)
    check_two_stage_config(str(TINY_CONFIG), 'tiny.py')
    with pytest.raises(InputError, match=f'{PHASE_CONFIG}: not a two-stage instance segmentation config .*its model '
                       'lacks rpn_head, roi_head'):
        check_two_stage_config(str(PHASE_CONFIG))
    with pytest.raises(InputError, match='phase.py: not a two-stage'):
        check_two_stage_config(PHASE_CONFIG, 'phase.py')
    with pytest.raises(FileNotFoundError, match='config file not found: .*missing.py'):
        check_two_stage_config(tmp_path / 'missing.py')


def test_check_two_stage_config_of_a_config_object():
    check_two_stage_config(read_config(TINY_CONFIG))
    with pytest.raises(InputError, match=f'{PHASE_CONFIG}: not a two-stage'):  # named by the file it was read from
        check_two_stage_config(read_config(PHASE_CONFIG))
    with pytest.raises(InputError, match='<Config>: not a two-stage .*lacks backbone, neck, rpn_head, roi_head'):
        check_two_stage_config({'model': {}})
    with pytest.raises(TypeError, match='config: expected a config file path or an mmengine Config, got int'):
        check_two_stage_config(3)
