"""What each Veo model accepts: one table, each fact with the page it comes from and when
that page was read.

Checked at submit for every generator (the simulator behaves like the model it stands in
for), so a combination a model refuses is a 422 naming the field and the model, and is never
sent to Google. The TUI's form asks the same rules which choices to offer, ``veotui models``
and ``GET /api/models`` show them (``veotui.catalog``), and docs/veo.md shows them for people.

A rule that refuses what a user asks rests on a page of Google's (``Source.by_google``). What
only third parties say refuses nothing: the job is sent, with a caution (:func:`cautions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from veotui.errors import InvalidRequest


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


class ModelRefusal(InvalidRequest):
    """A combination the model does not take; ``str()`` names the field and the model.
    ``field`` is the job field at fault. ``short`` says why in a few words beside the choice
    of that field it rules out, ``model_short`` beside the model (the form's disabled
    choices). ``by_model`` is False for a rule every model shares (a last frame needs an
    input image)."""

    def __init__(
        self, field: str, message: str, short: str, *, model_short: str | None = None, by_model: bool = True
    ) -> None:
        super().__init__(message)
        self.field = field
        self.short = short
        self.model_short = model_short or short
        self.by_model = by_model


def capabilities(model: str) -> Capabilities:
    try:
        return MODEL_CAPABILITIES[model]
    except KeyError:
        raise InvalidRequest(f"model must be one of {', '.join(MODEL_CAPABILITIES)}, got {model!r}") from None


def check_modes(
    request: Any,
    *,
    has_image: bool,
    has_last_frame: bool = False,
    reference_count: int = 0,
) -> None:
    """Raise :class:`ModelRefusal` naming the field and the model when ``request.model``
    does not take this combination. ``request`` is a :class:`veotui.model.JobRequest`."""
    problems = refusals(request, has_image=has_image, has_last_frame=has_last_frame, reference_count=reference_count)
    if problems:
        raise problems[0]


def refusals(
    request: Any,
    *,
    has_image: bool,
    has_last_frame: bool = False,
    reference_count: int = 0,
) -> list[ModelRefusal]:
    """Every rule the request breaks, most basic first (empty: the model takes it)."""
    model = request.model
    caps = capabilities(model)
    extends = request.extends is not None
    found = list(_limits(request, caps))
    if has_last_frame:
        if not has_image:
            found.append(
                ModelRefusal(
                    "last_frame",
                    "last_frame needs an input image: the video moves from the image to the last frame",
                    "needs an input image",
                    by_model=False,
                )
            )
        elif not caps.last_frame:
            found.append(ModelRefusal("last_frame", f"last_frame: {model} does not take a last frame", "no last frame"))
    if reference_count:
        found += _reference_rules(request, caps, reference_count, has_image or has_last_frame or extends)
    if extends:
        found += _extension_rules(request, caps, has_image)
    if request.generate_audio and not caps.audio:
        found.append(ModelRefusal("generate_audio", f"generate_audio: {model} does not make sound", "no sound"))
    return found


def cautions(request: Any, *, reference_count: int = 0) -> list[str]:
    """What only third parties say the model does not take, for a job that asks for it: the
    job is sent all the same, with these sentences in its timeline, the form and the CLI."""
    caps = capabilities(request.model)
    found = []
    if reference_count and caps.reference_caution:
        found.append(caps.reference_caution)
    return found


def _limits(request: Any, caps: Capabilities) -> list[ModelRefusal]:
    model = request.model
    choices = (
        ("resolution", request.resolution, caps.resolutions, f"renders {' or '.join(caps.resolutions)}", ""),
        (
            "duration_seconds",
            request.duration_seconds,
            caps.durations,
            f"makes videos of {_seconds(caps.durations)}",
            " s videos",
        ),
        (
            "aspect_ratio",
            request.aspect_ratio,
            caps.aspect_ratios,
            f"supports aspect ratios {' and '.join(caps.aspect_ratios)}",
            "",
        ),
    )
    found = [
        ModelRefusal(
            name, f"{name}: {model} {offers}, not {value}", "not on this model", model_short=f"no {value}{unit}"
        )
        for name, value, allowed, offers, unit in choices
        if value not in allowed
    ]
    if not 1 <= request.number_of_videos <= caps.max_videos:
        found.append(
            ModelRefusal(
                "number_of_videos",
                f"number_of_videos: {model} returns 1 to {caps.max_videos} videos per request, not {request.number_of_videos}",
                f"at most {caps.max_videos}",
                model_short=f"at most {caps.max_videos} videos",
            )
        )
    return found


def _reference_rules(request: Any, caps: Capabilities, count: int, other_inputs: bool) -> list[ModelRefusal]:
    model, found = request.model, []
    if count > MAX_REFERENCES:
        found.append(
            ModelRefusal(
                "reference_image",
                f"reference_image: at most {MAX_REFERENCES} reference images, got {count}",
                f"at most {MAX_REFERENCES}",
                by_model=False,
            )
        )
    if not caps.reference_types or count > caps.max_references:
        found.append(
            ModelRefusal(
                "reference_image", f"reference_image: {model} does not take reference images", "no reference images"
            )
        )
        return found
    kind = request.reference_type or "asset"
    if kind not in caps.reference_types:
        found.append(
            ModelRefusal(
                "reference_type",
                f"reference_type: {model} takes {' or '.join(caps.reference_types)} reference images, not {kind} "
                "(style references were Veo 2's)",
                f"{' or '.join(caps.reference_types)} only",
                model_short=f"no {kind} references",
            )
        )
    if other_inputs:
        found.append(
            ModelRefusal(
                "reference_image",
                f"reference_image: {model} takes reference images only without an input image, a last frame or an extension",
                "not with an image or extension",
                by_model=False,
            )
        )
    found += _forced(request, "reference images", caps.reference_durations, "with references")
    return found


def _extension_rules(request: Any, caps: Capabilities, has_image: bool) -> list[ModelRefusal]:
    model, found = request.model, []
    if not caps.extension:
        return [ModelRefusal("extends", f"extends: {model} does not extend videos", "does not extend videos")]
    if has_image:
        found.append(
            ModelRefusal(
                "extends",
                f"extends: {model} extends a video without an input image; remove the image",
                "not with an input image",
                by_model=False,
            )
        )
    if request.resolution not in caps.extension_resolutions:
        found.append(
            ModelRefusal(
                "resolution",
                f"resolution: {model} extends videos at {' or '.join(caps.extension_resolutions)}, not {request.resolution}",
                f"extensions are {' or '.join(caps.extension_resolutions)}",
                model_short=f"extends at {' or '.join(caps.extension_resolutions)}",
            )
        )
    found += _forced(request, "an extension", caps.extension_durations, "for an extension")
    return found


def _forced(request: Any, mode: str, durations: tuple[int, ...] | None, short: str) -> list[ModelRefusal]:
    if durations is None or request.duration_seconds in durations:
        return []
    allowed = " or ".join(map(str, durations))
    return [
        ModelRefusal(
            "duration_seconds",
            f"duration_seconds: {request.model} makes {allowed} s videos with {mode}, not {request.duration_seconds}",
            f"{allowed} s {short}",
        )
    ]


def check_extension_source(
    request: Any, *, source_aspect_ratio: str, source_seconds: float | None, source_name: str
) -> None:
    """Raise :class:`ModelRefusal` when the video an extension continues does not fit it:
    another aspect ratio, or a length outside 1 to 30 s (``source_name`` names the video)."""
    if request.aspect_ratio != source_aspect_ratio:
        raise ModelRefusal(
            "aspect_ratio",
            f"aspect_ratio: an extension keeps the video's {source_aspect_ratio}, not {request.aspect_ratio}",
            f"keeps {source_aspect_ratio}",
            by_model=False,
        )
    low, high = EXTENSION_SOURCE_SECONDS
    if source_seconds is not None and not low <= round(source_seconds, 1) <= high:
        raise ModelRefusal(
            "extends_video",
            f"extends_video: {source_name} is {source_seconds:.1f} s long; {request.model} extends videos of {low} to {high} s",
            f"over {high} s",
            by_model=False,
        )


def _seconds(durations: tuple[int, ...]) -> str:
    return ", ".join(map(str, durations)) + " seconds"
