"""Children: BN recalibration, extraction from checkpoints, artifacts (save/load), export."""

from supernet.child.calibration import bn_state, calibrate_bn, load_bn_state

__all__ = ["calibrate_bn", "bn_state", "load_bn_state"]
