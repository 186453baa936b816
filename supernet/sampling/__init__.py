"""Who is trained each step: arch samplers (uniform, sandwich, PA&DA, attentive, progressive
shrinking) and data samplers."""

from supernet.distributed import ShardedSampler, UniformDataSampler
from supernet.sampling.arch_samplers import (
    ArchSampler,
    Child,
    DelayedShrinking,
    FixedSampler,
    SandwichSampler,
    StepInfo,
    UniformSampler,
    step_generator,
)
from supernet.sampling.attentive import AttentiveSampler
from supernet.sampling.data_sampler import PadaDataSampler, sample_scores
from supernet.sampling.pada import PadaPathSampler, PadaSinglePathSampler
from supernet.sampling.progressive_shrinking import ProgressiveShrinkingSampler
from supernet.sampling.step_result import StepResult

__all__ = [
    "ArchSampler",
    "Child",
    "StepInfo",
    "StepResult",
    "FixedSampler",
    "DelayedShrinking",
    "SandwichSampler",
    "UniformSampler",
    "AttentiveSampler",
    "ProgressiveShrinkingSampler",
    "PadaPathSampler",
    "PadaSinglePathSampler",
    "PadaDataSampler",
    "ShardedSampler",
    "UniformDataSampler",
    "sample_scores",
    "step_generator",
]
