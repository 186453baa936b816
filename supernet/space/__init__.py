"""Search spaces as data: choices, ``Arch`` (one child), sampling helpers, geometry."""

from supernet.space import mbconv, resnet, vit  # noqa: F401  (register the families)
from supernet.space.arch import Arch, Choices
from supernet.space.errors import ArchError, SpaceError
from supernet.space.loading import available_spaces, config_dir, load_space
from supernet.space.space import Dimension, SearchSpace, families, register_family

__all__ = [
    "Arch", "Choices", "ArchError", "SpaceError", "SearchSpace", "Dimension", "load_space",
    "available_spaces", "config_dir", "families", "register_family",
]
