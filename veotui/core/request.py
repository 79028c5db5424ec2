"""What a user asks for, the validation of raw input into it (each error names the field), and
the rules of the model it names (``veotui.core.capabilities``): what it refuses, by field, and
what it is sent with a caution (what only third parties say it does not take, or no Google
page says it does)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from veotui.core.capabilities import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    DEFAULT_DURATION,
    DEFAULT_MODEL,
    DEFAULT_RESOLUTION,
    DURATIONS,
    EXTENSION_ADDS_SECONDS,
    EXTENSION_SOURCE_SECONDS,
    MAX_PROMPT_CHARS,
    MAX_REFERENCES,
    MAX_SEED,
    MAX_USER_CHARS,
    MAX_VIDEOS,
    MODELS,
    PERSON_GENERATION,
    REFERENCE_TYPES,
    RESOLUTIONS,
    Capabilities,
    capabilities,
)
from veotui.core.errors import InvalidRequest, clipped
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
    #: A name that tags the job as one of a set (a sweep), to list and act on together.
    group: str | None = None
    #: The job this one waits for: it starts only once that job has completed.
    after: str | None = None

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
        "group",
        "after",
    )
    #: Accepted on input beside ``extends``: the form's spelling of it.
    EXTENDS_FIELDS = ("extends_job_id", "extends_video")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, user: str | None = None) -> JobRequest:
        """Validate raw input (form fields, JSON, CLI flags); the error names the field."""
        unknown = sorted(set(data) - set(cls.FIELDS) - set(cls.EXTENDS_FIELDS))
        if unknown:
            accepted = ", ".join((*cls.FIELDS, *cls.EXTENDS_FIELDS))
            raise InvalidRequest(f"unknown field {clipped(unknown[0])}; accepted fields: {accepted}")
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
            group=group_name(data.get("group")),
            after=_job_reference(data.get("after")),
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
            values["extends"] = Extends.from_dict(values["extends"])
        return cls(**values)

    @property
    def video_seconds(self) -> float | None:
        """How long each video of the job is: ``duration_seconds``, or for an extension the
        video it continues plus the 7 s Veo adds (None while that length is unknown)."""
        if self.extends is None:
            return float(self.duration_seconds)
        if self.extends.source_seconds is None:
            return None
        return self.extends.source_seconds + EXTENSION_ADDS_SECONDS

    def continuing(self, seconds: float | None, aspect_ratio: str) -> JobRequest:
        """This extension with what the engine records of the video it continues: its
        length and its aspect ratio."""
        assert self.extends is not None
        extends = replace(self.extends, source_seconds=seconds, source_aspect_ratio=aspect_ratio)
        return replace(self, extends=extends)


@dataclass(frozen=True)
class Extends:
    """This job continues video ``video`` (1-based) of the completed job ``job_id``.
    ``source_seconds`` is that video's length and ``source_aspect_ratio`` its aspect ratio,
    recorded by the engine when the job was submitted (None for jobs submitted before it
    recorded them)."""

    job_id: str
    video: int = 1
    source_seconds: float | None = None
    source_aspect_ratio: str | None = None

    #: What the engine records; given on input, they are ignored.
    RECORDED = ("source_seconds", "source_aspect_ratio")

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "video": self.video,
            "source_seconds": self.source_seconds,
            "source_aspect_ratio": self.source_aspect_ratio,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Extends:
        """What :meth:`to_dict` wrote (trusted)."""
        seconds = data.get("source_seconds")
        return cls(
            job_id=data["job_id"],
            video=int(data["video"]),
            source_seconds=float(seconds) if seconds else None,
            source_aspect_ratio=data.get("source_aspect_ratio") or None,
        )

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> Extends | None:
        """From ``extends`` (``{"job_id", "video"}`` or a job id) or ``extends_job_id`` and
        ``extends_video``. What the engine records (:attr:`RECORDED`) is ignored if given."""
        value = data.get("extends")
        job_id: Any = data.get("extends_job_id")
        video: Any = data.get("extends_video")
        if isinstance(value, Mapping):
            extra = sorted(set(value) - {"job_id", "video", *cls.RECORDED})
            if extra:
                raise InvalidRequest(f"extends takes job_id and video, not {clipped(extra[0])}")
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
            raise InvalidRequest(f"extends_job_id must be a job id (a UUID), got {clipped(job_id)}")
        number = _whole_number({"extends_video": video}, "extends_video", 1)
        if number < 1:
            raise InvalidRequest(f"extends_video is 1-based, got {number}")
        return cls(job_id=job_id.strip().lower(), video=number)


def _job_reference(value: Any) -> str | None:
    """``after``: a job id (absent or empty: none)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not is_job_id(value.strip().lower()):
        raise InvalidRequest(f"after must be a job id (a UUID), got {clipped(value)}")
    return value.strip().lower()


