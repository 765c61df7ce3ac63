"""The version: one place, below everything, so any layer may name it."""

__version__ = "0.1.0"
