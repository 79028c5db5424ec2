"""What a generation costs: Google's list price per second of Veo output, and the estimate
of a job (seconds x videos x price per second).

Vertex AI bills Veo per second of generated video. The price depends on the model, on
whether the video has sound, and for some models on the resolution. The table below is
what veotui ships; the config file overrides any figure of it::

    [prices."veo-3.1-generate-001"]
    audio = 0.40          # every resolution, with sound
    silent_1080p = 0.20   # one resolution, without sound

docs/veo.md lists the figures with their source and how sure they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from veotui.core.capabilities import RESOLUTIONS
from veotui.core.errors import SettingsError
from veotui.core.request import JobRequest

#: Where the figures come from, and when they were read (the page is ``VERTEX-PRICING``
#: in ``veotui.core.capabilities.SOURCES``).
PRICES_SOURCE = (
    "Google Cloud, 'Vertex AI pricing', Veo section "
    "(cloud.google.com/vertex-ai/generative-ai/pricing), as quoted in September 2026 by public "
    "notes that read it; the page itself could not be read from here"
)
PRICES_SOURCE_KEY = "VERTEX-PRICING"
PRICES_READ_ON = "2026-12-07"
KINDS = ("audio", "silent")


@dataclass(frozen=True)
class ModelPrice:
    """US dollars per second of output video, by sound (``audio`` or ``silent``) and
    resolution. ``uncertain`` names the figures (``silent_1080p``, ...) that no Google page
    gives; ``certain`` is False when there is any."""

    audio: Mapping[str, float]
    silent: Mapping[str, float]
    uncertain: frozenset[str] = frozenset()
    note: str = ""

    @property
    def certain(self) -> bool:
        return not self.uncertain

    def per_second(self, *, audio: bool, resolution: str) -> float | None:
        table = self.audio if audio else self.silent
        return table.get(resolution)


#: No Google page read here prices Vertex's Veo without sound (the figures with sound are
#: Google's price list, quoted): every silent figure is the one veotui has shipped, marked
#: uncertain until a Google page gives it.
NO_SILENT_PAGE = "no Google page read here gives the prices without sound"

#: The shipped table.
DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    "veo-3.1-generate-001": ModelPrice(
        audio={"720p": 0.40, "1080p": 0.40, "4k": 0.60},
        silent={"720p": 0.20, "1080p": 0.20, "4k": 0.40},
        uncertain=frozenset({"silent_720p", "silent_1080p", "silent_4k"}),
        note=NO_SILENT_PAGE,
    ),
    "veo-3.1-fast-generate-001": ModelPrice(
        audio={"720p": 0.10, "1080p": 0.12, "4k": 0.30},
        # 4k takes the figure with sound, so an estimate errs high, never low.
        silent={"720p": 0.08, "1080p": 0.10, "4k": 0.30},
        uncertain=frozenset({"silent_720p", "silent_1080p", "silent_4k"}),
        note=f"{NO_SILENT_PAGE}; 4k without sound is priced as with sound",
    ),
    # Lite makes no 4k: Google prices it at 720p and 1080p only.
    "veo-3.1-lite-generate-001": ModelPrice(
        audio={"720p": 0.05, "1080p": 0.08},
        silent={"720p": 0.03, "1080p": 0.05},
        uncertain=frozenset({"silent_720p", "silent_1080p"}),
        note=NO_SILENT_PAGE,
    ),
}

#: Veo 3.x makes sound unless asked not to.
AUDIO_BY_DEFAULT = True


@dataclass(frozen=True)
class PriceTable:
    """The shipped table with the config file's overrides applied."""

    models: Mapping[str, ModelPrice] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    overridden: frozenset[str] = frozenset()

    def get(self, model: str) -> ModelPrice | None:
        return self.models.get(model)

    def to_dict(self) -> dict[str, dict[str, dict[str, float]]]:
        """model -> ``audio`` / ``silent`` -> resolution -> dollars a second (``/api/info``)."""
        return {
            model: {"audio": dict(entry.audio), "silent": dict(entry.silent)} for model, entry in self.models.items()
        }

    @classmethod
    def from_dict(cls, data: Any) -> PriceTable:
        """What :meth:`to_dict` wrote; the shipped table where it is missing or unreadable."""
        if not isinstance(data, Mapping) or not data:
            return DEFAULT_TABLE
        models: dict[str, ModelPrice] = {}
        try:
            for model, entry in data.items():
                audio = {str(k): float(v) for k, v in entry.get("audio", {}).items()}
                silent = {str(k): float(v) for k, v in entry.get("silent", {}).items()}
                models[str(model)] = ModelPrice(audio=audio, silent=silent)
        except (AttributeError, TypeError, ValueError):
            return DEFAULT_TABLE
        return cls(models=models)


