"""What each Veo model accepts: one table, each rule with where it comes from and when.

Checked at submit (``check_modes`` in veotui.core.request) for every generator (the simulator behaves like the model it stands in
for), so a combination a model refuses is a 422 naming the field and the model, and is
never sent to Google. docs/veo.md shows the same table for people.

Sources (dates are when the page was read or published, as noted):

- ``VERTEX-31``: Vertex AI model page "Veo 3.1 Generate" (veo-3.1-generate-001,
  veo-3.1-fast-generate-001): text/image to video, first + last frame, extend, asset
  reference images, sound. GA 2025-11-17; read 2026-11-28.
- ``VERTEX-30``: Vertex AI Veo 3 page: 16:9 and 9:16, 720p and 1080p, 4/6/8 s, up to 4
  videos per request. Read 2026-11-28.
- ``VERTEX-EXTEND``: Vertex AI "Extend a Veo video": veo-3.1-generate-001,
  veo-3.1-fast-generate-001 and veo-3.1-lite-generate-001 extend videos. Read 2026-11-30.
- ``SDK``: google-genai 3.6.1 ``GenerateVideosConfig`` docstrings: reference images exclude
  the input image, the video and the last frame; a last frame is "only supported for image
  to video"; the source takes an image or a video, not both. Read 2026-11-30.
- ``THIRD-PARTY``: provider docs (APIYI, WaveSpeed, jiekou; 2025-10 to 2026-11): 1080p and
  reference images force 8 s; an extension is 720p, 8 s requested, about 7 s added; Lite
  takes first + last frame but no reference images. Not confirmed on a Google page.
- ``VEO2``: Vertex AI Veo 2 page: style reference images (Veo 2 only; retired 2026-06-30).
"""

from __future__ import annotations

from dataclasses import dataclass

from veotui.core.errors import InvalidRequest

#: Every choice some model offers (VERTEX-30), and what a request has when it names none.
ASPECT_RATIOS: tuple[str, ...] = ("16:9", "9:16")
DURATIONS: tuple[int, ...] = (4, 6, 8)
RESOLUTIONS: tuple[str, ...] = ("720p", "1080p")
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


@dataclass(frozen=True)
class Capabilities:
    """One model's row. ``*_durations`` is what a mode forces (None: any of ``durations``)."""

    durations: tuple[int, ...] = DURATIONS  # VERTEX-30
    resolutions: tuple[str, ...] = RESOLUTIONS  # VERTEX-30
    aspect_ratios: tuple[str, ...] = ASPECT_RATIOS  # VERTEX-30
    max_videos: int = MAX_VIDEOS  # VERTEX-30
    image_input: bool = True  # VERTEX-31
    last_frame: bool = True  # VERTEX-31
    reference_types: tuple[str, ...] = ("asset",)  # VERTEX-31 (style: VEO2 only)
    max_references: int = MAX_REFERENCES  # VERTEX-31
    extension: bool = True  # VERTEX-EXTEND
    audio: bool = True  # VERTEX-31
    #: 1080p forces 8 s (THIRD-PARTY).
    hd_durations: tuple[int, ...] | None = (8,)
    #: Reference images force 8 s (THIRD-PARTY).
    reference_durations: tuple[int, ...] | None = (8,)
    #: An extension is asked for as 8 s at 720p and adds about 7 s (THIRD-PARTY).
    extension_durations: tuple[int, ...] | None = (8,)
    extension_resolutions: tuple[str, ...] = ("720p",)


#: The table. A field not set takes the default above, whose comment names its source.
MODEL_CAPABILITIES: dict[str, Capabilities] = {
    "veo-3.1-generate-001": Capabilities(),
    "veo-3.1-fast-generate-001": Capabilities(),
    # Lite: text, one image, first + last frame, extension; no reference images (THIRD-PARTY).
    "veo-3.1-lite-generate-001": Capabilities(reference_types=(), max_references=0),
}
#: The models a request may name, the first being the default.
MODELS: tuple[str, ...] = tuple(MODEL_CAPABILITIES)
DEFAULT_MODEL = MODELS[0]


def capabilities(model: str) -> Capabilities:
    try:
        return MODEL_CAPABILITIES[model]
    except KeyError:
        raise InvalidRequest(f"model must be one of {', '.join(MODEL_CAPABILITIES)}, got {model!r}") from None
