"""A fake Vertex AI Veo endpoint for the real google-genai client.

It answers what google-genai 3.x sends in Vertex mode (see shared notes veo-api.md 2.2):

- ``POST /v1beta1/projects/{p}/locations/{l}/publishers/google/models/{m}:predictLongRunning``
  and the express-mode form without ``projects/{p}/locations/{l}/``: starts an operation;
- ``POST .../models/{m}:fetchPredictOperation`` with ``{"operationName": ...}``: its state;
- ``GET .../publishers/google/models/{m}``: the model (``veotui doctor`` reads it);
- ``POST /token``: an OAuth token endpoint for service-account keys whose ``token_uri``
  points here.

Project paths demand ``Authorization: Bearer``; the others (express mode, and the
publisher model that ``models.get`` reads) take it or ``x-goog-api-key``. Every
request is recorded. Faults are queued per verb (an HTTP error, or a slow answer that makes
the client time out); what a finished operation returns is chosen when it is submitted.
With ``storageUri`` the videos are written to Cloud Storage (the emulator), as Veo does,
and an input image given by ``gcsUri`` must exist there.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from google.cloud import storage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MODELS = ("veo-3.1-generate-001", "veo-3.1-fast-generate-001", "veo-3.1-lite-generate-001")
FILTER_REASON = (
    "We encountered an issue with the audio for your prompt. You have not been charged for this "
    "attempt. Support codes: 58061214"
)
JPEG_MAGIC = b"\xff\xd8"
#: An MP4 starts with a box whose type, at bytes 4-8, is "ftyp".
MP4_MAGIC = b"ftyp"
_PATH = re.compile(
    r"^/(?P<version>v1|v1beta1)/(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/)?"
    r"publishers/google/models/(?P<model>[^/:]+)(?::(?P<verb>predictLongRunning|fetchPredictOperation))?$"
)


@dataclass
class Recorded:
    method: str
    path: str
    verb: str
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class Fault:
    """The next ``times`` requests of ``verb`` fail: with HTTP ``status``; with ``delay``, by
    answering only after ``delay`` seconds (the client times out first); with ``drop``, by
    closing the connection halfway through the answer. ``accepted`` makes a slow or dropped
    submit start its operation anyway, as a real server might."""

    verb: str
    status: int = 503
    times: int = 1
    message: str = "The service is currently unavailable."
    retry_delay: str | None = None
    delay: float = 0.0
    drop: bool = False
    accepted: bool = False


@dataclass
class Operation:
    name: str
    body: dict
    outcome: str
    polls: int = 0


@dataclass
class FakeVertex:
    """Serve with :meth:`start`, stop with :meth:`stop`. Set the public fields to steer it."""

    video: bytes
    storage_client: storage.Client | None = None
    #: How many polls answer "pending" before an operation is done.
    pending_polls: int = 1
    #: While set, every operation stays pending (a stuck or slow generation).
    hold: bool = False
    #: What the next operations end with: videos | filtered | fewer | error.
    outcome: str = "videos"
    #: While set, a finished operation names its videos in Cloud Storage without writing
    #: them yet (they cannot be fetched) until :meth:`release_videos`.
    withhold_videos: bool = False
    requests: list[Recorded] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    operations: dict[str, Operation] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._withheld: list[tuple[str, str]] = []
        self.url = ""

    # -- what tests read ----------------------------------------------------------------------

    def calls(self, verb: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.verb == verb]

    def submits(self) -> list[Recorded]:
        return self.calls("predictLongRunning")

    def release_videos(self) -> None:
        """Write the videos held back by ``withhold_videos``: now they can be fetched."""
        self.withhold_videos = False
        with self._lock:
            withheld, self._withheld = self._withheld, []
        for bucket, name in withheld:
            self._storage().bucket(bucket).blob(name).upload_from_string(self.video, content_type="video/mp4")

    # -- serving --------------------------------------------------------------------------------

    def start(self) -> FakeVertex:
        app = Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route("/{path:path}", self._vertex, methods=["GET", "POST"]),
            ]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-vertex", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake Vertex server did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    # -- handlers -------------------------------------------------------------------------------

    async def _token(self, request: Request) -> JSONResponse:
        self._record(request, "token", dict(await request.form()))
        return JSONResponse({"access_token": "service-account-token", "expires_in": 3600, "token_type": "Bearer"})

    async def _vertex(self, request: Request) -> Response:
        match = _PATH.match(request.url.path)
        raw = await request.body()
        body: Any = json.loads(raw) if raw else None  # the request's JSON, as the client sent it
        verb = (match.group("verb") or "getModel") if match else "unknown"
        self._record(request, verb, body)
        if match is None:
            return _error(404, "NOT_FOUND", f"The fake has no {request.method} {request.url.path}")
        bearer = request.headers.get("authorization", "").startswith("Bearer ")
        express = match.group("project") is None
        if express and not (bearer or request.headers.get("x-goog-api-key")):
            return _error(401, "UNAUTHENTICATED", "API key not valid. Please pass a valid API key.")
        if not express and not bearer:
            return _error(401, "UNAUTHENTICATED", "Request is missing required authentication credential.")
        model = match.group("model")
        if model not in MODELS:
            return _error(
                404, "NOT_FOUND", f"Publisher Model `{model}` was not found or your project does not have access to it."
            )

        fault = self._take_fault(verb)
        if fault is not None and fault.delay:
            accepted = None
            if verb == "predictLongRunning":
                accepted = self._start_operation(request.url.path, body) if fault.accepted else None
            await asyncio.sleep(fault.delay)  # the client gives up before this
            if accepted is not None:
                return JSONResponse({"name": accepted.name})
            if verb == "predictLongRunning":
                return _error(503, "UNAVAILABLE", fault.message)
        elif fault is not None and fault.drop:
            if verb == "predictLongRunning" and fault.accepted:
                self._start_operation(request.url.path, body)
            # Promise more bytes than are sent: the server closes the connection mid-answer.
            return Response(b'{"name": "', media_type="application/json", headers={"content-length": "4096"})
        elif fault is not None:
            return _error(fault.status, _status_name(fault.status), fault.message, fault.retry_delay)

        if verb == "getModel":
            return JSONResponse({"name": f"publishers/google/models/{model}", "versionId": "001"})
        if verb == "predictLongRunning":
            problem = await self._check_submit(body)
            if problem:
                return _error(400, "INVALID_ARGUMENT", problem)
            return JSONResponse({"name": self._start_operation(request.url.path, body).name})
        return await self._fetch(body)

    async def _check_submit(self, body: Any) -> str | None:
        """What a real server would refuse: a missing prompt, an unreadable image or video,
        a reference image without a known type."""
        try:
            instance = body["instances"][0]
        except (TypeError, KeyError, IndexError):
            return "instances[0] is required"
        if not instance.get("prompt"):
            return "instances[0].prompt is required"
        if instance.get("image") and instance.get("video"):
            return "instances[0]: image and video cannot be given together."
        if instance.get("lastFrame") and not instance.get("image"):
            return "instances[0].lastFrame needs instances[0].image."
        checks = [("image", instance.get("image"), JPEG_MAGIC), ("lastFrame", instance.get("lastFrame"), JPEG_MAGIC)]
        references = instance.get("referenceImages") or []
        if len(references) > 3:
            return "instances[0].referenceImages takes at most 3 images."
        for n, reference in enumerate(references):
            if reference.get("referenceType") not in ("ASSET", "STYLE"):
                return f"instances[0].referenceImages[{n}].referenceType must be ASSET or STYLE."
            checks.append((f"referenceImages[{n}].image", reference.get("image") or {}, JPEG_MAGIC))
        checks.append(("video", instance.get("video"), MP4_MAGIC))
        for where, media, magic in checks:
            problem = await self._check_media(where, media, magic)
            if problem:
                return problem
        return None

    async def _check_media(self, where: str, media: dict | None, magic: bytes) -> str | None:
        """An input given inline must be the right format; by gcsUri it must exist (and be
        the right format) in the bucket."""
        if media is None:
            return None
        kind = "an MP4 video" if magic == MP4_MAGIC else "a JPEG image"
        if media.get("gcsUri"):
            bucket, _, name = media["gcsUri"][5:].partition("/")

            def head() -> bytes | None:
                blob = self._storage().bucket(bucket).blob(name)
                return blob.download_as_bytes(start=0, end=15) if blob.exists() else None

            data = await anyio.to_thread.run_sync(head)
            if data is None:
                return f"Unable to read {where} {media['gcsUri']}: object not found."
        else:
            data = base64.b64decode(media.get("bytesBase64Encoded", ""))
        found = data[4:8] == MP4_MAGIC if magic == MP4_MAGIC else data.startswith(magic)
        if not found:
            return f"instances[0].{where} is not {kind}."
        return None

    def _start_operation(self, path: str, body: dict) -> Operation:
        resource = path.split("/", 2)[2].rsplit(":", 1)[0]  # drop "/v1beta1/" and ":verb"
        name = f"{resource}/operations/{uuid.uuid4()}"
        operation = Operation(name=name, body=body, outcome=self.outcome)
        with self._lock:
            self.operations[name] = operation
        return operation

    async def _fetch(self, body: Any) -> JSONResponse:
        name = (body or {}).get("operationName", "")
        with self._lock:
            operation = self.operations.get(name)
        if operation is None:
            return _error(404, "NOT_FOUND", f"Operation {name} not found.")
        operation.polls += 1
        if self.hold or operation.polls <= self.pending_polls:
            return JSONResponse({"name": name})
        if operation.outcome == "error":
            return JSONResponse(
                {"name": name, "done": True, "error": {"code": 3, "message": "The prompt could not be rewritten."}}
            )
        asked = int(operation.body.get("parameters", {}).get("sampleCount", 1))
        made = {"videos": asked, "fewer": asked - 1, "filtered": 0}[operation.outcome]
        response: dict[str, Any] = {
            "@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse",
            "raiMediaFilteredCount": asked - made,
            "videos": await self._videos(operation, made),
        }
        if made < asked:
            response["raiMediaFilteredReasons"] = [FILTER_REASON]
        return JSONResponse({"name": name, "done": True, "response": response})

    async def _videos(self, operation: Operation, count: int) -> list[dict]:
        storage_uri = operation.body.get("parameters", {}).get("storageUri")
        if not storage_uri:
            encoded = base64.b64encode(self.video).decode()
            return [{"bytesBase64Encoded": encoded, "mimeType": "video/mp4"} for _ in range(count)]
        # Veo writes each operation's samples into a folder of its own under storageUri.
        bucket, _, prefix = storage_uri[5:].partition("/")
        folder = f"{prefix}{operation.name.rsplit('/', 1)[-1][:8]}"
        names = [f"{folder}/sample_{i}.mp4" for i in range(count)]

        if self.withhold_videos:
            with self._lock:
                self._withheld += [(bucket, name) for name in names]
            return [{"gcsUri": f"gs://{bucket}/{name}", "mimeType": "video/mp4"} for name in names]

        def upload() -> None:
            for name in names:
                self._storage().bucket(bucket).blob(name).upload_from_string(self.video, content_type="video/mp4")

        await anyio.to_thread.run_sync(upload)
        return [{"gcsUri": f"gs://{bucket}/{name}", "mimeType": "video/mp4"} for name in names]

    # -- helpers ---------------------------------------------------------------------------------

    def _record(self, request: Request, verb: str, body: Any) -> None:
        entry = Recorded(request.method, request.url.path, verb, dict(request.headers), body, time.monotonic())
        with self._lock:
            self.requests.append(entry)

    def _take_fault(self, verb: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.verb == verb and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _storage(self) -> storage.Client:
        if self.storage_client is None:
            raise RuntimeError("this fake has no Cloud Storage client")
        return self.storage_client


def _status_name(code: int) -> str:
    return {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }.get(code, "UNKNOWN")


def _error(code: int, status: str, message: str, retry_delay: str | None = None) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if retry_delay is not None:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}]
    return JSONResponse({"error": error}, status_code=code)