def price_table(overrides: Mapping[str, Mapping[str, float]] | None = None) -> PriceTable:
    """The shipped table, with ``overrides`` (model -> key -> dollars a second) on top."""
    models = dict(DEFAULT_PRICES)
    for model, keys in (overrides or {}).items():
        base = models.get(model) or ModelPrice(audio={}, silent={})
        audio, silent = dict(base.audio), dict(base.silent)
        uncertain = set(base.uncertain)
        # A flat figure first, so a per-resolution one in the same table wins.
        for key, value in sorted(keys.items(), key=lambda item: "_" in item[0]):
            kind, _, resolution = key.partition("_")
            target = audio if kind == "audio" else silent
            for res in (resolution,) if resolution else (*RESOLUTIONS, *(set(target) - set(RESOLUTIONS))):
                target[res] = float(value)
                uncertain.discard(f"{kind}_{res}")
        models[model] = ModelPrice(
            audio=audio, silent=silent, uncertain=frozenset(uncertain), note="set in the config file"
        )
    return PriceTable(models=models, overridden=frozenset(overrides or ()))


DEFAULT_TABLE = PriceTable()


def wants_audio(request: JobRequest) -> bool:
    """Whether the job's videos have sound: its ``generate_audio``, or the model's default."""
    value = getattr(request, "generate_audio", None)
    return AUDIO_BY_DEFAULT if value is None else bool(value)


def price_per_second(request: JobRequest, prices: PriceTable | None = None) -> float | None:
    entry = (prices or DEFAULT_TABLE).get(request.model)
    if entry is None:
        return None
    return entry.per_second(audio=wants_audio(request), resolution=request.resolution)


def estimate_cost(request: JobRequest, prices: PriceTable | None = None) -> float | None:
    """What Google charges for ``request``, in US
    dollars, rounded to the cent; None when the table has no price for it."""
    per_second = price_per_second(request, prices)
    if per_second is None:
        return None
    return round(request.duration_seconds * request.number_of_videos * per_second, 2)


def parse_overrides(source: str, value: Any) -> dict[str, dict[str, float]]:
    """The config file's ``[prices]`` table, checked; errors name the key and the fix."""
    example = '[prices."veo-3.1-generate-001"] audio = 0.40'
    if not isinstance(value, Mapping):
        raise SettingsError(f"[prices] in {source} must be a table of models, like {example}")
    result: dict[str, dict[str, float]] = {}
    for model, keys in value.items():
        if not isinstance(keys, Mapping):
            raise SettingsError(f'[prices] in {source}: "{model}" must be a table, like {example}')
        checked: dict[str, float] = {}
        for key, raw in keys.items():
            kind, _, resolution = key.partition("_")
            if kind not in KINDS or (resolution and resolution not in RESOLUTIONS):
                allowed = ", ".join([*KINDS, *(f"{k}_{r}" for k in KINDS for r in RESOLUTIONS)])
                raise SettingsError(f'[prices."{model}"] in {source}: unknown key {key!r}; known: {allowed}')
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw < float("inf"):
                raise SettingsError(
                    f'[prices."{model}"] {key} in {source} must be US dollars per second (0 or more), got {raw!r}'
                )
            checked[key] = float(raw)
        result[str(model)] = checked
    return result
