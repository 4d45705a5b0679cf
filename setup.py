"""Install libnet_mmdet: NMC particle instance segmentation for X-ray nano-CT, as an MMDetection 3.x extension."""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r"__version__ = '([^']+)'", (HERE / 'libnet_mmdet' / 'version.py').read_text()).group(1)


def read_requirements(name):
    """Requirement lines of requirements/<name>.txt, comments dropped."""
    lines = (HERE / 'requirements' / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith('#')]


setup(
    name='libnet-mmdet',
    version=VERSION,
    description='Instance segmentation of NMC cathode particles in X-ray nano-tomography (MMDetection 3.x extension)',
    long_description=(HERE / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['libnet_mmdet', 'libnet_mmdet.*']),
    python_requires='>=3.11',  # the pinned numpy, pandas, scipy, scikit-image, zarr, tifffile need it
    install_requires=read_requirements('mmcv.txt') + read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache-2.0',
)
