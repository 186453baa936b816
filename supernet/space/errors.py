"""Errors raised by search spaces; both are ``ValueError`` so callers can catch either broadly."""


class ArchError(ValueError):
    """An architecture does not belong to a search space (or its string form is malformed)."""


class SpaceError(ValueError):
    """A search-space declaration (YAML or dict) is malformed."""
