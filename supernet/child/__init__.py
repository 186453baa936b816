"""Children: BN recalibration, extraction from a checkpoint, the child artifact (save/load, its
input contract and the matching preprocessing of raw images), export."""

from supernet.child.artifact import arch_document, extract_artifact, load, read_document, write_artifact
from supernet.child.checkpoint import LoadedSupernet, load_checkpoint, read_checkpoint
from supernet.child.contract import input_contract, preprocess, read_contract
from supernet.child.evaluation import ChildEvaluator, Score, evaluator_for, materialise, resolve_device, score
from supernet.models.calibration import bn_state, calibrate_bn, load_bn_state

__all__ = [
    "calibrate_bn",
    "bn_state",
    "load_bn_state",
    "load",
    "preprocess",
    "input_contract",
    "read_contract",
    "read_document",
    "extract_artifact",
    "write_artifact",
    "arch_document",
    "load_checkpoint",
    "read_checkpoint",
    "LoadedSupernet",
    "ChildEvaluator",
    "Score",
    "score",
    "materialise",
    "resolve_device",
    "evaluator_for",
]
