"""The models as ``veotui models`` and ``GET /api/models`` show them: what each accepts, its
prices by resolution, whether it is preview, and the page and date behind each fact.

Built from the rules table (``veotui.core.capabilities``) and the engine's price table, so it
says exactly what the engine enforces and charges. Plain JSON-able data (docs/api.md).
"""

from __future__ import annotations

from typing import Any

from veotui.core.capabilities import (
    DEFAULT_MODEL,
    EXTENSION_ADDS_SECONDS,
    EXTENSION_SOURCE_SECONDS,
    MODEL_CAPABILITIES,
    RESOLUTIONS,
    SOURCES,
    Capabilities,
)
from veotui.core.prices import PRICES_SOURCE_KEY, ModelPrice, PriceTable


def model_catalog(prices: PriceTable) -> dict[str, Any]:
    """Every model with what it accepts and costs; ``sources`` describes each source key
    the facts name."""
    return {
        "default_model": DEFAULT_MODEL,
        "models": [_model(model, caps, prices) for model, caps in MODEL_CAPABILITIES.items()],
        "sources": {key: source.to_dict() for key, source in SOURCES.items()},
    }


def _model(model: str, caps: Capabilities, prices: PriceTable) -> dict[str, Any]:
    price = prices.get(model)
    return {
        "model": model,
        "default": model == DEFAULT_MODEL,
        "status": caps.status,
        "preview": caps.preview,
        "accepts": _accepts(caps),
        "prices": _prices(price, overridden=model in prices.overridden),
        "facts": _facts(caps, price, overridden=model in prices.overridden),
    }


def _modes(caps: Capabilities) -> list[str]:
    modes = ["text"]
    if caps.image_input:
        modes.append("image")
    if caps.image_input and caps.last_frame:
        modes.append("first_last_frame")
    if caps.reference_types:
        modes.append("reference_images")
    if caps.extension:
        modes.append("extension")
    if caps.audio:
        modes.append("sound")
    return modes


def _accepts(caps: Capabilities) -> dict[str, Any]:
    low, high = EXTENSION_SOURCE_SECONDS
    return {
        "modes": _modes(caps),
        "resolutions": list(caps.resolutions),
        "durations": list(caps.durations),
        "durations_with_reference_images": list(caps.reference_durations or caps.durations)
        if caps.reference_types
        else [],
        "number_of_videos": {"min": 1, "max": caps.max_videos},
        "aspect_ratios": list(caps.aspect_ratios),
        "reference_types": list(caps.reference_types),
        "max_reference_images": caps.max_references if caps.reference_types else 0,
        "extension": {
            "source_seconds": {"min": low, "max": high},
            "adds_seconds": EXTENSION_ADDS_SECONDS,
            "resolutions": list(caps.extension_resolutions),
            "durations": list(caps.extension_durations or caps.durations),
        }
        if caps.extension
        else None,
    }


def _prices(price: ModelPrice | None, *, overridden: bool) -> dict[str, Any]:
    if price is None:
        return {"audio": {}, "silent": {}, "uncertain": [], "note": "not in the price table", "source": None}
    return {
        "audio": _by_resolution(price.audio),
        "silent": _by_resolution(price.silent),
        "uncertain": sorted(price.uncertain),
        "note": price.note,
        "source": "config file" if overridden else PRICES_SOURCE_KEY,
    }


def _by_resolution(table: Any) -> dict[str, float]:
    """Resolutions in their usual order, then any other the config file named."""
    ordered = [r for r in RESOLUTIONS if r in table] + sorted(set(table) - set(RESOLUTIONS))
    return {resolution: table[resolution] for resolution in ordered}


def _facts(caps: Capabilities, price: ModelPrice | None, *, overridden: bool) -> list[dict[str, Any]]:
    """One line per fact: what it is, what the model does, and the pages it rests on."""
    low, high = EXTENSION_SOURCE_SECONDS
    mode_names = {
        "text": "text",
        "image": "image",
        "first_last_frame": "first + last frame",
        "reference_images": f"reference images (up to {caps.max_references})",
        "extension": "extension",
        "sound": "sound",
    }
    lines: list[tuple[str, str, str]] = [
        ("status", "status", "preview" if caps.preview else "generally available (GA)"),
        ("modes", "modes", ", ".join(mode_names[m] for m in _modes(caps))),
        ("resolutions", "resolutions", ", ".join(caps.resolutions)),
        ("durations", "lengths", f"{_list(caps.durations)} s at every resolution"),
        ("aspect_ratios", "aspect ratios", ", ".join(caps.aspect_ratios)),
        ("max_videos", "videos a request", f"1 to {caps.max_videos}"),
        ("reference_types", "reference images", _references(caps)),
    ]
    if caps.reference_types and caps.reference_durations:
        lines.append(("reference_durations", "with reference images", f"{_list(caps.reference_durations)} s only"))
    if caps.extension:
        lines += [
            ("extension", "extension", f"continues a video of {low} to {high} s and adds {EXTENSION_ADDS_SECONDS} s"),
            ("extension_resolutions", "extension resolution", ", ".join(caps.extension_resolutions)),
            ("extension_durations", "extension asked as", f"{_list(caps.extension_durations or caps.durations)} s"),
        ]
    facts = [
        {"fact": fact, "label": label, "value": value, "sources": list(caps.source_of(fact))}
        for fact, label, value in lines
    ]
    if price is not None:
        facts.append(
            {
                "fact": "prices",
                "label": "price a second",
                "value": _price_line(price),
                "sources": ["config file"] if overridden else [PRICES_SOURCE_KEY],
            }
        )
    return facts


def _references(caps: Capabilities) -> str:
    if not caps.reference_types:
        return "none"
    text = ", ".join(caps.reference_types) + " (not style: that was Veo 2's)"
    if caps.reference_caution:
        text += "; sent with a caution: " + caps.reference_caution
    return text


def _price_line(price: ModelPrice) -> str:
    def kind(table: Any, name: str) -> str:
        figures = ", ".join(
            f"${value:.2f} {resolution}" + (" (uncertain)" if f"{name}_{resolution}" in price.uncertain else "")
            for resolution, value in _by_resolution(table).items()
        )
        return figures or "-"

    return f"with sound {kind(price.audio, 'audio')}; silent {kind(price.silent, 'silent')}"


def _list(values: tuple[int, ...]) -> str:
    items = [str(v) for v in values]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
