"""Who is trained each step: arch samplers (uniform, sandwich, PA&DA, attentive) and data samplers."""

from supernet.sampling.arch_samplers import ArchSampler, Child, SandwichSampler, UniformSampler, step_generator

__all__ = ["ArchSampler", "Child", "SandwichSampler", "UniformSampler", "step_generator"]
