"""Who is trained each step: arch samplers (uniform, sandwich, PA&DA, attentive) and data samplers."""

from supernet.sampling.arch_samplers import (
    ArchSampler, Child, DelayedShrinking, FixedSampler, SandwichSampler, StepInfo, UniformSampler, step_generator,
)
from supernet.sampling.attentive import AttentiveSampler
from supernet.sampling.data_sampler import PadaDataSampler, ShardedSampler, UniformDataSampler, sample_scores
from supernet.sampling.pada import PadaPathSampler

__all__ = [
    "ArchSampler", "Child", "StepInfo", "FixedSampler", "DelayedShrinking", "SandwichSampler", "UniformSampler",
    "AttentiveSampler", "PadaPathSampler", "PadaDataSampler", "ShardedSampler", "UniformDataSampler",
    "sample_scores", "step_generator",
]
