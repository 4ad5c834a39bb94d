"""Pigeon: a self-hosted messaging server for communities."""

__version__ = "0.1.0"
