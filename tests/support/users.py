"""A server's users as its config file would give them, from plain tokens."""

from __future__ import annotations

from collections.abc import Mapping

from veotui.core.access import Role, UserEntry
from veotui.settings import token_sha256


def users_with_tokens(tokens: Mapping[str, str], roles: Mapping[str, Role] | None = None) -> dict[str, UserEntry]:
    """``{name: token}`` as the ``[users.NAME]`` tables holding each token's hash (operators,
    unless ``roles`` names another role)."""
    roles = roles or {}
    return {
        name: UserEntry(name, token_sha256(token), roles.get(name, Role.OPERATOR)) for name, token in tokens.items()
    }
