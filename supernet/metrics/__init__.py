"""Complexity (multiply-adds, parameters), latency and ranking statistics."""

from supernet.metrics.complexity import Complexity, complexity

__all__ = ["Complexity", "complexity"]
