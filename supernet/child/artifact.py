"""The child artifact: a folder with everything needed to deploy one child, and nothing pickled.

    arch.yaml          the arch (mapping and one-line string), the space it came from, num_classes,
                       in_chans, model_kwargs (what ``load`` needs to rebuild the module), and
                       ``input``: the input contract (size, channels, the preprocessing of raw
                       images; ``supernet.child.contract``, applied by ``supernet.child.preprocess``)
    model.safetensors  the child's state_dict
    model.pt2          ``torch.export`` program of the child (eval mode, dynamic batch size, the
                       contract's input size only): runs without this package
    model.onnx         ONNX export of that program, when ``onnx`` is installed and the export
                       succeeds: one file, except for children over 1 GiB of weights, whose
                       weights go to ``model.onnx.data`` (a protobuf file is limited to 2 GiB)
    metrics.json       the child's report (``supernet.metrics.ChildReport``: multiply-adds, params,
                       accuracy after recalibration, latency) and notes on the exports

The folder is written under a temporary sibling name and renamed at the end, so a crash leaves
no half-written artifact under the final name.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from supernet.child.contract import input_contract
from supernet.errors import first_line
from supernet.files import as_user_file, atomic_folder, check_folder_destination
from supernet.metrics.latency import onnx_program
from supernet.models import build
from supernet.ops import resize_to
from supernet.space import Arch, SearchSpace


def arch_document(
    space: SearchSpace,
    arch: Arch,
    num_classes: int,
    in_chans: int,
    model_kwargs: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """What ``arch.yaml`` (and a search's ``best_*.yaml``) holds; readable by ``arch=<file>``."""
    return {
        "arch_string": str(arch),
        "arch": arch.to_dict(),
        "num_classes": int(num_classes),
        "in_chans": int(in_chans),
        "model_kwargs": dict(model_kwargs or {}),
        **extra,
        "space": space.to_dict(),
    }


def export_program(child: torch.nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    """``torch.export`` of the child in eval mode, with a dynamic batch dimension (the example
    needs a batch of at least 2: torch.export specialises sizes 0 and 1)."""
    return torch.export.export(child.eval(), (example,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))


EXTRACTION_TOLERANCE = 1e-3  # relative to the output scale: float reassociation, TF32 convs on GPUs; a real
# extraction bug moves outputs by O(1)
ONNX_SINGLE_FILE_BYTES = 1 << 30  # larger children keep their ONNX weights in model.onnx.data


def write_artifact(
    folder: Path,
    child: torch.fx.GraphModule,
    document: Mapping[str, Any],
    metrics: Mapping[str, Any],
    example: torch.Tensor,
    onnx: bool = True,
) -> dict[str, Any]:
    """Fill ``folder`` (a fresh temporary folder from ``atomic_folder``); returns ``metrics`` plus
    notes on the exports."""
    from safetensors.torch import save_file

    child = child.eval().cpu()
    example = example.cpu()
    (folder / "arch.yaml").write_text(yaml.safe_dump(dict(document), sort_keys=False))
    save_file({k: v.detach().contiguous() for k, v in child.state_dict().items()}, str(folder / "model.safetensors"))
    as_user_file(folder / "model.safetensors")
    program = export_program(child, example)
    torch.export.save(program, str(folder / "model.pt2"))
    metrics = dict(metrics)
    if not onnx:
        metrics["onnx"] = "not requested (onnx=false)"
    elif importlib.util.find_spec("onnx") is None:
        metrics["onnx"] = "skipped: the onnx package is not installed (pip install supernet[onnx])"
    else:
        try:
            weight_bytes = sum(t.numel() * t.element_size() for t in child.state_dict().values())
            onnx_program(program, example).save(
                str(folder / "model.onnx"), external_data=weight_bytes > ONNX_SINGLE_FILE_BYTES
            )
            metrics["onnx"] = "model.onnx"
        except Exception as err:  # noqa: BLE001 - an optional export; the other files are still valid
            for partial in folder.glob("model.onnx*"):
                partial.unlink()
            metrics["onnx"] = f"skipped: export failed: {first_line(err)}"
    metrics["files"] = sorted([p.name for p in folder.iterdir()] + ["metrics.json"])
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def read_document(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    path = folder / "arch.yaml" if folder.is_dir() else folder
    if not path.is_file():
        raise FileNotFoundError(f"no child artifact at {folder} (expected {path})")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {first_line(err)}") from None
    missing = [k for k in ("arch", "space", "num_classes", "in_chans") if not isinstance(doc, Mapping) or k not in doc]
    if missing:
        raise ValueError(f"{path} is not a child artifact's arch.yaml (missing {missing})")
    return doc


def load(folder: str | Path) -> torch.fx.GraphModule:
    """The child of an artifact folder as a plain ``torch.nn`` module in eval mode.

    Rebuilt from ``arch.yaml`` (space + arch) and filled with ``model.safetensors``; nothing is
    unpickled, so loading an artifact from elsewhere cannot run code.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    doc = read_document(folder)
    folder = folder if folder.is_dir() else folder.parent
    space = SearchSpace.from_dict(doc["space"])
    arch = space.resolve(doc["arch"])
    weights_path = folder / "model.safetensors"
    if not weights_path.is_file():
        raise FileNotFoundError(f"child weights not found: {weights_path}")
    try:
        weights = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(
            f"{weights_path} is not a valid safetensors file (refusing to read it any other way): {first_line(err)}"
        ) from None
    with torch.device("meta"):  # the supernet only gives the child's structure; its weights are replaced
        model = build(space, int(doc["num_classes"]), int(doc["in_chans"]), **dict(doc.get("model_kwargs") or {}))
    child = model.eval().extract(arch)
    try:
        child.load_state_dict(weights, strict=True, assign=True)
    except RuntimeError as err:
        raise ValueError(f"{weights_path} does not hold the weights of arch {arch} ({first_line(err)})") from None
    return child.eval()


def extract_artifact(
    evaluator,
    arch: Arch,
    folder: str | Path,
    data: Any,
    *,
    model_kwargs: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    onnx: bool = True,
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Recalibrate ``arch`` on the evaluator's calibration batches, score it, time it and write its
    artifact folder atomically. ``evaluator`` is a ``supernet.child.ChildEvaluator``; ``data`` the
    data module it reads (its evaluation transform is the child's input contract, ``input`` in
    arch.yaml and metrics.json); ``source`` (e.g. the checkpoint path) is recorded in
    ``metrics.json``; ``model_kwargs`` are the keyword arguments the supernet was built with
    (``load`` rebuilds it with them). Returns the metrics."""
    model = evaluator.model
    folder = check_folder_destination(folder, overwrite)
    report = evaluator.report(arch)  # recalibrates, so the supernet now holds this child's BN statistics
    child = model.extract(arch).eval()
    with torch.no_grad():  # contract 1, checked on the artifact itself before it is written
        x = next(iter(evaluator.calibration))[0][:8]
        x = resize_to(x, arch.resolution)
        expected = model(x)
        diff = float((child(x) - expected).abs().max())
    if not diff <= EXTRACTION_TOLERANCE * (1.0 + float(expected.abs().max())):
        raise RuntimeError(
            f"the extracted child {arch} computes outputs {diff:.3g} away from the supernet's; "
            "no artifact written (this is a bug in supernet: please report it)"
        )
    contract = input_contract(data, arch.resolution, model.in_chans, next(child.parameters()).dtype)
    metrics = {**report.to_dict(), "max_abs_diff_vs_supernet": diff, **dict(source or {}), "input": contract}
    document = arch_document(model.space, arch, model.num_classes, model.in_chans, model_kwargs, input=contract)
    example = torch.randn(2, *evaluator.input_shape(arch))
    with atomic_folder(folder, overwrite) as tmp:
        metrics = write_artifact(tmp, child, document, metrics, example, onnx=onnx)
    return metrics
