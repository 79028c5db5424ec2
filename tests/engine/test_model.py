import dataclasses
import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from veotui.core.errors import ErrorKind, InvalidRequest
from veotui.core.ids import new_job_id
from veotui.core.job import ACTIVE_STATUSES, FINAL_STATUSES, TRANSITIONS, Job, Status, Video, can_transition
from veotui.core.request import JobRequest


def test_the_nine_statuses_in_order():
    assert [s.value for s in Status] == [
        "queued",
        "starting",
        "uploading_image",
        "generating",
        "processing",
        "downloading",
        "completed",
        "failed",
        "cancelled",
    ]
    assert set(TRANSITIONS) == set(Status)


def test_every_processing_stage_can_be_cancelled_or_failed_and_completed_is_a_dead_end():
    for stage in ACTIVE_STATUSES:
        assert can_transition(stage, Status.CANCELLED)
        assert can_transition(stage, Status.FAILED)
    assert can_transition(Status.QUEUED, Status.CANCELLED)
    assert not can_transition(Status.QUEUED, Status.FAILED)
    assert TRANSITIONS[Status.COMPLETED] == frozenset()
    assert {s for s in FINAL_STATUSES if can_transition(s, Status.QUEUED)} == {Status.FAILED, Status.CANCELLED}
    # Stages only move forward one at a time.
    for current, following in itertools.pairwise(ACTIVE_STATUSES):
        assert can_transition(current, following)
        assert not can_transition(following, current)
    assert not can_transition(Status.STARTING, Status.GENERATING)


def test_a_request_s_defaults():
    request = JobRequest.from_mapping({"prompt": "  a fox  "})
    assert request.to_dict() == {
        "prompt": "a fox",
        "number_of_videos": 1,
        "model": "veo-3.1-generate-001",
        "aspect_ratio": "16:9",
        "duration_seconds": 8,
        "resolution": "720p",
        "negative_prompt": None,
        "seed": None,
        "user": "local",
        "generate_audio": None,
        "person_generation": None,
        "enhance_prompt": None,
        "reference_type": None,
        "extends": None,
        "group": None,
        "after": None,
    }


def test_form_strings_are_accepted_like_json_numbers():
    request = JobRequest.from_mapping(
        {"prompt": "p", "number_of_videos": "4", "duration_seconds": "6", "seed": "42", "negative_prompt": ""}
    )
    assert (request.number_of_videos, request.duration_seconds, request.seed, request.negative_prompt) == (
        4,
        6,
        42,
        None,
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "prompt is required"),
        ({"prompt": "   "}, "prompt is required"),
        ({"prompt": 5}, "prompt is required"),
        ({"prompt": "x" * 4001}, "limit is 4000"),
        ({"prompt": "p", "number_of_videos": 5}, "number_of_videos must be 1 to 4"),
        ({"prompt": "p", "number_of_videos": 0}, "number_of_videos must be 1 to 4"),
        ({"prompt": "p", "number_of_videos": "two"}, "number_of_videos must be a whole number"),
        ({"prompt": "p", "number_of_videos": True}, "number_of_videos must be a whole number"),
        ({"prompt": "p", "number_of_videos": 1.5}, "number_of_videos must be a whole number"),
        ({"prompt": "p", "model": "veo-9"}, "model must be one of"),
        ({"prompt": "p", "aspect_ratio": "4:3"}, "aspect_ratio must be one of 16:9, 9:16"),
        ({"prompt": "p", "duration_seconds": 5}, "duration_seconds must be one of 4, 6, 8"),
        ({"prompt": "p", "resolution": "8k"}, "resolution must be one of 720p, 1080p, 4k"),
        ({"prompt": "p", "seed": -1}, "seed must be 0 to"),
        ({"prompt": "p", "seed": 2**32}, "seed must be 0 to"),
        ({"prompt": "p", "negative_prompt": ["x"]}, "negative_prompt must be text"),
        ({"prompt": "p", "colour": "red"}, "unknown field 'colour'"),
        ({"prompt": "p", "user": ""}, "user must be non-empty"),
    ],
)
def test_bad_requests_name_the_field(fields, message):
    with pytest.raises(InvalidRequest, match=message):
        JobRequest.from_mapping(fields)


def test_job_json_round_trip_and_video_urls():
    job = Job(job_id=new_job_id(), status=Status.QUEUED, request=JobRequest.from_mapping({"prompt": "p", "seed": 3}))
    data = job.to_dict()
    assert data["created_at"].endswith("Z")
    assert set(data) >= {
        "job_id",
        "status",
        "progress",
        "queue_position",
        "prompt",
        "number_of_videos",
        "model",
        "aspect_ratio",
        "duration_seconds",
        "resolution",
        "negative_prompt",
        "seed",
        "has_image",
        "user",
        "created_at",
        "started_at",
        "finished_at",
        "attempts",
        "error",
        "operation",
        "videos",
    }
    again = Job.from_dict(data)
    assert again.to_dict() == data


def test_replace_copies_every_field_like_dataclasses_replace():
    # Job.replace copies the instance dict for speed; this fails if Job ever gets slots=True
    # (no instance dict) or a field replace would not carry over.
    job = Job(job_id=new_job_id(), status=Status.QUEUED, request=JobRequest.from_mapping({"prompt": "p"}))
    changes: dict[str, Any] = {
        "status": Status.STARTING,
        "attempts": 2,
        "videos": (Video(1, "generated_video_1.mp4", 3),),
    }
    copy = job.replace(**changes)
    assert copy == dataclasses.replace(job, **changes)
    assert type(copy) is Job and job.status == Status.QUEUED
    assert {f.name: getattr(copy, f.name) for f in dataclasses.fields(Job)} == {
        **{f.name: getattr(job, f.name) for f in dataclasses.fields(Job)},
        **changes,
    }
    with pytest.raises(TypeError, match="no field 'colour'"):
        job.replace(colour="red")


def test_every_error_kind_is_documented_in_the_api_reference():
    api = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \| ", api, re.M))
    assert {kind.value for kind in ErrorKind} <= documented


def test_the_faces_start_from_the_request_defaults():
    from veotui.cli import build_parser

    args = build_parser().parse_args(["submit", "p"])
    default = JobRequest(prompt="p")
    assert (args.model, args.aspect_ratio, args.duration, args.resolution, args.count) == (
        default.model,
        default.aspect_ratio,
        default.duration_seconds,
        default.resolution,
        default.number_of_videos,
    )
