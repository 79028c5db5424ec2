"""What a user asks for, and the validation of raw input into it (each error names the field)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from veotui.core.capabilities import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    DEFAULT_DURATION,
    DEFAULT_MODEL,
    DEFAULT_RESOLUTION,
    DURATIONS,
    MAX_PROMPT_CHARS,
    MAX_REFERENCES,
    MAX_SEED,
    MAX_USER_CHARS,
    MAX_VIDEOS,
    MODELS,
    PERSON_GENERATION,
    REFERENCE_TYPES,
    RESOLUTIONS,
    capabilities,
)
from veotui.core.errors import InvalidRequest
from veotui.core.ids import is_job_id
from veotui.core.text import refuse_controls


@dataclass(frozen=True)
class JobRequest:
    """What a user asks for.

    Input from a person or a client (form fields, JSON, CLI flags) comes in through
    :meth:`from_mapping`, which validates. A request read back from the store or from the
    server's JSON (:meth:`from_dict`) was validated when it was submitted and is trusted."""

    prompt: str
    number_of_videos: int = 1
    model: str = DEFAULT_MODEL
    aspect_ratio: str = DEFAULT_ASPECT_RATIO
    duration_seconds: int = DEFAULT_DURATION
    resolution: str = DEFAULT_RESOLUTION
    negative_prompt: str | None = None
    seed: int | None = None
    user: str = "local"
    generate_audio: bool | None = None
    person_generation: str | None = None
    enhance_prompt: bool | None = None
    reference_type: str | None = None
    extends: Extends | None = None

    FIELDS = (
        "prompt",
        "number_of_videos",
        "model",
        "aspect_ratio",
        "duration_seconds",
        "resolution",
        "negative_prompt",
        "seed",
        "user",
        "generate_audio",
        "person_generation",
        "enhance_prompt",
        "reference_type",
        "extends",
    )
    #: Accepted on input beside ``extends``: the form's spelling of it.
    EXTENDS_FIELDS = ("extends_job_id", "extends_video")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, user: str | None = None) -> JobRequest:
        """Validate raw input (form fields, JSON, CLI flags); the error names the field."""
        unknown = sorted(set(data) - set(cls.FIELDS) - set(cls.EXTENDS_FIELDS))
        if unknown:
            accepted = ", ".join((*cls.FIELDS, *cls.EXTENDS_FIELDS))
            raise InvalidRequest(f"unknown field {unknown[0]!r}; accepted fields: {accepted}")
        prompt = data.get("prompt")
        if isinstance(prompt, str):
            refuse_controls("prompt", prompt, allow="\n\t")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequest("prompt is required and must be non-empty text")
        prompt = _valid_unicode("prompt", prompt.strip())
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequest(f"prompt is {len(prompt)} characters; the limit is {MAX_PROMPT_CHARS}")
        count = _whole_number(data, "number_of_videos", 1)
        if not 1 <= count <= MAX_VIDEOS:
            raise InvalidRequest(f"number_of_videos must be 1 to {MAX_VIDEOS}, got {count}")
        model = _choice(data, "model", DEFAULT_MODEL, MODELS)
        aspect = _choice(data, "aspect_ratio", DEFAULT_ASPECT_RATIO, ASPECT_RATIOS)
        duration = _whole_number(data, "duration_seconds", DEFAULT_DURATION)
        if duration not in DURATIONS:
            raise InvalidRequest(f"duration_seconds must be one of {', '.join(map(str, DURATIONS))}, got {duration}")
        resolution = _choice(data, "resolution", DEFAULT_RESOLUTION, RESOLUTIONS)
        negative = data.get("negative_prompt")
        if negative is not None:
            if not isinstance(negative, str):
                raise InvalidRequest("negative_prompt must be text")
            refuse_controls("negative_prompt", negative, allow="\n\t")
            negative = _valid_unicode("negative_prompt", negative.strip()) or None
            if negative and len(negative) > MAX_PROMPT_CHARS:
                raise InvalidRequest(f"negative_prompt is longer than {MAX_PROMPT_CHARS} characters")
        seed = data.get("seed")
        if seed is not None and seed != "":
            seed = _whole_number(data, "seed", 0)
            if not 0 <= seed <= MAX_SEED:
                raise InvalidRequest(f"seed must be 0 to {MAX_SEED}, got {seed}")
        else:
            seed = None
        who = user if user is not None else data.get("user", "local")
        if isinstance(who, str):
            refuse_controls("user", who)
        if not isinstance(who, str) or not who.strip() or len(who) > MAX_USER_CHARS:
            raise InvalidRequest(f"user must be non-empty text of at most {MAX_USER_CHARS} characters")
        return cls(
            prompt=prompt,
            number_of_videos=count,
            model=model,
            aspect_ratio=aspect,
            duration_seconds=duration,
            resolution=resolution,
            negative_prompt=negative,
            seed=seed,
            user=_valid_unicode("user", who.strip()),
            generate_audio=_switch(data, "generate_audio"),
            person_generation=_optional_choice(data, "person_generation", PERSON_GENERATION),
            enhance_prompt=_switch(data, "enhance_prompt"),
            reference_type=_optional_choice(data, "reference_type", REFERENCE_TYPES),
            extends=Extends.from_fields(data),
        )

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.FIELDS}
        data["extends"] = self.extends.to_dict() if self.extends else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobRequest:
        """A request as :meth:`to_dict` wrote it (already validated)."""
        values = {name: data[name] for name in cls.FIELDS if name in data}
        if values.get("extends") is not None:
            values["extends"] = Extends(job_id=values["extends"]["job_id"], video=int(values["extends"]["video"]))
        return cls(**values)


