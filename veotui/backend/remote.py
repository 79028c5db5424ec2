"""``RemoteBackend``: the backend interface over ``veotui serve``'s REST API (httpx, async).

Every call maps to one endpoint; errors come back as the same exception classes the local
backend raises (the server names the class in a response header). ``changes()`` follows
``/api/events`` and, on every (re)connect, resyncs from ``/api/jobs`` so nothing that
happened while it was away is missed.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx

from veotui.backend.base import AUDIT_PAGE, MAX_GROUP_JOBS, QUEUE_PAGE, Backend, BackendInfo, GroupAction, Me, Upload
from veotui.core.access import AuditEntry
from veotui.core.errors import (
    ERROR_HEADER,
    BackendUnavailable,
    Conflict,
    Forbidden,
    InvalidRequest,
    JobNotFound,
    StorageUnavailable,
    TooLarge,
    Unauthorized,
    VeotuiError,
    VideoNotFound,
)
from veotui.core.idempotency import KEY_HEADER
from veotui.core.job import CONNECTED, DISCONNECTED, Change, Job, JobEvent, JobLists, QueueState
from veotui.core.prices import PriceTable
from veotui.core.webhooks import ATTEMPT_TIMEOUT_SECONDS, Delivery
from veotui.datadir.files import atomic_file
from veotui.datadir.health import StorageState, save_failed

log = logging.getLogger(__name__)

#: Names the error's class on the server's error responses (see veotui.server.app).
#: Exception classes by the name the server sends, then by status for anything else.
ERRORS_BY_NAME: dict[str, type[VeotuiError]] = {
    cls.__name__: cls
    for cls in (
        InvalidRequest,
        JobNotFound,
        VideoNotFound,
        Conflict,
        TooLarge,
        Unauthorized,
        Forbidden,
        StorageUnavailable,
    )
}
ERRORS_BY_STATUS: dict[int, type[VeotuiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: JobNotFound,
    409: Conflict,
    413: TooLarge,
    415: InvalidRequest,
    422: InvalidRequest,
    507: StorageUnavailable,
}
#: The server sends a keep-alive at least every 15 s; silence this long means it is gone.
STREAM_READ_TIMEOUT = 45.0
RECONNECT_FIRST_DELAY = 0.25
RECONNECT_MAX_DELAY = 5.0
#: A submit lost on the way (a dropped connection) is sent this many times in all, the
#: same key each time, after 0.5 s, 1 s, 2 s.
SUBMIT_TRIES = 4
SUBMIT_RETRY_SECONDS = 0.5
#: Known jobs missing after a resync are looked up one by one, up to this many.
RESYNC_LOOKUPS = 200


class RemoteBackend(Backend):
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest(f"{url!r} is not a server URL; expected http://HOST:PORT or https://...")
        self.url = url.rstrip("/")
        self.token = token
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._closed = False

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, and check that a veotui server answers and accepts the token."""
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        self._client = httpx.AsyncClient(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(self._timeout, connect=5.0),
            # The loopback server must not be sent through an HTTP proxy from the environment.
            trust_env=False,
        )
        self._closed = False
        try:
            await self.info()
        except JobNotFound:
            await self.close()
            raise self._not_veotui("GET /api/info answered 404") from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        self._closed = True
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise BackendUnavailable(f"the connection to {self.url} is closed")
        return self._client

    # -- plumbing -------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.is_error:
            raise self._error(response)
        return self._json(response, f"{method} {path}")

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise self._not_veotui(f"{what} answered something that is not JSON") from None

    def _not_veotui(self, what: str) -> BackendUnavailable:
        return BackendUnavailable(
            f"{self.url} does not look like a veotui server ({what}); check --remote (VEOTUI_REMOTE)"
        )

    def _unreachable(self, exc: Exception) -> BackendUnavailable:
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return BackendUnavailable(
                f"no veotui server is listening at {self.url}; start one with `veotui serve` "
                "or point --remote (VEOTUI_REMOTE) at one"
            )
        return BackendUnavailable(f"lost the connection to the veotui server at {self.url} ({type(exc).__name__})")

    def _error(self, response: httpx.Response) -> VeotuiError:
        try:
            detail = response.json()["detail"]
            if not isinstance(detail, str):
                detail = json.dumps(detail)
        except (ValueError, KeyError, TypeError):
            detail = f"the server at {self.url} answered {response.status_code} {response.reason_phrase}"
        cls = ERRORS_BY_NAME.get(response.headers.get(ERROR_HEADER, "")) or ERRORS_BY_STATUS.get(response.status_code)
        if cls is None:
            return BackendUnavailable(f"the server at {self.url} failed: {detail}")
        if cls is JobNotFound:
            return JobNotFound("", detail)
        if cls is StorageUnavailable:
            return StorageUnavailable(detail, "full" if response.status_code == 507 else "read_only")
        return cls(detail)

    # -- the interface --------------------------------------------------------------------

    async def info(self) -> BackendInfo:
        data = await self._request("GET", "/api/info")
        try:
            return BackendInfo(
                location=self.url,
                generator=data["generator"],
                is_simulator=bool(data["is_simulator"]),
                max_concurrent=int(data["max_concurrent"]),
                data_dir=data.get("data_dir"),
                storage=StorageState.from_dict(data.get("storage")),
                prices=PriceTable.from_dict(data.get("prices")),
                auto_delete_after_download=_seconds_or_none(data.get("auto_delete_after_download")),
                cloud_bucket=data.get("cloud_bucket") is True,
                fleet=data["fleet"] if isinstance(data.get("fleet"), dict) else None,
                shared_dir=data.get("shared_dir") is not False,
            )
        except (KeyError, TypeError, ValueError):
            raise self._not_veotui("GET /api/info answered without a generator and slots") from None

    async def submit(
        self,
        fields: Mapping[str, Any],
        image: bytes | None = None,
        image_name: str | None = None,
        *,
        last_frame: Upload | None = None,
        references: Sequence[Upload] = (),
        idempotency_key: str | None = None,
    ) -> Job:
        # JSON keeps every field's type exactly as given, so validation answers as it
        # would locally; the image costs a third more on the wire, which is fine at 10 MB.
        body = dict(fields)
        if image is not None:
            body["image_base64"] = base64.b64encode(image).decode("ascii")
            if image_name:
                body["image_name"] = image_name
        if last_frame is not None:
            body["last_frame_base64"] = base64.b64encode(last_frame[0]).decode("ascii")
        if references:
            body["reference_images_base64"] = [base64.b64encode(data).decode("ascii") for data, _ in references]
        # json.dumps, not httpx's json=: ASCII escapes carry any str (a lone surrogate, NaN)
        # to the server, which refuses it as the local engine would, instead of failing here.
        content = json.dumps(body)
        # A submit whose answer was lost is sent again under the same key: the server makes
        # one job of both. Without a key of the caller's, this client makes one up.
        key = idempotency_key or f"veotui-{uuid.uuid4()}"
        headers = {"content-type": "application/json", KEY_HEADER: key}
        for attempt in range(1, SUBMIT_TRIES + 1):
            try:
                response = await self.client.post("/api/generate", content=content, headers=headers)
            except httpx.TransportError as exc:
                if attempt == SUBMIT_TRIES:
                    raise self._unreachable(exc) from None
                log.warning(
                    "submit to %s failed (%s); sending it again with the same %s (try %d of %d)",
                    self.url,
                    type(exc).__name__,
                    KEY_HEADER,
                    attempt + 1,
                    SUBMIT_TRIES,
                )
                await anyio.sleep(SUBMIT_RETRY_SECONDS * 2 ** (attempt - 1))
                continue
            if response.is_error:
                raise self._error(response)
            return Job.from_dict(self._json(response, "POST /api/generate"))
        raise AssertionError("unreachable")  # the loop returns or raises

    async def webhook_deliveries(self, job_id: str | None = None, *, limit: int = 100) -> list[Delivery]:
        params: dict[str, Any] = {"limit": limit}
        if job_id is not None:
            params["job_id"] = job_id
        data = await self._request("GET", "/api/webhooks/deliveries", params=params)
        return [Delivery.from_dict(item) for item in data["deliveries"]]

    async def test_webhooks(self) -> list[dict[str, Any]]:
        # Every hook may take its full 10 s to answer.
        data = await self._request("POST", "/api/webhooks/test", timeout=ATTEMPT_TIMEOUT_SECONDS + 10)
        return list(data["results"])

    async def get(self, job_id: str) -> Job:
        return Job.from_dict(await self._request("GET", f"/api/status/{_segment(job_id)}"))

    async def resolve(self, prefix: str) -> str:
        cleaned = prefix.strip().lower()
        if not cleaned:
            raise JobNotFound(prefix, f"{prefix!r} is not a job id or the start of one")
        return str((await self._request("GET", f"/api/resolve/{_segment(cleaned)}"))["job_id"])

    async def list_jobs(
        self,
        *,
        history_limit: int = 100,
        history_offset: int = 0,
        text: str | None = None,
        queue_limit: int = QUEUE_PAGE,
        queue_offset: int = 0,
    ) -> JobLists:
        params: dict[str, Any] = {
            "limit": history_limit,
            "offset": history_offset,
            "queue_limit": queue_limit,
            "queue_offset": queue_offset,
        }
        if text:
            params["q"] = text
        return JobLists.from_dict(await self._request("GET", "/api/jobs", params=params))

    async def group_jobs(self, group: str) -> list[Job]:
        params = {"group": group, "limit": MAX_GROUP_JOBS, "queue_limit": MAX_GROUP_JOBS}
        lists = JobLists.from_dict(await self._request("GET", "/api/jobs", params=params))
        if not lists.every_job:
            raise JobNotFound(group, f"group {group!r} has no jobs")
        return lists.every_job

    async def cancel_group(self, group: str) -> GroupAction:
        return GroupAction.from_dict(await self._request("POST", f"/api/groups/{_segment(group)}/cancel"))

    async def delete_group(self, group: str) -> GroupAction:
        return GroupAction.from_dict(await self._request("DELETE", f"/api/groups/{_segment(group)}"))

    async def download_group(self, group: str, dest_dir: Path) -> Path:
        return await self._download(f"/api/download/group/{_segment(group)}", Path(dest_dir))

    async def job_pictures(self, job_id: str, cache_dir: Path) -> list[tuple[str, list[tuple[str, Path]]]]:
        """The server makes the pictures; each PNG is fetched once into ``cache_dir``."""
        listing = await self._request("GET", f"/api/jobs/{_segment(job_id)}/pictures")
        folder = Path(cache_dir) / job_id
        rows = []
        for row in listing.get("rows", []):
            pictures = []
            for item in row.get("pictures", []):
                name = Path(str(item["name"])).name
                target = folder / name
                if not target.is_file():
                    await self._fetch_file(item["url"], target)
                pictures.append((str(item["caption"]), target))
            rows.append((str(row["title"]), pictures))
        return rows

    async def cancel(self, job_id: str) -> Job:
        return Job.from_dict(await self._request("POST", f"/api/cancel/{_segment(job_id)}"))

    async def retry(self, job_id: str) -> Job:
        return Job.from_dict(await self._request("POST", f"/api/retry/{_segment(job_id)}"))

    async def delete(self, job_id: str) -> None:
        await self._request("DELETE", f"/api/delete/{_segment(job_id)}")

    async def models(self) -> dict[str, Any]:
        data = await self._request("GET", "/api/models")
        if not isinstance(data, dict) or not isinstance(data.get("models"), list):
            raise self._not_veotui("GET /api/models answered no model table")
        return data

    async def me(self) -> Me:
        return Me.from_dict(await self._request("GET", "/api/me"))

    async def audit(
        self, *, user: str | None = None, job_id: str | None = None, limit: int = AUDIT_PAGE, offset: int = 0
    ) -> list[AuditEntry]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if user is not None:
            params["user"] = user
        if job_id is not None:
            params["job_id"] = job_id
        data = await self._request("GET", "/api/audit", params=params)
        return [AuditEntry.from_dict(entry) for entry in data["entries"]]

    async def queue(self) -> QueueState:
        return QueueState.from_dict(await self._request("GET", "/api/queue"))

    async def pause(self, reason: str | None = None) -> QueueState:
        body = {"reason": reason} if reason is not None else {}
        return QueueState.from_dict(await self._request("POST", "/api/queue/pause", **_json(body)))

    async def resume(self) -> QueueState:
        return QueueState.from_dict(await self._request("POST", "/api/queue/resume"))

    async def move(self, job_id: str, *, to: str | None = None, position: int | None = None) -> Job:
        body: dict[str, Any] = {}
        if to is not None:
            body["to"] = to
        if position is not None:
            body["position"] = position
        return Job.from_dict(await self._request("POST", f"/api/move/{_segment(job_id)}", **_json(body)))

    async def timeline(self, job_id: str) -> list[JobEvent]:
        data = await self._request("GET", f"/api/jobs/{_segment(job_id)}/events")
        return [JobEvent.from_dict(item) for item in data["events"]]

    async def metrics(self) -> dict[str, Any]:
        figures: dict[str, Any] = await self._request("GET", "/api/metrics")
        return figures

    async def metric_series(self, hours: int = 24) -> list[dict[str, Any]]:
        data = await self._request("GET", "/api/metrics/series", params={"hours": hours})
        series: list[dict[str, Any]] = data["series"]
        return series

    # -- downloads ------------------------------------------------------------------------

    async def download_zip(self, job_id: str, dest_dir: Path, *, keep: bool = False) -> Path:
        # A range request (of the whole file) is not counted as a download (see view_video).
        headers = {"range": "bytes=0-"} if keep else None
        return await self._download(f"/api/download/{_segment(job_id)}", Path(dest_dir), headers=headers)

    async def download_video(self, job_id: str, index: int, dest_dir: Path) -> Path:
        return await self._download(f"/api/download/{_segment(job_id)}/video/{int(index)}", Path(dest_dir))

    async def view_video(self, job_id: str, index: int, dest_dir: Path) -> Path:
        # A range request (of the whole file) is what a player seeking makes: the server
        # does not count it as a download, so it starts no auto-delete.
        return await self._download(
            f"/api/download/{_segment(job_id)}/video/{int(index)}", Path(dest_dir), headers={"range": "bytes=0-"}
        )

    async def input_files(self, job_id: str, dest_dir: Path) -> dict[str, Path]:
        job = await self.get(job_id)
        names = ["uploaded_image.jpg"] if job.has_image else []
        if job.has_last_frame:
            names.append("last_frame.jpg")
        names += [f"reference_{n}.jpg" for n in range(1, job.reference_count + 1)]
        return {
            name: await self._download(f"/api/jobs/{_segment(job_id)}/inputs/{name}", Path(dest_dir)) for name in names
        }

    async def _download(self, path: str, dest_dir: Path, headers: Mapping[str, str] | None = None) -> Path:
        """Stream to a temporary file beside the target and rename it into place, so the
        target appears whole or not at all. The server names the file."""
        try:
            async with self.client.stream("GET", path, headers=headers) as response:
                if response.is_error:
                    await response.aread()
                    raise self._error(response)
                target = dest_dir / _attachment_name(response, path)
                dest_dir.mkdir(parents=True, exist_ok=True)
                try:
                    with atomic_file(target) as out:
                        async for chunk in response.aiter_bytes(1024 * 1024):
                            out.write(chunk)
                except OSError as exc:
                    size = response.headers.get("content-length")
                    raise save_failed(target, exc, int(size) if size and size.isdigit() else None) from exc
                return target
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    async def _fetch_file(self, path: str, target: Path) -> None:
        """A small file (a picture) written whole to ``target``."""
        try:
            response = await self.client.get(path)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.is_error:
            raise self._error(response)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(target) as out:
            out.write(response.content)

    # -- the server's log -----------------------------------------------------------------

    async def log_lines(
        self, *, job: str | None = None, since: str | None = None, follow: bool = False, as_json: bool = False
    ) -> AsyncIterator[str]:
        """The server's log records (``GET /api/logs``, the server's own token only), one
        line each (a text record's stack trace on the lines after it); with ``follow``,
        until the caller stops."""
        params: dict[str, str] = {"format": "json" if as_json else "text"}
        if job:
            params["job"] = job
        if since:
            params["since"] = since
        if follow:
            params["follow"] = "true"
        timeout = httpx.Timeout(self._timeout, read=None if follow else self._timeout)
        try:
            async with self.client.stream("GET", "/api/logs", params=params, timeout=timeout) as response:
                if response.is_error:
                    await response.aread()
                    raise self._error(response)
                async for line in response.aiter_lines():
                    yield line + "\n"
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    # -- events ---------------------------------------------------------------------------

    async def changes(self) -> AsyncIterator[Change]:
        """Changes from ``/api/events``, reconnecting with backoff for as long as the caller
        iterates. After each connect the current lists are read again and reported as
        changes (and known jobs that vanished meanwhile as deletions). A lost stream is
        reported once as a change of kind ``disconnected``, and its return, after the
        resync, as ``connected``."""
        known: set[str] = set()
        delay = RECONNECT_FIRST_DELAY
        lost = False
        while not self._closed:
            try:
                async with self.client.stream(
                    "GET", "/api/events", timeout=httpx.Timeout(self._timeout, read=STREAM_READ_TIMEOUT)
                ) as response:
                    if response.is_error:
                        await response.aread()
                        error = self._error(response)
                        if isinstance(error, Unauthorized):
                            raise error
                        raise BackendUnavailable(str(error))
                    # The server subscribed us before these headers were sent: whatever
                    # the resync misses comes down the stream.
                    async for change in self._resync(known):
                        yield change
                    if lost:
                        lost = False
                        yield Change(CONNECTED, "")
                    delay = RECONNECT_FIRST_DELAY
                    async for change in _parse_events(response):
                        _remember(known, change)
                        yield change
            except (httpx.HTTPError, BackendUnavailable) as exc:
                if self._closed:
                    return
                log.info("event stream from %s interrupted (%s); reconnecting in %.2f s", self.url, exc, delay)
                if not lost:
                    lost = True
                    yield Change(DISCONNECTED, "")
            await anyio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_DELAY)

    async def _resync(self, known: set[str]) -> AsyncIterator[Change]:
        state = await self.queue()
        yield Change("queue", "", queue=state)
        lists = await self.list_jobs()
        present: set[str] = set()
        for job in (*lists.processing, *lists.queued, *lists.history):
            present.add(job.job_id)
            yield Change("job", job.job_id, job)
        for job_id in sorted(known - present)[:RESYNC_LOOKUPS]:
            try:
                job = await self.get(job_id)
            except JobNotFound:
                yield Change("deleted", job_id)
            else:
                yield Change("job", job_id, job)
        known.clear()
        known.update(present)


