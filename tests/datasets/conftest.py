"""Fixtures of the dataset tests; their helpers live in ``tomo_data`` (this folder is put on sys.path)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tomo_data import stack_files, via_dir  # noqa: E402,F401  (fixtures)


@pytest.fixture(autouse=True, scope='session')
def mmdet_scope():
    """Pipelines given as config dicts are built from mmdet's registries (as configs do with default_scope)."""
    from mmdet.utils import register_all_modules

    import libnet_mmdet  # noqa: F401
    register_all_modules(init_default_scope=True)
