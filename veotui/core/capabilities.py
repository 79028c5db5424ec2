"""What each Veo model accepts: one table, each fact with the page it comes from and when
that page was read.

Checked at submit (``check_modes`` in veotui.core.request) for every generator (the simulator
behaves like the model it stands in for), so a combination a model refuses is a 422 naming the
field and the model, and is never sent to Google. The TUI's form asks the same rules which
choices to offer, ``veotui models`` and ``GET /api/models`` show them (``veotui.core.catalog``),
and docs/veo.md shows them for people.

A rule that refuses what a user asks rests on a page of Google's (``Source.by_google``). What
only third parties say refuses nothing: the job is sent, with a caution
(``veotui.core.request.cautions``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from veotui.core.errors import InvalidRequest, clipped


@dataclass(frozen=True)
class Source:
    """A page a fact comes from: whose it is, where, and when it was read."""

    key: str
    title: str
    url: str
    read_on: str
    by_google: bool
    #: What it says that veotui relies on, in short.
    says: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "url": self.url,
            "read_on": self.read_on,
            "by_google": self.by_google,
            "says": self.says,
        }


_SOURCES = (
    Source(
        "VERTEX-MODEL",
        "Google Cloud, Vertex AI model page “Veo 3.1” (now under Gemini Enterprise Agent Platform)",
        "https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/veo/3-1-generate",
        "2026-12-07",
        True,
        "veo-3.1-generate-001 and veo-3.1-fast-generate-001 (GA since 2025-11-17): text and image to video, "
        "first and last frame, extension, asset reference images, sound; 16:9 and 9:16; 720p and "
        "“1080, except for video extension”; 4, 6 or 8 s, “reference image to video only supports 8 "
        "seconds”; up to 4 videos a request",
    ),
    Source(
        "VERTEX-EXTEND",
        "Google Cloud, “Extend a Veo video”",
        "https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/video/extend-a-veo-video",
        "2026-12-07",
        True,
        "veo-3.1-generate-001, veo-3.1-fast-generate-001 and veo-3.1-lite-generate-001 (preview) extend videos; "
        "the input is an MP4 of 1 to 30 s at 24 fps, 16:9 or 9:16; “the extended length is 7 seconds”; it "
        "lists 720p, 1080p and 4k for the output, where the model page says 1080p is not for extensions",
    ),
    Source(
        "NOTEBOOK",
        "Google, Veo 3.1 sample notebooks in GoogleCloudPlatform/generative-ai: "
        "vision/getting-started/veo3_video_generation.ipynb (2026-07-21) and veo3_advanced_controls.ipynb "
        "(2026-05-08)",
        "https://github.com/GoogleCloudPlatform/generative-ai/blob/main/vision/getting-started/veo3_video_generation.ipynb",
        "2026-12-07",
        True,
        "runs veo-3.1-generate-001 at 1080p for 6 s and first + last frame at 1080p for 6 s; offers 720p, "
        "1080p or 4k (“4k will introduce increased latency up to several minutes”); runs "
        "veo-3.1-lite-generate-001 at 720p; asks an extension for duration_seconds=7",
    ),
    Source(
        "VERTEX-PRICING",
        "Google Cloud, Vertex AI pricing, Veo section, as quoted in September 2026 by public notes that read "
        "it (the page itself cannot be fetched from where this was written)",
        "https://cloud.google.com/vertex-ai/generative-ai/pricing#veo",
        "2026-12-07",
        True,
        "per second, with sound: 3.1 $0.40 (720p, 1080p) and $0.60 (4k); 3.1 Fast $0.10 / $0.12 / $0.30; "
        "3.1 Lite $0.05 / $0.08, with no 4k row; without sound: 3.1 $0.20 / $0.20 / $0.40; Lite $0.03 / $0.05",
    ),
    Source(
        "SDK",
        "google-genai 3.6.1, GenerateVideosConfig and GenerateVideosSource docstrings (Google's SDK)",
        "https://github.com/googleapis/python-genai",
        "2026-11-30",
        True,
        "reference images go without an input image, a video or a last frame; a last frame is only for "
        "image to video; the source is an image or a video, not both",
    ),
    Source(
        "VERTEX-PARAMS",
        "Google Cloud, VideoGenerationModelParams reference",
        "https://docs.cloud.google.com/gemini-enterprise-agent-platform/reference/rest/Shared.Types/VideoGenerationModelParams",
        "2026-11-28",
        True,
        "personGeneration, enhancePrompt, generateAudio, sampleCount 1 to 4",
    ),
    Source(
        "VEO2",
        "Google Cloud, Vertex AI model page “Veo 2”",
        "https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/veo/2-0-generate",
        "2026-11-28",
        True,
        "style reference images were Veo 2's (retired on 2026-06-30); the Veo 3.1 page lists asset images only",
    ),
    Source(
        "THIRD-PARTY",
        "Provider documentation: APIYI, WaveSpeed, jiekou, GMI Cloud, Vercel AI Gateway (2025-10 to 2026-11)",
        "https://docs.gmicloud.ai/model-quickstarts/video/veo-3-1-lite-generate-001",
        "2026-12-07",
        False,
        "an extension is asked for as 8 s; Lite takes no reference images (veotui warns, and sends the job); "
        "Lite renders 720p and 1080p only",
    ),
)
SOURCES: Mapping[str, Source] = {source.key: source for source in _SOURCES}

#: Every choice some model offers, and what a request has when it names none.
ASPECT_RATIOS: tuple[str, ...] = ("16:9", "9:16")
DURATIONS: tuple[int, ...] = (4, 6, 8)
RESOLUTIONS: tuple[str, ...] = ("720p", "1080p", "4k")
MAX_VIDEOS = 4
DEFAULT_ASPECT_RATIO = "16:9"
DEFAULT_DURATION = 8
DEFAULT_RESOLUTION = "720p"
REFERENCE_TYPES: tuple[str, ...] = ("asset", "style")
PERSON_GENERATION: tuple[str, ...] = ("allow_adult", "dont_allow", "allow_all")
MAX_REFERENCES = 3
#: Limits of a request that no model sets.
MAX_PROMPT_CHARS = 4000
MAX_SEED = 2**32 - 1
MAX_USER_CHARS = 200
#: An extension continues a video of 1 to 30 s and adds 7 s to it (VERTEX-EXTEND).
EXTENSION_SOURCE_SECONDS = (1, 30)
EXTENSION_ADDS_SECONDS = 7


@dataclass(frozen=True)
class Capabilities:
    """One model's row. ``*_durations`` is what a mode forces (None: any of ``durations``).
    ``sources`` names, for each fact, the pages it rests on (the defaults in
    :data:`FACT_SOURCES`, overridden per model)."""

    status: str = "GA"
    durations: tuple[int, ...] = DURATIONS
    resolutions: tuple[str, ...] = RESOLUTIONS
    aspect_ratios: tuple[str, ...] = ASPECT_RATIOS
    max_videos: int = MAX_VIDEOS
    image_input: bool = True
    last_frame: bool = True
    reference_types: tuple[str, ...] = ("asset",)
    max_references: int = MAX_REFERENCES
    extension: bool = True
    audio: bool = True
    #: Reference images make 8 s videos.
    reference_durations: tuple[int, ...] | None = (8,)
    #: An extension is asked for as 8 s (Veo adds 7 s whatever is asked) at 720p.
    extension_durations: tuple[int, ...] | None = (8,)
    extension_resolutions: tuple[str, ...] = ("720p",)
    #: Said only by third parties: veotui sends the job and says so, Google has the last word.
    reference_caution: str | None = None
    sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def preview(self) -> bool:
        return self.status != "GA"

    def source_of(self, fact: str) -> tuple[str, ...]:
        return self.sources.get(fact) or FACT_SOURCES[fact]


#: Where each fact of a row comes from, unless the row says otherwise.
FACT_SOURCES: Mapping[str, tuple[str, ...]] = {
    "status": ("VERTEX-MODEL",),
    "modes": ("VERTEX-MODEL", "SDK"),
    "durations": ("VERTEX-MODEL", "NOTEBOOK"),
    "resolutions": ("VERTEX-MODEL", "NOTEBOOK"),
    "aspect_ratios": ("VERTEX-MODEL",),
    "max_videos": ("VERTEX-MODEL", "VERTEX-PARAMS"),
    "reference_types": ("VERTEX-MODEL", "VEO2"),
    "reference_durations": ("VERTEX-MODEL",),
    "extension": ("VERTEX-EXTEND",),
    "extension_durations": ("VERTEX-EXTEND", "THIRD-PARTY"),
    "extension_resolutions": ("VERTEX-MODEL",),
}

#: The table. A field not set takes the default above; ``sources`` says where it differs.
MODEL_CAPABILITIES: dict[str, Capabilities] = {
    "veo-3.1-generate-001": Capabilities(),
    "veo-3.1-fast-generate-001": Capabilities(
        # The price list prices Fast at 4k; the notebook's 4k is not tied to one model.
        sources={"resolutions": ("VERTEX-MODEL", "NOTEBOOK", "VERTEX-PRICING")},
    ),
    "veo-3.1-lite-generate-001": Capabilities(
        status="preview",
        resolutions=("720p", "1080p"),
        reference_caution=(
            "third-party providers say veo-3.1-lite-generate-001 takes no reference images, and no Google page "
            "read says it does; if Google refuses the job, it answers 400 and charges nothing"
        ),
        sources={
            "status": ("VERTEX-EXTEND",),
            "modes": ("NOTEBOOK", "VERTEX-EXTEND", "THIRD-PARTY"),
            # Google prices Lite at 720p and 1080p and nothing else.
            "resolutions": ("VERTEX-PRICING", "NOTEBOOK", "THIRD-PARTY"),
            # Style is refused by every 3.1 model (Veo 2's); asset goes with a caution.
            "reference_types": ("VEO2", "THIRD-PARTY"),
            "durations": ("NOTEBOOK", "THIRD-PARTY"),
            "aspect_ratios": ("VERTEX-EXTEND",),
        },
    ),
}
#: The models a request may name, the first being the default.
MODELS: tuple[str, ...] = tuple(MODEL_CAPABILITIES)
DEFAULT_MODEL = MODELS[0]


def capabilities(model: str) -> Capabilities:
    try:
        return MODEL_CAPABILITIES[model]
    except KeyError:
        raise InvalidRequest(f"model must be one of {', '.join(MODEL_CAPABILITIES)}, got {clipped(model)}") from None
