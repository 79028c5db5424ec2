"""Sweeps: one request tried with several values of some of its fields, as one group of jobs.

``--vary seed=1,2 --vary model=veo-3.1-fast-generate-001,veo-3.1-lite-generate-preview``
makes the cross product (four jobs). A name that is not a job field is a placeholder: the
prompt says where it goes with ``{NAME}``. Every ``{NAME}`` in the prompt is filled in."""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from veotui.core.errors import InvalidRequest
from veotui.core.request import JobRequest

#: Jobs one sweep may make: past this a typo in a value list is likelier than a wish.
MAX_SWEEP_JOBS = 100
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: Fields a sweep cannot vary: the prompt is varied through its placeholders, and the
#: group is what the sweep makes.
_NOT_VARIED = {"prompt", "group", "user"}


@dataclass(frozen=True)
class Vary:
    """One ``--vary NAME=V1,V2``: a job field or a prompt placeholder, and its values."""

    name: str
    values: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Vary:
        name, sep, values = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidRequest(f"--vary takes NAME=V1,V2,…, got {text!r}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise InvalidRequest(f"--vary {name!r}: a name is letters, digits and _ (a job field or a {{NAME}})")
        if name in _NOT_VARIED:
            raise InvalidRequest(f"--vary {name}: {name} cannot be varied; put {{NAME}} placeholders in the prompt")
        parts = tuple(value.strip() for value in values.split(","))
        if not all(parts):
            raise InvalidRequest(f"--vary {name}: every value must be non-empty, got {values!r}")
        if len(set(parts)) != len(parts):
            raise InvalidRequest(f"--vary {name}: a value is given twice in {values!r}")
        return cls(name, parts)


def placeholders(prompt: str) -> list[str]:
    """The ``{NAME}`` placeholders of a prompt, in order of first use."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(prompt)))


def expand(fields: Mapping[str, Any], varies: Sequence[Vary]) -> list[dict[str, Any]]:
    """The cross product of ``varies`` over ``fields``: one field mapping per job, the prompt's
    placeholders filled in. Refuses a name given twice, a name that is neither a job field
    nor used in the prompt, and a placeholder no ``--vary`` fills."""
    names = [vary.name for vary in varies]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InvalidRequest(f"--vary {twice[0]} is given twice; give all its values in one --vary")
    prompt = str(fields.get("prompt") or "")
    used = placeholders(prompt)
    unfilled = [name for name in used if name not in names]
    if unfilled:
        raise InvalidRequest(f"the prompt uses {{{unfilled[0]}}} but no --vary {unfilled[0]}=… gives its values")
    fields_names = set(JobRequest.FIELDS) | set(JobRequest.EXTENDS_FIELDS)
    for vary in varies:
        if vary.name not in fields_names and vary.name not in used:
            raise InvalidRequest(
                f"--vary {vary.name}: not a job field, and the prompt has no {{{vary.name}}} to fill in"
            )
    count = 1
    for vary in varies:
        count *= len(vary.values)
    if count > MAX_SWEEP_JOBS:
        raise InvalidRequest(f"the sweep makes {count} jobs; the limit is {MAX_SWEEP_JOBS}")
    jobs = []
    for combination in itertools.product(*(vary.values for vary in varies)):
        values = dict(zip(names, combination, strict=True))
        job = dict(fields)
        job["prompt"] = fill(prompt, values)
        job.update({name: value for name, value in values.items() if name in fields_names})
        jobs.append(job)
    return jobs


def fill(prompt: str, values: Mapping[str, str]) -> str:
    """The prompt with each ``{NAME}`` that ``values`` names replaced by its value."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), prompt)


def new_group_name() -> str:
    """A fresh group name for a sweep given none."""
    return f"sweep-{secrets.token_hex(4)}"


#: The request fields a caption compares, in the order it shows them.
_CAPTION_FIELDS = (
    "model",
    "seed",
    "duration_seconds",
    "resolution",
    "aspect_ratio",
    "number_of_videos",
    "negative_prompt",
    "generate_audio",
    "person_generation",
    "enhance_prompt",
)


def varying_values(requests: Iterable[JobRequest]) -> list[str]:
    """For each request, the values in which the requests differ, as one caption
    (``seed=2 · a red fox``): the fields that differ, then the part of the prompt that does
    (what a placeholder filled in), with the prompts' shared start and end trimmed away."""
    requests = list(requests)
    if not requests:
        return []
    differing = [name for name in _CAPTION_FIELDS if len({getattr(r, name) for r in requests}) > 1]
    prompts = [r.prompt for r in requests]
    middles = _middles(prompts) if len(set(prompts)) > 1 else [""] * len(prompts)
    captions = []
    for request, middle in zip(requests, middles, strict=True):
        parts = [f"{_short(name)}={_value(getattr(request, name))}" for name in differing]
        if middle:
            parts.append(middle)
        captions.append(" · ".join(parts))
    return captions


def _middles(texts: list[str]) -> list[str]:
    """Each text without the start and the end that every text shares (cut at word breaks)."""
    start = len(_common_prefix(texts))
    end = len(_common_prefix([t[::-1] for t in texts]))
    start = _word_start(texts[0], start)
    middles = []
    for text in texts:
        stop = max(start, len(text) - end)
        stop = _word_end(text, stop)
        middles.append(text[start:stop].strip() or "…")
    return middles


def _common_prefix(texts: list[str]) -> str:
    first, last = min(texts), max(texts)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def _word_start(text: str, at: int) -> int:
    while 0 < at < len(text) and not text[at - 1].isspace():
        at -= 1
    return at


def _word_end(text: str, at: int) -> int:
    while 0 < at < len(text) and not text[at].isspace():
        at += 1
    return at


def _short(name: str) -> str:
    return {"duration_seconds": "duration", "number_of_videos": "videos", "negative_prompt": "negative"}.get(name, name)


def _value(value: Any) -> str:
    return "default" if value is None else str(value)
