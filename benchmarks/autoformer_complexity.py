"""Multiply-adds and parameters of AutoFormer-T children (224px, 1000 classes) next to the paper.

    python benchmarks/autoformer_complexity.py            # analytic counts, checked on extracted children
    python benchmarks/autoformer_complexity.py --no-verify

Counts come from the analytic counter (``supernet.metrics.complexity``): patch-embedding conv,
every linear layer, the two attention matmuls (``q @ k^T``, ``scores @ v``) and the classifier on
the class token; no layer norm, softmax, GELU or additions. Parameters are every parameter of the
extracted child (class token and 197-token position embedding included). Unless ``--no-verify``,
the min and max children are built, extracted and measured with ``FlopCounterMode`` / ``numel``.

The paper (Chen et al., ICCV 2021, Table 3) reports the *searched* AutoFormer-T model: 1.3G FLOPs
(multiply-adds) and 5.7M parameters. That model is the released subnet config of the AutoFormer
code (``experiments/subnet/AutoFormer-T.yaml``): embed 192, depth 13, heads 3 (4 in layer 11),
MLP ratios 3.5 3.5 3 3.5 3 3 4 4 3.5 4 3.5 4 3.5 — its ratio 3.0 lies outside the published
{3.5, 4} space, so it is counted here in a copy of the space that also allows 3.0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table

from supernet.metrics import complexity
from supernet.models import build
from supernet.space import Arch, SearchSpace, load_space

PAPER_T = {"macs": 1.3e9, "params": 5.7e6}
SEARCHED_T_MLP = [3.5, 3.5, 3.0, 3.5, 3.0, 3.0, 4.0, 4.0, 3.5, 4.0, 3.5, 4.0, 3.5]
SEARCHED_T_HEADS = [3] * 10 + [4, 3, 3]


def searched_t(space: SearchSpace) -> tuple[SearchSpace, Arch]:
    """The released AutoFormer-T subnet, in a copy of ``space`` whose layers also allow MLP ratio 3."""
    decl = space.to_dict()
    decl["name"] = f"{space.name}_with_mlp3"
    decl["layers"] = {"heads": [3, 4], "mlp_ratio": [3, 3.5, 4]}
    wide = SearchSpace.from_dict(decl)
    layers = [{"heads": h, "mlp_ratio": m} for h, m in zip(SEARCHED_T_HEADS, SEARCHED_T_MLP)]
    layers += [{"heads": 3, "mlp_ratio": 3}] * (wide.num_stages - len(layers))  # past depth 13: unused
    return wide, wide.validate(Arch({"resolution": 224, "embed_dim": 192, "depth": 13}, layers))


@torch.no_grad()
def measured(space: SearchSpace, arch: Arch) -> tuple[int, int]:
    """(multiply-adds by FlopCounterMode, parameters) of the extracted child."""
    model = build(space, 1000, 3).eval()
    child = model.extract(arch)
    with FlopCounterMode(display=False) as counter:
        child(torch.randn(1, 3, arch.resolution, arch.resolution))
    return counter.get_total_flops() // 2, sum(p.numel() for p in child.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-verify", action="store_true", help="skip building and measuring the children")
    args = parser.parse_args()
    space = load_space("autoformer_tiny")
    wide, searched = searched_t(space)
    children = [("max", space, space.max()), ("min", space, space.min()), ("searched T (released)", wide, searched)]
    rows = []
    for name, sp, arch in children:
        c = complexity(sp, arch, in_chans=3, num_classes=1000)
        check = ""
        if not args.no_verify:
            macs, params = measured(sp, arch)
            check = "yes" if (macs, params) == (c.macs, c.params) else f"NO ({macs / 1e9:.4f}G, {params / 1e6:.4f}M)"
        rows.append([name, str(arch).split("/")[0], f"{c.macs / 1e9:.3f}", f"{c.params / 1e6:.3f}", check or "not run"])
    rows.append(
        ["paper AutoFormer-T", "searched", f"{PAPER_T['macs'] / 1e9:.1f}", f"{PAPER_T['params'] / 1e6:.1f}", "-"]
    )
    print(markdown_table(["child", "arch (globals)", "GMACs", "params (M)", "FlopCounterMode/numel agree"], rows))


if __name__ == "__main__":
    main()
