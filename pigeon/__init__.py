"""Pigeon: a self-hosted messaging server for communities."""

import sys

__version__ = "0.1.0"

# FastAPI imports pydantic's bundled v1 package (1.7 MiB resident in every process) only to
# ask whether a route's types are v1 models, and Pigeon has none. Marked absent, FastAPI
# answers no without loading it, as it does where pydantic ships without v1. Nothing else here
# uses it; if something loaded it already, it stays.
sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]
