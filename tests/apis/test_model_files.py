"""init_segmenter's inputs (issue 17, defect 5): a file that is not a checkpoint or a config that cannot be read is
one InputError naming the file, whatever bytes it holds, never an exception of torch's unpickler or MMEngine."""
import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from helpers import REPO_ROOT, TINY_CONFIG
from libnet_mmdet.apis import init_segmenter
from libnet_mmdet.apis.model import read_checkpoint
from libnet_mmdet.io import InputError


@pytest.mark.parametrize('content, error', [
    (b'.', 'IndexError: pop from empty list'),  # a file starting with '.' (pickle's STOP with an empty stack)
    (b'.hello', 'IndexError'),
    (b'hello', 'KeyError'),  # a text file
    (b'', 'EOFError'),
    (b'PK\x05\x06' + bytes(18), 'UnpicklingError'),  # an empty zip archive: torch's message has many lines
])
def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path, content, error):
    path = tmp_path / '.ckpt.pth'
    path.write_bytes(content)
    with pytest.raises(InputError, match=f'{path}: not a readable checkpoint file') as info:
        read_checkpoint(path)
    assert error in str(info.value) and '\n' not in str(info.value)


def test_init_segmenter_reports_a_bad_checkpoint_or_config_in_one_input_error(tmp_path):
    checkpoint = tmp_path / '.pth'
    checkpoint.write_bytes(b'.')
    with pytest.raises(InputError, match=f'{checkpoint}: not a readable checkpoint file .*IndexError'):
        init_segmenter(str(TINY_CONFIG), str(checkpoint), device='cpu')
    config = tmp_path / 'broken.py'
    config.write_text('model = dict(\n')
    with pytest.raises(InputError, match=f'{config}: cannot read this config .SyntaxError'):
        init_segmenter(str(config), None, device='cpu')
    config.write_text('x = 1\n')
    with pytest.raises(InputError, match=f'{config}: not a detector config'):
        init_segmenter(str(config), None, device='cpu')
    phase_config = REPO_ROOT / 'configs/nmc/phase-fpn_r18-gn_fpn-c64_cpu-tiny_generalist.py'
    with pytest.raises(InputError, match=f'{phase_config}: a phase model \\(PhaseSegmentor\\), not an instance '
                       'segmentation model; phase models go to --phase-model'):
        init_segmenter(str(phase_config), None, device='cpu')
    with pytest.raises(FileNotFoundError, match='config file not found'):
        init_segmenter(str(tmp_path / 'missing.py'), None, device='cpu')
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="device 'cuda:0' .*CUDA is not available"):
            init_segmenter(str(TINY_CONFIG), None, device='cuda:0')


def test_check_device_refuses_what_this_machine_cannot_run(monkeypatch):
    from libnet_mmdet.apis import check_device
    assert check_device('cpu') == 'cpu'
    with pytest.raises(InputError, match="device 'gpu' \\(--device\\): expected 'cpu', 'cuda' or 'cuda:N'"):
        check_device('gpu')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for device in ('cuda', 'cuda:0'):
        with pytest.raises(InputError, match=f"device '{device}' .*CUDA is not available here"):
            check_device(device)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    assert check_device('cuda:1') == 'cuda:1' and check_device('cuda') == 'cuda'
    with pytest.raises(InputError, match=r"device 'cuda:2' .*only 2 GPU\(s\) visible here \(cuda:0 ... cuda:1\)"):
        check_device('cuda:2')


def test_a_state_dict_file_loads(tmp_path):
    path = tmp_path / '.hidden.pth'
    with open(path, 'wb') as f:  # torch.save refuses a path whose name starts with '.'; a stream works
        torch.save({'state_dict': {'w': torch.ones(2)}}, f)
    assert torch.equal(read_checkpoint(path)['state_dict']['w'], torch.ones(2))


@settings(max_examples=80, deadline=None)
@given(content=st.binary(max_size=64) | st.sampled_from([b'.', b'\x80\x02.', b'(.', b'PK\x03\x04']).flatmap(
    lambda prefix: st.binary(max_size=32).map(lambda tail: prefix + tail)))
def test_fuzzed_checkpoint_bytes_are_refused_naming_the_file(tmp_path_factory, content):
    path = tmp_path_factory.getbasetemp() / 'fuzz.pth'
    path.write_bytes(content)
    try:
        read_checkpoint(path)
    except InputError as exc:
        assert str(exc).startswith(f'{path}: not a readable checkpoint file') and '\n' not in str(exc)
        event(str(exc).split(' (', 1)[1].split(':')[0].rstrip(')'))
    else:
        event('loaded')
