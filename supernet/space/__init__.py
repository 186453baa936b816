"""Search spaces as data: choices, ``Arch`` (one child), sampling helpers, geometry, families."""

from supernet.space import mbconv, resnet, vit  # noqa: F401  (each registers its family)
from supernet.space.arch import Arch, Choices
from supernet.space.errors import ArchError, SpaceError
from supernet.space.family import Family, ParsedSpace, families, get_family, register_family
from supernet.space.loading import available_spaces, config_dir, load_space
from supernet.space.space import Dimension, SearchSpace

__all__ = [
    "Arch",
    "Choices",
    "ArchError",
    "SpaceError",
    "SearchSpace",
    "Dimension",
    "load_space",
    "available_spaces",
    "config_dir",
    "Family",
    "ParsedSpace",
    "families",
    "get_family",
    "register_family",
]
