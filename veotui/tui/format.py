"""Moved to :mod:`veotui.format` (the client verbs share it); this name still imports."""

from veotui.format import *  # noqa: F403
