"""Complexity (multiply-adds, parameters), latency, ranking statistics, and the report of one child."""

from supernet.metrics.complexity import Complexity, complexity
from supernet.metrics.latency import LatencySettings, LatencyTable, measure_latency
from supernet.metrics.report import ChildReport

__all__ = ["Complexity", "complexity", "measure_latency", "LatencySettings", "LatencyTable", "ChildReport"]
