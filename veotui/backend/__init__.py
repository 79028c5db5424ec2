"""The backend interface the TUI and the CLI use, and its local implementation."""

from veotui.backend.base import Backend, BackendInfo

__all__ = ["Backend", "BackendInfo"]
