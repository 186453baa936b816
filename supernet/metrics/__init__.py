"""Complexity (multiply-adds, parameters), latency and ranking statistics."""

from supernet.metrics.complexity import Complexity, complexity
from supernet.metrics.latency import LatencySettings, LatencyTable, measure_latency

__all__ = ["Complexity", "complexity", "measure_latency", "LatencySettings", "LatencyTable"]
