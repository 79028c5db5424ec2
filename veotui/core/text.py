"""Text shown on a terminal or stored: which characters are refused on input, and how stored
text is made safe to print."""

from __future__ import annotations

import re

from veotui.core.errors import InvalidRequest

#: C0 and C1 controls, DEL, and the bidirectional embeddings, overrides and isolates, which
#: reorder the text shown after them.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def refuse_controls(name: str, text: str, allow: str = "") -> None:
    """Refuse a control character (other than those in ``allow``), naming it and its
    1-based position; nothing is stripped silently."""
    for match in _CONTROLS.finditer(text):
        char = match.group()
        if char not in allow:
            what = "bidirectional override" if char >= "\u202a" else "control character"
            kept = " (only newline and tab are allowed)" if allow else ""
            raise InvalidRequest(
                f"{name} contains the {what} U+{ord(char):04X} at position {match.start() + 1}; remove it{kept}"
            )


def printable(text: str, keep: str = "\n\t") -> str:
    """``text`` safe to send to a terminal: each control character (but those in ``keep``)
    and each bidi override is shown as its escape (``\\x1b``, ``\\u202e``), never sent."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        return char if char in keep else char.encode("unicode_escape").decode("ascii")

    return _CONTROLS.sub(escape, text)


def printable_json(text: str) -> str:
    """JSON text (as ``json.dumps(..., ensure_ascii=False)`` writes it) with the controls it
    leaves raw (C1, DEL, the bidi overrides) written as ``\\uXXXX`` escapes: still the same
    JSON, and safe to send to a terminal."""
    return _CONTROLS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