def _remember(known: set[str], change: Change) -> None:
    if change.kind == "deleted":
        known.discard(change.job_id)
    elif change.kind == "job":
        known.add(change.job_id)


def _json(body: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON body as ``submit`` sends it: ASCII escapes carry any str to the server."""
    return {"content": json.dumps(body), "headers": {"content-type": "application/json"}}


async def _parse_events(response: httpx.Response) -> AsyncIterator[Change]:
    """Server-Sent Events, as far as veotui's server uses them: ``event`` and one ``data``
    line per event; comments (keep-alives) and ``retry`` lines are skipped."""
    event = "message"
    data: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if data:
                change = _change(event, "\n".join(data))
                if change is not None:
                    yield change
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


def _change(event: str, data: str) -> Change | None:
    try:
        payload = json.loads(data)
        if event == "job":
            job = Job.from_dict(payload)
            return Change("job", job.job_id, job)
        if event == "deleted":
            return Change("deleted", payload["job_id"])
        if event == "queue":
            return Change("queue", "", queue=QueueState.from_dict(payload))
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("ignored a malformed %s event: %s", event, exc)
    return None


def _segment(text: str) -> str:
    """One path segment: a slash or dot-dot in a job id must not reach another route."""
    return quote(text, safe="")


def _attachment_name(response: httpx.Response, path: str) -> str:
    disposition = response.headers.get("content-disposition", "")
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename" and value:
            name = Path(value.strip('"')).name
            if name and name not in (".", ".."):
                return name
    return Path(path).name or "download"


def _seconds_or_none(value: Any) -> float | None:
    """The auto-delete delay from /api/info; an older server does not send it."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
