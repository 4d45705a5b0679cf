"""README's public API list is each subpackage's ``__all__``, and tools import only those names (plus the
command-line helpers ``libnet_mmdet.cli`` and ``libnet_mmdet.checkpoint``)."""

import ast
import importlib
import re

import pytest

from helpers import REPO_ROOT

SUBPACKAGES = ('apis', 'models', 'io', 'volume', 'analysis', 'evaluation', 'synth', 'visualization', 'datasets')


def readme_api():
    """``{subpackage: names}`` of README's "Public API" paragraph."""
    text = (REPO_ROOT / 'README.md').read_text()
    paragraph = text[text.index('- Public API:'):]
    paragraph = paragraph[:paragraph.index('Tools use only these')]
    starts = [(m.start(), m.group(1)) for m in re.finditer(r'`(\w+)`:\s', paragraph) if m.group(1) in SUBPACKAGES]
    ends = [start for start, _ in starts[1:]] + [len(paragraph)]
    return {name: set(re.findall(r'`(\w+)`', paragraph[start:end])) - {name}
            for (start, name), end in zip(starts, ends)}


@pytest.mark.parametrize('subpackage', SUBPACKAGES)
def test_readme_lists_exactly_each_subpackage_s_all(subpackage):
    listed = readme_api()[subpackage]
    exported = set(importlib.import_module(f'libnet_mmdet.{subpackage}').__all__)
    assert listed == exported, f'README only: {sorted(listed - exported)}, __all__ only: {sorted(exported - listed)}'


@pytest.mark.parametrize('tool', sorted(str(p.relative_to(REPO_ROOT / 'tools'))
                                         for p in (REPO_ROOT / 'tools').rglob('*.py')))  # converters, analysis too
def test_tools_import_only_the_public_api(tool):
    tree = ast.parse((REPO_ROOT / 'tools' / tool).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):  # `import libnet_mmdet.io.images as x`
            internal = [alias.name for alias in node.names if alias.name.count('.') > 1
                        and alias.name.startswith('libnet_mmdet.')]
            assert not internal, f'{tool}:{node.lineno} imports the internal module {internal}'
        if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('libnet_mmdet.'):
            parts = node.module.split('.')
            assert len(parts) == 2, f'{tool}:{node.lineno} imports from the internal module {node.module}'
            if parts[1] in SUBPACKAGES:
                exported = importlib.import_module(node.module).__all__
                private = [alias.name for alias in node.names if alias.name not in exported]
                assert not private, f'{tool}:{node.lineno}: {private} not in {node.module}.__all__'
