"""The ``veo`` generator: Google Veo on Vertex AI through google-genai's async client.

google-genai 3.x generates video only in Vertex AI mode, reached two ways:

- *project mode*: ``GOOGLE_CLOUD_PROJECT`` (+ ``GOOGLE_CLOUD_LOCATION``) with Application
  Default Credentials (``gcloud auth application-default login``, or a service-account key
  in ``GOOGLE_APPLICATION_CREDENTIALS``);
- *express mode*: ``GOOGLE_API_KEY`` alone.

``GOOGLE_VERTEX_BASE_URL`` points either mode at another host (the tests: a fake server).

The wire: submit is ``predictLongRunning`` and answers an operation name, which the engine
records at once; polling is ``fetchPredictOperation`` on that name, so a restarted process
resumes the same operation. Videos come back inline (base64) or, with ``VEOTUI_GCS_BUCKET``,
as ``gs://`` objects under ``veo_outputs/<job_id>/``.

Paying twice: a submit is only ever re-sent when Google certainly did not accept it (it
answered 429, 408 or a 5xx other than 504, or the connection was never made). A submit that was sent and got no
answer raises :class:`SubmitOutcomeUnknown`; the job fails saying so instead of sending a
second, billed, generation. docs/veo.md has the long form.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import unicodedata
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import google.auth
import google.auth.exceptions
from google import genai
from google.auth.credentials import Credentials
from google.genai import errors as genai_errors
from google.genai import types
from google.oauth2 import service_account
from google.oauth2.credentials import Credentials as UserCredentials

from veotui.core.capabilities import MODEL_CAPABILITIES, capabilities
from veotui.core.errors import ErrorKind, InvalidRequest, SettingsError
from veotui.core.job import Job
from veotui.core.request import JobRequest
from veotui.datadir.files import video_name, write_atomic
from veotui.generators.base import (
    GenerationResult,
    Generator,
    GeneratorFault,
    JobInputs,
    PermanentFault,
    SubmitOutcomeUnknown,
    TransientFault,
)
from veotui.generators.gcs import Bucket, image_prefix, output_prefix, video_prefix
from veotui.settings import Settings

log = logging.getLogger(__name__)

#: Veo is served in us-central1; the SDK's own default ("global") is not documented for Veo.
DEFAULT_LOCATION = "us-central1"
#: Per HTTP request to Vertex AI. Submit answers with an operation name within seconds, so a
#: generous limit makes an "outcome unknown" (a timeout after sending) rare.
REQUEST_TIMEOUT_SECONDS = 120.0
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: Label the generation for billing reports: the job id is how you find a charge, the
#: user how you split the bill per person.
JOB_LABEL = "veotui_job"
USER_LABEL = "veotui_user"
#: Google's label values: at most 63 characters and under 128 bytes, of lowercase letters
#: (international ones too), digits, underscores and dashes.
LABEL_MAX_CHARS = 63
LABEL_MAX_BYTES = 127

_GRPC_CODES = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    13: "INTERNAL",
    14: "UNAVAILABLE",
}


# -- models ---------------------------------------------------------------------------------


#: What each model accepts: the one table in veotui.core.capabilities (sources and dates there).
MODEL_LIMITS = MODEL_CAPABILITIES
#: Retired on Vertex AI on 2026-06-30 -> their replacement.
RETIRED_MODELS: Mapping[str, str] = {
    "veo-3.0-generate-001": "veo-3.1-generate-001",
    "veo-3.0-fast-generate-001": "veo-3.1-fast-generate-001",
    "veo-2.0-generate-001": "veo-3.1-generate-001",
}


def check_request(request: JobRequest) -> None:
    """Raise :class:`InvalidRequest` naming the parameter the model cannot do."""
    model = request.model
    if model in RETIRED_MODELS:
        raise InvalidRequest(f"model {model} was retired on Vertex AI on 2026-06-30; use {RETIRED_MODELS[model]}")
    capabilities(model)


def label_value(text: str) -> str:
    """``text`` as a Google label value: lowercased, every character Google does not allow
    replaced by ``_``, cut to 63 characters and 127 bytes (``Ana.Lopez@example.com`` reads
    ``ana_lopez_example_com``)."""
    value = "".join(
        char if char in "_-" or char.isdigit() or unicodedata.category(char) in ("Ll", "Lo") else "_"
        for char in text.lower()
    )[:LABEL_MAX_CHARS]
    while len(value.encode("utf-8")) > LABEL_MAX_BYTES:
        value = value[:-1]
    return value


def request_labels(job: Job) -> dict[str, str]:
    """The labels every Veo request carries: the job and who submitted it."""
    return {JOB_LABEL: job.job_id, USER_LABEL: label_value(job.request.user)}


# -- settings -> a client -------------------------------------------------------------------


@dataclass(frozen=True)
class VertexTarget:
    """Where and how veotui reaches Vertex AI, as read from the environment."""

    project: str | None
    location: str
    api_key: str | None
    base_url: str | None

    @property
    def express(self) -> bool:
        return self.project is None


def read_target(env: Mapping[str, str]) -> VertexTarget:
    """Where Vertex AI is, from GOOGLE_CLOUD_PROJECT, GOOGLE_CLOUD_LOCATION, GOOGLE_API_KEY and
    the endpoint override. Whether they are enough is decided with the credentials."""
    return VertexTarget(
        project=(env.get("GOOGLE_CLOUD_PROJECT") or "").strip() or None,
        location=(env.get("GOOGLE_CLOUD_LOCATION") or "").strip() or DEFAULT_LOCATION,
        api_key=(env.get("GOOGLE_API_KEY") or "").strip() or None,
        base_url=(env.get("GOOGLE_VERTEX_BASE_URL") or "").strip() or None,
    )


NO_ADC_HELP = (
    "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file"
)


def application_default_credentials(env: Mapping[str, str]) -> tuple[Credentials, str | None]:
    """Application Default Credentials and the project they name. ``env`` may point
    ``GOOGLE_APPLICATION_CREDENTIALS`` at a key file; otherwise google-auth searches as usual.
    Raises :class:`SettingsError` saying how to get some."""
    key_file = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    try:
        if key_file:
            return _credentials_from_file(key_file)
        return _quietly(google.auth.default, scopes=[CLOUD_PLATFORM_SCOPE])
    except (google.auth.exceptions.DefaultCredentialsError, ValueError) as exc:
        where = f" (GOOGLE_APPLICATION_CREDENTIALS={key_file}: {exc})" if key_file else ""
        raise SettingsError(f"no usable Google Cloud credentials were found{where}: {NO_ADC_HELP}") from exc


def _quietly(call: Callable[..., tuple[Credentials, str | None]], **kwargs: Any) -> tuple[Credentials, str | None]:
    """google-auth logs a warning for each place it found no credentials; veotui reports
    the outcome itself, as one sentence with the fix."""
    auth_log = logging.getLogger("google.auth._default")
    level = auth_log.level
    auth_log.setLevel(logging.ERROR)
    try:
        return call(**kwargs)
    finally:
        auth_log.setLevel(level)


def _credentials_from_file(path: str) -> tuple[Credentials, str | None]:
    """The key file the operator named, loaded by its type (google-auth's generic loader
    warns about untrusted files; this one is the operator's own)."""
    try:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise google.auth.exceptions.DefaultCredentialsError(f"cannot read it: {exc}") from exc
    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        credentials = service_account.Credentials.from_service_account_info(info, scopes=[CLOUD_PLATFORM_SCOPE])
        return credentials, info.get("project_id")
    if kind == "authorized_user":
        credentials = UserCredentials.from_authorized_user_info(info, scopes=[CLOUD_PLATFORM_SCOPE])
        return credentials, info.get("quota_project_id")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded: tuple[Credentials, str | None] = google.auth.load_credentials_from_file(
            path, scopes=[CLOUD_PLATFORM_SCOPE]
        )
        return loaded


def resolve(env: Mapping[str, str], credentials: Credentials | None = None) -> tuple[VertexTarget, Credentials | None]:
    """Decide project mode or express mode. Raises :class:`SettingsError` naming what is
    missing and how to fix it, so a wrong setup stops veotui at start, not a job later."""
    target = read_target(env)
    if credentials is not None:
        if target.project is None:
            raise SettingsError("GOOGLE_CLOUD_PROJECT is not set: set it to your Google Cloud project id")
        return target, credentials
    if target.project is None and target.api_key is not None:
        return target, None
    try:
        credentials, adc_project = application_default_credentials(env)
    except SettingsError as exc:
        if target.api_key is not None:
            # Project and key both set, but only the key works: express mode.
            log.info("no Application Default Credentials; using GOOGLE_API_KEY (express mode)")
            return VertexTarget(None, target.location, target.api_key, target.base_url), None
        if target.project is None:
            raise SettingsError(
                "Veo needs either GOOGLE_API_KEY (express mode) or GOOGLE_CLOUD_PROJECT with "
                f"Application Default Credentials; neither works here: {exc}"
            ) from exc
        raise SettingsError(f"GOOGLE_CLOUD_PROJECT is {target.project}, but {exc}") from exc
    if target.project is None:
        if not adc_project:
            raise SettingsError(
                "GOOGLE_CLOUD_PROJECT is not set and the credentials name no project: "
                "set GOOGLE_CLOUD_PROJECT to your Google Cloud project id"
            )
        target = VertexTarget(adc_project, target.location, target.api_key, target.base_url)
    return target, credentials


def make_client(
    target: VertexTarget, credentials: Credentials | None, timeout: float = REQUEST_TIMEOUT_SECONDS
) -> genai.Client:
    """A Vertex AI client with everything explicit, so stray variables cannot switch its mode.
    No SDK retries: the engine retries, and never re-sends a submit that may have landed."""
    http_options = types.HttpOptions(base_url=target.base_url, timeout=int(timeout * 1000))
    if target.express:
        return genai.Client(vertexai=True, api_key=target.api_key, http_options=http_options)
    return genai.Client(
        vertexai=True,
        project=target.project,
        location=target.location,
        credentials=credentials,
        http_options=http_options,
    )


def connect_bucket(
    bucket: str, env: Mapping[str, str], target: VertexTarget, credentials: Credentials | None
) -> Bucket:
    """Cloud Storage for ``bucket`` with the Vertex credentials; express mode has none (an
    API key does not cover Cloud Storage), so it needs Application Default Credentials."""
    project = target.project
    if credentials is None and not env.get("STORAGE_EMULATOR_HOST"):
        try:
            credentials, project = application_default_credentials(env)
        except SettingsError as exc:
            raise SettingsError(
                f"VEOTUI_GCS_BUCKET is {bucket}, but an API key does not cover Cloud Storage and "
                f"{exc}. Or unset VEOTUI_GCS_BUCKET to send images and videos inline."
            ) from exc
    # A known project keeps the client from searching the environment for one.
    return Bucket.connect(bucket, env, project=project, credentials=credentials)


# -- faults ---------------------------------------------------------------------------------


def _transport_classes(*names: str) -> tuple[type[BaseException], ...]:
    """The named exception classes of httpx2 (google-genai 3.x) and httpx (its option)."""
    found: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found.extend(getattr(module, name) for name in names if hasattr(module, name))
    return tuple(found)


#: Any failure below HTTP: timeouts, refused or dropped connections, protocol errors.
TRANSPORT_ERRORS = _transport_classes("TransportError")
#: Failures that happen before a request leaves this machine: nothing was sent.
NOT_SENT_ERRORS = _transport_classes("ConnectError", "ConnectTimeout", "PoolTimeout")


def retry_delay(exc: genai_errors.APIError) -> float | None:
    """The server's own retry delay: a RetryInfo detail (``"30s"``) or a Retry-After header."""
    body = exc.details.get("error", exc.details) if isinstance(exc.details, dict) else None
    details = body.get("details") if isinstance(body, dict) else None
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and "retryDelay" in detail:
            match = re.fullmatch(r"\s*([0-9.]+)s\s*", str(detail["retryDelay"]))
            if match:
                return float(match.group(1))
    headers = getattr(getattr(exc, "response", None), "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if value:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _quote(exc: genai_errors.APIError) -> str:
    status = f" {exc.status}" if exc.status else ""
    message = f': "{exc.message}"' if exc.message else ""
    return f"{exc.code}{status}{message}"


def api_fault(exc: genai_errors.APIError, *, during: str, target: VertexTarget, model: str) -> GeneratorFault:
    """An HTTP error answer from Vertex AI as a fault; ``during`` is "submit" or "poll"."""
    code = exc.code
    said = f"Vertex AI answered {_quote(exc)}"
    if code == 429 or exc.status == "RESOURCE_EXHAUSTED":
        return TransientFault(
            f"{said}. veotui retries with backoff; if this keeps happening, ask for more Veo "
            "quota in the Google Cloud console (Veo allows about 10 requests per minute per project).",
            retry_after=retry_delay(exc),
        )
    if code == 504 and during == "submit":
        # A gateway timeout: the request reached Google and may have started a generation.
        return SubmitOutcomeUnknown(f"{said} to the generate request, so it may or may not have started.")
    if code == 408 or code >= 500:
        return TransientFault(f"{said}; veotui retries with backoff.", retry_after=retry_delay(exc))
    if code == 400:
        return PermanentFault(f"{said}. Change what it names and submit again.", kind=ErrorKind.BAD_REQUEST)
    if code == 401:
        fix = "check GOOGLE_API_KEY" if target.express else NO_ADC_HELP
        return PermanentFault(
            f"{said}: the credentials were not accepted; {fix}. `veotui doctor` checks them.", kind=ErrorKind.AUTH
        )
    if code == 403:
        who = "this API key" if target.express else f"the account on project {target.project}"
        return PermanentFault(
            f"{said}: {who} may not use Veo. It needs the Vertex AI User role "
            "(roles/aiplatform.user) and the Vertex AI API enabled; `veotui doctor` checks it.",
            kind=ErrorKind.PERMISSION_DENIED,
        )
    if code == 404 and during == "submit":
        where = "express mode" if target.express else f"location {target.location}"
        return PermanentFault(
            f"{said}: model {model} is not available in {where}. Pick another model, or set "
            "GOOGLE_CLOUD_LOCATION to a region that serves Veo (us-central1).",
            kind=ErrorKind.MODEL_NOT_FOUND,
        )
    if code == 404:
        return PermanentFault(
            f"{said}: Vertex AI no longer knows this operation (it expired or belongs to another "
            "project or location). Retry the job to generate again.",
            kind=ErrorKind.OPERATION_LOST,
        )
    return PermanentFault(f"{said}.", kind=ErrorKind.REJECTED)


def auth_fault(exc: google.auth.exceptions.GoogleAuthError, target: VertexTarget) -> GeneratorFault:
    if isinstance(exc, google.auth.exceptions.TransportError) or getattr(exc, "retryable", False):
        return TransientFault(f"could not reach Google to refresh the credentials ({exc}); veotui retries")
    return PermanentFault(
        f"the Google Cloud credentials could not be refreshed ({exc}); {NO_ADC_HELP}", kind=ErrorKind.AUTH
    )


def operation_error_sentence(error: Mapping[str, Any]) -> str:
    code = error.get("code")
    name = _GRPC_CODES.get(code, "") if isinstance(code, int) else ""
    label = " ".join(str(part) for part in (code, name) if part not in (None, ""))
    message = error.get("message") or "no message"
    advice = (
        "Google's side failed; the same request may succeed if retried."
        if name in {"INTERNAL", "UNAVAILABLE", "DEADLINE_EXCEEDED", "UNKNOWN"}
        else "Change the prompt or parameters it names and submit again."
    )
    return f'Veo ended the generation with an error ({label}): "{message}". {advice}'


def safety_sentence(asked: int, filtered: int, reasons: list[str]) -> str:
    blocked = filtered or asked
    why = "; ".join(reasons) if reasons else "no reason given"
    return (
        f"Google's safety filter blocked {blocked} of {asked} video(s): {why}. Google says filtered "
        "attempts are not charged. Rephrase the prompt (or use another image) and submit again."
    )


async def _image(path: Path | None, ref: str | None) -> types.Image | None:
    """An input image by its cloud URI, or inline (JPEG: every input was converted)."""
    if ref is not None:
        return types.Image(gcs_uri=ref, mime_type="image/jpeg")
    if path is not None:
        return types.Image(image_bytes=await anyio.Path(path).read_bytes(), mime_type="image/jpeg")
    return None


# -- the generator --------------------------------------------------------------------------


class VeoGenerator(Generator):
    name = "veo"
    is_simulator = False
    default_poll_interval = 30.0
    #: Veo usually takes one to three minutes; replaced by measured durations once known.
    typical_seconds = 120.0

    def __init__(self, client: genai.Client, target: VertexTarget, bucket: Bucket | None = None) -> None:
        self.client = client
        self.target = target
        self.bucket = bucket

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        env: Mapping[str, str] | None = None,
        *,
        credentials: Credentials | None = None,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> VeoGenerator:
        """Build from the environment; ``credentials`` replaces Application Default
        Credentials (tests pass a static token). Raises :class:`SettingsError` at start when
        the settings are present but cannot work."""
        env = os.environ if env is None else env
        target, credentials = resolve(env, credentials)
        bucket = connect_bucket(settings.gcs_bucket, env, target, credentials) if settings.gcs_bucket else None
        return cls(make_client(target, credentials, request_timeout), target, bucket)

    def validate(self, request: JobRequest) -> None:
        check_request(request)

    async def upload_image(self, job: Job, image_path: Path) -> str | None:
        if self.bucket is None:
            return None  # the image travels inline with the submit
        return await self.bucket.upload_image(job.job_id, image_path)

    async def upload_inputs(self, job: Job, inputs: JobInputs) -> JobInputs:
        """With a bucket every input goes up under temp_images/ or temp_videos/ (the source
        job of an extension is never touched: its video was copied into this job)."""
        if self.bucket is None:
            return inputs  # everything travels inline with the submit
        bucket, job_id = self.bucket, job.job_id
        refs: dict[str, Any] = {}
        # An input already in the bucket (uploaded at submit by a fleet without a shared
        # directory) keeps its address.
        if inputs.image is not None and inputs.image_ref is None:
            refs["image_ref"] = await bucket.upload_image(job_id, inputs.image)
        if inputs.last_frame is not None and inputs.last_frame_ref is None:
            refs["last_frame_ref"] = await bucket.upload_image(job_id, inputs.last_frame, "last_frame")
        if inputs.references and not inputs.reference_refs:
            refs["reference_refs"] = tuple(
                [await bucket.upload_image(job_id, p, f"reference_{n}") for n, p in enumerate(inputs.references, 1)]
            )
        if inputs.video is not None and inputs.video_ref is None:
            refs["video_ref"] = await bucket.upload_video(job_id, inputs.video)
        return inputs.with_refs(**refs)

    async def submit(self, job: Job, inputs: JobInputs) -> str:
        request = job.request
        image = await _image(inputs.image, inputs.image_ref)
        last_frame = await _image(inputs.last_frame, inputs.last_frame_ref)
        references = None
        if inputs.references:
            refs = inputs.reference_refs or (None,) * len(inputs.references)
            kind = types.VideoGenerationReferenceType((request.reference_type or "asset").upper())
            references = [
                types.VideoGenerationReferenceImage(image=await _image(path, ref), reference_type=kind)
                for path, ref in zip(inputs.references, refs, strict=True)
            ]
        video = None
        if inputs.video_ref is not None:
            video = types.Video(uri=inputs.video_ref, mime_type="video/mp4")
        elif inputs.video is not None:
            video = types.Video(video_bytes=await anyio.Path(inputs.video).read_bytes(), mime_type="video/mp4")
        config = types.GenerateVideosConfig(
            number_of_videos=request.number_of_videos,
            duration_seconds=request.duration_seconds,
            aspect_ratio=request.aspect_ratio,
            resolution=request.resolution,
            negative_prompt=request.negative_prompt,
            seed=request.seed,
            # Veo 3 on Vertex AI asks for this explicitly; every Veo 3.1 model makes sound
            # unless told not to (and costs less without).
            generate_audio=True if request.generate_audio is None else request.generate_audio,
            person_generation=request.person_generation,
            enhance_prompt=request.enhance_prompt,
            last_frame=last_frame,
            reference_images=references,
            output_gcs_uri=self.bucket.output_uri(job.job_id) if self.bucket else None,
            labels=request_labels(job),
        )
        source = types.GenerateVideosSource(prompt=request.prompt, image=image, video=video)
        try:
            operation = await self.client.aio.models.generate_videos(model=request.model, source=source, config=config)
        except genai_errors.APIError as exc:
            raise api_fault(exc, during="submit", target=self.target, model=request.model) from exc
        except NOT_SENT_ERRORS as exc:
            raise TransientFault(
                f"could not connect to Vertex AI ({type(exc).__name__}: {exc}); nothing was sent"
            ) from exc
        except TRANSPORT_ERRORS as exc:
            raise SubmitOutcomeUnknown(
                f"The generate request was sent to Vertex AI but no answer came back "
                f"({type(exc).__name__}: {exc or 'no detail'})."
                + (
                    f" If Google accepted it, its videos appear under {self.bucket.output_uri(job.job_id)}."
                    if self.bucket
                    else ""
                )
            ) from exc
        except google.auth.exceptions.GoogleAuthError as exc:
            raise auth_fault(exc, self.target) from exc
        if not operation.name:
            raise SubmitOutcomeUnknown("Vertex AI accepted the generate request but named no operation to follow.")
        return operation.name

    async def poll(self, job: Job, operation: str) -> GenerationResult | None:
        try:
            current = await self.client.aio.operations.get(types.GenerateVideosOperation(name=operation))  # type: ignore[call-arg]  # pydantic field the SDK's Operation base hides
        except genai_errors.APIError as exc:
            raise api_fault(exc, during="poll", target=self.target, model=job.request.model) from exc
        except TRANSPORT_ERRORS as exc:
            raise TransientFault(
                f"could not reach Vertex AI to check the operation ({type(exc).__name__}: {exc or 'no detail'})"
            ) from exc
        except google.auth.exceptions.GoogleAuthError as exc:
            raise auth_fault(exc, self.target) from exc
        if not current.done:
            return None
        if current.error:
            raise PermanentFault(operation_error_sentence(current.error), kind=ErrorKind.OPERATION_ERROR)
        response = current.response or current.result
        generated = (response.generated_videos if response else None) or []
        videos = [item.video for item in generated if item.video is not None]
        filtered = (response.rai_media_filtered_count if response else None) or 0
        reasons = list((response.rai_media_filtered_reasons if response else None) or [])
        if not videos and (filtered or reasons):
            raise PermanentFault(
                safety_sentence(job.request.number_of_videos, filtered, reasons), kind=ErrorKind.SAFETY_FILTER
            )
        return GenerationResult(videos=videos, filtered_count=filtered, filtered_reasons=reasons)

    def save_result(self, result: GenerationResult) -> Any | None:
        # Videos in Cloud Storage stay there until the job is deleted; inline videos are
        # not kept (megabytes each): polling the finished operation again returns them.
        uris = [getattr(video, "uri", None) for video in result.videos]
        if not uris or not all(isinstance(uri, str) and uri.startswith("gs://") for uri in uris):
            return None
        return {
            "videos": uris,
            "filtered_count": result.filtered_count,
            "filtered_reasons": list(result.filtered_reasons),
        }

    def load_result(self, saved: Any) -> GenerationResult | None:
        uris = saved.get("videos") if isinstance(saved, dict) else None
        if not isinstance(uris, list) or not uris or not all(isinstance(uri, str) for uri in uris):
            return None
        return GenerationResult(
            videos=[types.Video(uri=uri, mime_type="video/mp4") for uri in uris],
            filtered_count=int(saved.get("filtered_count") or 0),
            filtered_reasons=[str(reason) for reason in saved.get("filtered_reasons") or ()],
        )

    async def fetch(self, job: Job, result: GenerationResult, dest: Path) -> list[Path]:
        paths = []
        for index, video in enumerate(result.videos, 1):
            target = dest / video_name(index)
            if video.video_bytes:
                await anyio.to_thread.run_sync(write_atomic, target, video.video_bytes)
            elif video.uri and video.uri.startswith("gs://"):
                if self.bucket is None:
                    raise PermanentFault(
                        f"Veo left video {index} at {video.uri}, but VEOTUI_GCS_BUCKET is no longer set; "
                        "set it again to download it.",
                        kind=ErrorKind.STORAGE,
                    )
                await self.bucket.download(video.uri, target)
            else:
                raise PermanentFault(
                    f"Veo returned video {index} with neither bytes nor a gs:// address ({video.uri!r})",
                    kind=ErrorKind.NO_VIDEOS,
                )
            paths.append(target)
        return paths

    async def cleanup(self, job: Job, *, everything: bool) -> None:
        if self.bucket is None:
            return
        await self.bucket.delete_prefix(image_prefix(job.job_id), job.job_id)
        await self.bucket.delete_prefix(video_prefix(job.job_id), job.job_id)
        if everything:
            await self.bucket.delete_prefix(output_prefix(job.job_id), job.job_id)

    async def aclose(self) -> None:
        await self.client.aio.aclose()
        if self.bucket is not None:
            await anyio.to_thread.run_sync(self.bucket.close)
