"""The BigNAS claim on digits: children taken out of the supernet (no retraining, BN recalibrated)
vs the same archs trained alone with the same recipe and number of epochs.

    python benchmarks/standalone_vs_supernet.py --epochs 30 --seed 0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import children_override, machine, markdown_table, run_training

from supernet.space import load_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    space = load_space("tiny")
    archs = {"min": space.min(), "mid": space.mid(), "random:1": space.resolve("random:1"), "max": space.max()}
    specs = [str(a) for a in archs.values()]
    common = [
        "experiment=quickstart",
        f"trainer.max_epochs={args.epochs}",
        f"seed={args.seed}",
        "test_after_fit=true",
        children_override(specs),
    ]
    supernet = run_training([*common, "sampler=sandwich"])["rows"]
    rows = []
    for (label, arch), sup in zip(archs.items(), supernet):
        alone = run_training([*common, "sampler=fixed", f"sampler.arch='{arch}'", children_override([str(arch)])])[
            "rows"
        ][0]
        rows.append(
            [
                label,
                str(arch),
                f"{sup['mmacs']:.2f}",
                f"{sup['val_acc']:.4f}",
                f"{alone['val_acc']:.4f}",
                f"{sup['test_acc']:.4f}",
                f"{alone['test_acc']:.4f}",
                f"{sup['test_acc'] - alone['test_acc']:+.4f}",
            ]
        )
    print(f"digits, tiny space, {args.epochs} epochs, seed {args.seed}; device={machine()}")
    print(
        markdown_table(
            ["child", "arch", "MMACs", "supernet val", "alone val", "supernet test", "alone test", "test diff"], rows
        )
    )


if __name__ == "__main__":
    main()
