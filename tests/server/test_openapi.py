"""The OpenAPI document describes what the server really answers."""

from __future__ import annotations

import json

from fastapi.routing import APIRoute
from starlette.routing import Match

from tests.support.waiting import wait_for
from veotui.core.ids import new_job_id
from veotui.server.app import create_app
from veotui.server.schemas import (
    DeletedOut,
    Error,
    HealthOut,
    InfoOut,
    JobListsOut,
    JobOut,
    MetricsOut,
    ResolvedOut,
    TimelineOut,
)

API_PATHS = {
    ("post", "/api/generate"),
    ("get", "/api/status/{job_id}"),
    ("post", "/api/cancel/{job_id}"),
    ("post", "/api/retry/{job_id}"),
    ("delete", "/api/delete/{job_id}"),
    ("get", "/api/download/{job_id}"),
    ("get", "/api/download/{job_id}/video/{index}"),
    ("get", "/api/jobs"),
    ("get", "/api/events"),
    ("get", "/api/metrics"),
    ("get", "/api/health"),
}


async def test_every_api_path_is_documented_with_its_errors(http):
    document = (await http.get("/openapi.json")).json()
    documented = {(method, path) for path, methods in document["paths"].items() for method in methods}
    assert documented >= API_PATHS
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for status, answer in operation["responses"].items():
                if status.startswith("4"):
                    # FastAPI's own validation-error shape would be a lie: ours is a sentence.
                    assert json.dumps(answer).count("#/components/schemas/Error") == 1, (method, path, status)
    generate = document["paths"]["/api/generate"]["post"]
    assert set(generate["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "image" in generate["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]


async def test_real_answers_match_the_documented_shapes(http):
    job = (await http.post("/api/generate", json={"prompt": "shapes", "number_of_videos": 2})).json()
    JobOut.model_validate(job)
    job_id = job["job_id"]

    async def completed() -> bool:
        return (await http.get(f"/api/status/{job_id}")).json()["status"] == "completed"

    await wait_for(completed, what="the job to complete")
    JobOut.model_validate((await http.get(f"/api/status/{job_id}")).json())
    JobListsOut.model_validate((await http.get("/api/jobs")).json())
    TimelineOut.model_validate((await http.get(f"/api/jobs/{job_id}/events")).json())
    ResolvedOut.model_validate((await http.get(f"/api/resolve/{job_id[:4]}")).json())
    MetricsOut.model_validate((await http.get("/api/metrics")).json())
    InfoOut.model_validate((await http.get("/api/info")).json())
    HealthOut.model_validate((await http.get("/api/health")).json())
    Error.model_validate((await http.post(f"/api/retry/{job_id}")).json())
    Error.model_validate((await http.get("/api/jobs?limit=x")).json())
    DeletedOut.model_validate((await http.delete(f"/api/delete/{job_id}")).json())


async def test_the_documented_status_handler_is_the_one_that_answers(local_backend, settings):
    app = create_app(local_backend, settings)
    scope = {"type": "http", "method": "GET", "path": f"/api/status/{new_job_id()}", "root_path": ""}
    answering = next(route for route in app.router.routes if route.matches(scope)[0] == Match.FULL)
    assert isinstance(answering, APIRoute) and answering.include_in_schema
    operation = app.openapi()["paths"]["/api/status/{job_id}"]["get"]
    assert [(p["name"], p["in"], p["required"]) for p in operation["parameters"]] == [("job_id", "path", True)]


async def test_every_route_is_declared_in_the_module_of_its_resource(local_backend, settings):
    app = create_app(local_backend, settings)
    declared = {
        (method, route.path): route.endpoint.__module__
        for route in app.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert set(declared.values()) <= {
        f"veotui.server.routes.{name}"
        for name in (
            "jobs",
            "webhooks",
            "queue",
            "downloads",
            "groups",
            "me",
            "audit",
            "pictures",
            "events",
            "metrics",
            "models",
            "logs",
            "info",
            "health",
        )
    }
    assert declared[("GET", "/api/status/{job_id}")] == "veotui.server.routes.jobs"
    assert declared[("POST", "/api/move/{job_id}")] == "veotui.server.routes.queue"
    assert declared[("GET", "/api/download/{job_id}/video/{index}")] == "veotui.server.routes.downloads"
    assert declared[("GET", "/metrics")] == "veotui.server.routes.metrics"
    assert declared[("GET", "/api/logs")] == "veotui.server.routes.logs"
    assert declared[("GET", "/api/me")] == "veotui.server.routes.me"
    assert declared[("GET", "/api/audit")] == "veotui.server.routes.audit"
    assert declared[("GET", "/api/health")] == "veotui.server.routes.health"
