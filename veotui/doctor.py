"""`veotui doctor`: checks the Google Cloud settings without generating anything.

Each check prints one line (``ok``, ``FAIL`` or ``--`` for not applicable) with what to do
about a failure. The checks: which generator ``auto`` picks; the mode (project or express)
and its settings; that the credentials give a token; that each Veo model answers in the
chosen location; that the bucket exists and takes writes and deletes. Exit status 0 when
nothing failed, else 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

from veotui.errors import SettingsError
from veotui.generators import choose_generator
from veotui.settings import Settings

CHECK_TIMEOUT_SECONDS = 30.0


class _Report:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failures = 0

    def ok(self, what: str, text: str) -> None:
        self._line("ok", what, text)

    def fail(self, what: str, text: str) -> None:
        self.failures += 1
        self._line("FAIL", what, text)

    def skip(self, what: str, text: str) -> None:
        self._line("--", what, text)

    def _line(self, mark: str, what: str, text: str) -> None:
        print(f"  {mark:<5} {what}: {text}", file=self.out, flush=True)


def run_doctor(settings: Settings, env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    env = os.environ if env is None else env
    report = _Report(out or sys.stdout)
    print("veotui doctor: checking the Google Cloud settings (nothing is generated)", file=report.out)
    _check(settings, env, report)
    if report.failures:
        print(
            f"{report.failures} problem(s); fix them and run `veotui doctor` again. docs/veo.md has the details.",
            file=report.out,
        )
        return 1
    print("everything veotui needs for Veo is in place.", file=report.out)
    return 0


def _check(settings: Settings, env: Mapping[str, str], report: _Report) -> None:
    # Imported here: google-genai takes a moment to import, and only doctor and veo need it.
    from veotui.generators import veo

    chosen = choose_generator(settings.replace(generator="auto"), env)
    if settings.generator == "sim":
        report.skip("generator", "VEOTUI_GENERATOR is sim: veotui uses the simulator whatever these checks say")
    elif chosen == "sim" and settings.generator == "auto":
        report.fail(
            "generator",
            "no Google settings found, so `auto` runs the offline simulator. Set GOOGLE_API_KEY "
            "(express mode), or GOOGLE_CLOUD_PROJECT with Application Default Credentials",
        )
        return
    else:
        report.ok("generator", f"{settings.generator} -> veo")

    try:
        target, credentials = veo.resolve(env)
    except SettingsError as exc:
        report.fail("settings", str(exc))
        return
    mode = (
        "express mode (GOOGLE_API_KEY)" if target.express else f"project {target.project}, location {target.location}"
    )
    report.ok("settings", mode + (f", endpoint {target.base_url}" if target.base_url else ""))

    if credentials is not None and not _check_token(credentials, report):
        return
    if credentials is None:
        report.skip("credentials", f"API key ending ...{(target.api_key or '')[-4:]}; the model check below tries it")

    client = veo.make_client(target, credentials, timeout=CHECK_TIMEOUT_SECONDS)
    try:
        for model in veo.MODEL_LIMITS:
            _check_model(client, target, model, report)
    finally:
        client.close()

    if not settings.gcs_bucket:
        report.skip("bucket", "VEOTUI_GCS_BUCKET is not set: images and videos travel inline with the requests")
        return
    try:
        storage = veo.connect_storage(settings.gcs_bucket, env, target, credentials)
    except SettingsError as exc:
        report.fail("bucket", str(exc))
        return
    try:
        report.ok("bucket", storage.check_access())
    except Exception as exc:  # noqa: BLE001 - any failure of the bucket check is the answer
        report.fail("bucket", str(exc))
    finally:
        storage.close()


def _check_token(credentials, report: _Report) -> bool:
    import google.auth.exceptions
    import google.auth.transport.requests

    who = getattr(credentials, "service_account_email", None) or type(credentials).__name__
    if credentials.valid:
        report.ok("credentials", f"{who} (a token is at hand)")
        return True
    try:
        credentials.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.GoogleAuthError as exc:
        from veotui.generators.veo import NO_ADC_HELP

        report.fail("credentials", f"{who} could not get a token ({exc}); {NO_ADC_HELP}")
        return False
    report.ok("credentials", f"{who} obtained a token")
    return True


def _check_model(client, target, model: str, report: _Report) -> None:
    from google.genai import errors as genai_errors

    from veotui.generators import veo

    try:
        client.models.get(model=model)
    except genai_errors.APIError as exc:
        report.fail(f"model {model}", str(veo.api_fault(exc, during="submit", target=target, model=model)))
    except veo.TRANSPORT_ERRORS as exc:
        where = f" at {target.base_url}" if target.base_url else ""
        report.fail(
            f"model {model}",
            f"cannot reach Vertex AI{where} ({type(exc).__name__}: {exc}); check the network "
            "(and GOOGLE_VERTEX_BASE_URL, if set)",
        )
    else:
        report.ok(f"model {model}", "available")
