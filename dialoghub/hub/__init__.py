"""The embedded Hub: server (`python -m dialoghub.hub serve`), storage, and helpers to start it from Python."""

from dialoghub.hub.client import EmbeddedHub, hub_session, start_hub

__all__ = ["EmbeddedHub", "hub_session", "start_hub"]
