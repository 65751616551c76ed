"""xcloud: cloud masks for satellite datacubes."""

__version__ = "0.1.0"