@dataclass(frozen=True)
class Extends:
    """This job continues video ``video`` (1-based) of the completed job ``job_id``."""

    job_id: str
    video: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "video": self.video}

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> Extends | None:
        """From ``extends`` (``{"job_id", "video"}`` or a job id) or ``extends_job_id`` and
        ``extends_video``."""
        value = data.get("extends")
        job_id: Any = data.get("extends_job_id")
        video: Any = data.get("extends_video")
        if isinstance(value, Mapping):
            extra = sorted(set(value) - {"job_id", "video"})
            if extra:
                raise InvalidRequest(f"extends takes job_id and video, not {extra[0]!r}")
            job_id, video = value.get("job_id"), value.get("video", video)
        elif isinstance(value, str) and value:
            job_id = value
        elif value not in (None, ""):
            raise InvalidRequest('extends must be {"job_id": ..., "video": N} or a job id')
        if job_id in (None, ""):
            if video not in (None, ""):
                raise InvalidRequest("extends_video needs extends_job_id: the job whose video to continue")
            return None
        if not isinstance(job_id, str) or not is_job_id(job_id.strip().lower()):
            raise InvalidRequest(f"extends_job_id must be a job id (a UUID), got {job_id!r}")
        number = _whole_number({"extends_video": video}, "extends_video", 1)
        if number < 1:
            raise InvalidRequest(f"extends_video is 1-based, got {number}")
        return cls(job_id=job_id.strip().lower(), video=number)


def _valid_unicode(name: str, text: str) -> str:
    """JSON's \\ud800 escapes decode to lone surrogates, which no file or database can store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"{name} contains a lone surrogate, which is not valid Unicode text") from None
    return text


def _whole_number(data: Mapping[str, Any], name: str, default: int) -> int:
    value = data.get(name, default)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise InvalidRequest(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidRequest(f"{name} must be a whole number, got {value!r}")


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _switch(data: Mapping[str, Any], name: str) -> bool | None:
    """A three-way switch: true, false, or absent/null for the model's default."""
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidRequest(f"{name} must be true or false (or left out for the model's default), got {value!r}")


def _optional_choice(data: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lower() in allowed:
        return value.strip().lower()
    raise InvalidRequest(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def _choice(data: Mapping[str, Any], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = data.get(name, default)
    if value is None or value == "":
        return default
    if value not in allowed:
        raise InvalidRequest(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def check_modes(
    request: JobRequest,
    *,
    has_image: bool,
    has_last_frame: bool = False,
    reference_count: int = 0,
) -> None:
    """Raise :class:`InvalidRequest` naming the field and the model when ``model`` does not
    take this combination."""
    model = request.model
    caps = capabilities(model)
    extends = request.extends is not None
    if has_last_frame:
        if not has_image:
            raise InvalidRequest("last_frame needs an input image: the video moves from the image to the last frame")
        if not caps.last_frame:
            raise InvalidRequest(f"last_frame: {model} does not take a last frame")
    if reference_count:
        if reference_count > MAX_REFERENCES:
            raise InvalidRequest(f"reference_image: at most {MAX_REFERENCES} reference images, got {reference_count}")
        if not caps.reference_types or reference_count > caps.max_references:
            raise InvalidRequest(f"reference_image: {model} does not take reference images")
        kind = request.reference_type or "asset"
        if kind not in caps.reference_types:
            raise InvalidRequest(
                f"reference_type: {model} takes {' or '.join(caps.reference_types)} reference images, not {kind}"
            )
        if kind == "style" and reference_count > 1:
            raise InvalidRequest(f"reference_image: {model} takes one style image, got {reference_count}")
        if has_image or has_last_frame or extends:
            raise InvalidRequest(
                f"reference_image: {model} takes reference images only without an input image, "
                "a last frame or an extension"
            )
        _forced(request, "reference images", caps.reference_durations)
    if extends:
        if not caps.extension:
            raise InvalidRequest(f"extends: {model} does not extend videos")
        if has_image:
            raise InvalidRequest(f"extends: {model} extends a video without an input image; remove the image")
        if request.resolution not in caps.extension_resolutions:
            raise InvalidRequest(
                f"resolution: {model} extends videos at {' or '.join(caps.extension_resolutions)}, "
                f"not {request.resolution}"
            )
        _forced(request, "an extension", caps.extension_durations)
    if request.generate_audio and not caps.audio:
        raise InvalidRequest(f"generate_audio: {model} does not make sound")
    if request.resolution == "1080p":
        _forced(request, "1080p", caps.hd_durations)


def _forced(request: JobRequest, mode: str, durations: tuple[int, ...] | None) -> None:
    if durations is not None and request.duration_seconds not in durations:
        allowed = " or ".join(map(str, durations))
        raise InvalidRequest(
            f"duration_seconds: {request.model} makes {allowed} s videos with {mode}, not {request.duration_seconds}"
        )