MAX_GROUP_CHARS = 64


def group_name(value: Any) -> str | None:
    """A group's name as given (absent or empty: no group); the error names the field."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"group must be text of 1 to {MAX_GROUP_CHARS} characters, got {value!r}")
    refuse_controls("group", value)
    name = _valid_unicode("group", value.strip())
    if not 1 <= len(name) <= MAX_GROUP_CHARS:
        raise InvalidRequest(f"group must be 1 to {MAX_GROUP_CHARS} characters, got {len(name)}")
    if "/" in name:
        raise InvalidRequest("group must not contain '/': it names a folder in a group's zip and a REST path")
    return name


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
        raise InvalidRequest(f"{name} must be a whole number, got {clipped(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidRequest(f"{name} must be a whole number, got {clipped(value)}")


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
    raise InvalidRequest(f"{name} must be true or false (or left out for the model's default), got {clipped(value)}")


def _optional_choice(data: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lower() in allowed:
        return value.strip().lower()
    raise InvalidRequest(f"{name} must be one of {', '.join(allowed)}, got {clipped(value)}")


def _choice(data: Mapping[str, Any], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = data.get(name, default)
    if value is None or value == "":
        return default
    if value not in allowed:
        raise InvalidRequest(f"{name} must be one of {', '.join(allowed)}, got {clipped(value)}")
    return str(value)


# -- what the model takes -------------------------------------------------------------------


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


def check_modes(
    request: JobRequest,
    *,
    has_image: bool,
    has_last_frame: bool = False,
    reference_count: int = 0,
) -> None:
    """Raise :class:`ModelRefusal` naming the field and the model when ``request.model``
    does not take this combination."""
    problems = refusals(request, has_image=has_image, has_last_frame=has_last_frame, reference_count=reference_count)
    if problems:
        raise problems[0]


def refusals(
    request: JobRequest,
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


def cautions(request: JobRequest, *, reference_count: int = 0) -> list[str]:
    """What the job asks that only third parties say the model does not take, or that no
    Google page says it does: the job is sent all the same, with these sentences in its
    timeline, the form and the CLI. An extension's source is seen through what the engine
    recorded on ``request.extends``."""
    caps = capabilities(request.model)
    found = []
    if reference_count and caps.reference_caution:
        found.append(caps.reference_caution)
    source_ratio = request.extends.source_aspect_ratio if request.extends else None
    if source_ratio is not None and source_ratio != request.aspect_ratio:
        found.append(
            f"the extension asks for {request.aspect_ratio} of a {source_ratio} video, and no Google page read says "
            "Veo extends a video into another aspect ratio; if Google refuses the job, it answers 400 and charges "
            "nothing"
        )
    return found


def _limits(request: JobRequest, caps: Capabilities) -> list[ModelRefusal]:
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


def _reference_rules(request: JobRequest, caps: Capabilities, count: int, other_inputs: bool) -> list[ModelRefusal]:
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


def _extension_rules(request: JobRequest, caps: Capabilities, has_image: bool) -> list[ModelRefusal]:
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


def _forced(request: JobRequest, mode: str, durations: tuple[int, ...] | None, short: str) -> list[ModelRefusal]:
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


def check_extension_source(request: JobRequest, *, source_seconds: float | None, source_name: str) -> None:
    """Raise :class:`ModelRefusal` when the video an extension continues is not 1 to 30 s
    long (``source_name`` names the video). Another aspect ratio is a caution, not a refusal
    (:func:`cautions`): no Google page says an extension keeps its video's."""
    low, high = EXTENSION_SOURCE_SECONDS
    if source_seconds is not None and not low <= round(source_seconds, 1) <= high:
        raise ModelRefusal(
            "extends_video",
            f"extends_video: {source_name} is {source_seconds:.1f} s long; {request.model} extends videos of {low} to {high} s",
            f"over {high} s" if source_seconds > high else f"under {low} s",
            by_model=False,
        )


def _seconds(durations: tuple[int, ...]) -> str:
    return ", ".join(map(str, durations)) + " seconds"
