"""supernet: train one weight-sharing supernet, take many ready children out of it."""

__version__ = "0.1.0"
