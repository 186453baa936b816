"""``supernet-extract``: one child of a checkpoint -> an artifact folder (Hydra app over ``conf/extract.yaml``).

    supernet-extract ckpt_path=outputs/train/.../checkpoints/last.ckpt arch=mid
    supernet-extract ckpt_path=... arch=r20s16h96/w16d2k3e1/w24d2k5e3/w32d3k5e4 out=children/c1
    supernet-extract ckpt_path=... arch=outputs/search/.../best_macs_max_2000000.yaml

The folder holds arch.yaml, model.safetensors, model.pt2, model.onnx and metrics.json (see
``supernet.child.artifact``); load it with ``supernet.child.load(folder)`` or ``torch.export.load``,
and feed it raw images through ``supernet.child.preprocess(images, folder)`` (the input contract
in arch.yaml: size, channels, normalisation, resize rule).
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from supernet.cli.common import CONFIG_PATH, evaluator, holds_out_search, load, plain, user_errors
from supernet.cli.config_errors import one_line_config_errors
from supernet.cli.outputs import command_dir  # noqa: F401  (registers the resolver of hydra.run.dir)


def run(cfg: DictConfig) -> dict:
    from hydra.utils import instantiate

    from supernet.child import extract_artifact
    from supernet.files import check_folder_destination

    # Checks before any work: the checkpoint, the destination, the arch.
    loaded = load(cfg)
    out = check_folder_destination(cfg.out, cfg.overwrite)
    arch = loaded.space.resolve(plain(cfg.arch))
    metrics = extract_artifact(
        evaluator(cfg, loaded, search=holds_out_search(loaded)),
        arch,
        out,
        instantiate(cfg.data),  # its evaluation transform: the input contract
        model_kwargs=loaded.meta.get("model_kwargs"),
        overwrite=cfg.overwrite,
        onnx=cfg.onnx,
        source={"checkpoint": str(Path(cfg.ckpt_path)), "checkpoint_sha256": loaded.fingerprint},
    )
    print(
        f"child {arch}\n  {metrics['mmacs']:.2f} MMACs, {metrics['params'] / 1e6:.3f} M params, "
        f"val acc {metrics['val_acc']:.4f}, test acc {metrics['test_acc']:.4f}, "
        f"latency {metrics['latency']['ms']:.2f} ms ({metrics['latency']['device']}, "
        f"batch {metrics['latency']['batch_size']})\n  input: {input_line(metrics['input'])}\n"
        f"  onnx: {metrics['onnx']}\nartifact: {out}"
    )
    return metrics


def input_line(contract: dict) -> str:
    """The input contract in a few words: the tensor, then the steps from a raw image."""
    size, steps = contract["size"], contract["steps"]
    tensor = f"{contract['dtype']} N x {contract['channels']} x {size} x {size}"
    return tensor + (f" from raw images by {' > '.join(s['op'] for s in steps)}" if steps else "")


@one_line_config_errors
@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="extract")
@user_errors
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
