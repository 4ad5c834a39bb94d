"""The security suite drives the real server too: the live-connection fixtures are shared."""

from tests.realtime.conftest import server  # noqa: F401
