"""Pack a built model folder for the GPU machine: its config and its weights alone, rounded to float16, so that the
generalist (12.5 M parameters) and the wheels fit the 64 MiB that travels with a device call.

Usage:
    python benchmarks/gpu/pack_model.py models/generalist .gpu/generalist

Writes ``OUT/config.py`` and ``OUT/model.pth`` (``state_dict`` in float16 + ``meta``; no optimizer state). mmengine
loads float16 weights into the float32 model, so inference runs in float32 as usual; the CPU comparison in
BENCHMARKS.md uses the same packed file.
"""
import argparse
import os
import os.path as osp
import shutil

import torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('model_dir', help='model folder with config.py and model.pth')
    parser.add_argument('out', help='new folder for the packed model')
    args = parser.parse_args()
    if osp.exists(args.out):
        parser.error(f'{args.out}: exists already')
    checkpoint = torch.load(osp.join(args.model_dir, 'model.pth'), map_location='cpu', weights_only=False)
    state_dict = {name: tensor.half() if tensor.is_floating_point() else tensor
                  for name, tensor in checkpoint['state_dict'].items()}
    os.makedirs(args.out)
    shutil.copy(osp.join(args.model_dir, 'config.py'), osp.join(args.out, 'config.py'))
    torch.save(dict(meta=checkpoint.get('meta', {}), state_dict=state_dict), osp.join(args.out, 'model.pth'))
    print(f"{args.out}: config.py + model.pth ({osp.getsize(osp.join(args.out, 'model.pth')) / 2 ** 20:.1f} MiB)")


if __name__ == '__main__':
    main()
