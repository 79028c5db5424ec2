"""`veotui doctor` against the fake Vertex AI server and the Cloud Storage emulator: it
checks everything without generating, and names each problem with its fix."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from tests.veo.fake_vertex import Fault
from veotui.cli.doctor import run_doctor

ROOT = Path(__file__).resolve().parents[2]


def doctor(settings, env) -> tuple[int, list[str]]:
    out = io.StringIO()
    status = run_doctor(settings, env, out=out)
    return status, out.getvalue().splitlines()


def line(lines: list[str], what: str) -> str:
    return next(text for text in lines if text.split(":", 1)[0].split(maxsplit=1)[-1] == what)


def test_everything_in_place(make_settings, fake_vertex, bucket, storage_client, service_account_file, gcs_emulator):
    settings = make_settings(generator="auto", gcs_bucket=bucket)
    env = {
        "GOOGLE_CLOUD_PROJECT": "doctor-proj",
        "GOOGLE_APPLICATION_CREDENTIALS": str(service_account_file),
        "GOOGLE_VERTEX_BASE_URL": fake_vertex.url,
        "STORAGE_EMULATOR_HOST": gcs_emulator,
    }
    status, lines = doctor(settings, env)

    assert status == 0, lines
    assert "project doctor-proj, location us-central1" in line(lines, "settings")
    assert "veotui@key-project.iam.gserviceaccount.com obtained a token" in line(lines, "credentials")
    assert line(lines, "model veo-3.1-generate-001").startswith("  ok")
    assert f"gs://{bucket} exists; writing and deleting objects works" in line(lines, "bucket")
    # Nothing was generated, and the write test left nothing behind.
    assert not fake_vertex.submits()
    assert {r.verb for r in fake_vertex.requests} == {"token", "getModel"}
    assert not list(storage_client.list_blobs(bucket))


def test_each_problem_is_named_with_its_fix(make_settings, fake_vertex, gcs_emulator):
    fake_vertex.faults.append(Fault("getModel", status=403, message="Permission denied on resource project."))
    settings = make_settings(generator="auto", gcs_bucket="no-such-bucket")
    env = {
        "GOOGLE_API_KEY": "key-1234",
        "GOOGLE_VERTEX_BASE_URL": fake_vertex.url,
        "STORAGE_EMULATOR_HOST": gcs_emulator,
    }
    status, lines = doctor(settings, env)

    assert status == 1
    assert "express mode" in line(lines, "settings")
    assert "...1234" in line(lines, "credentials")
    refused = line(lines, "model veo-3.1-generate-001")
    assert refused.startswith("  FAIL") and "403" in refused and "roles/aiplatform.user" in refused
    assert line(lines, "model veo-3.1-fast-generate-001").startswith("  ok")
    bucket = line(lines, "bucket")
    assert bucket.startswith("  FAIL") and "no-such-bucket" in bucket and "VEOTUI_GCS_BUCKET" in bucket
    assert lines[-1].startswith("2 problem(s)")


def test_without_google_settings_it_says_what_to_set(make_settings):
    status, lines = doctor(make_settings(generator="auto"), {})
    assert status == 1
    assert "GOOGLE_API_KEY" in line(lines, "generator") and "GOOGLE_CLOUD_PROJECT" in line(lines, "generator")


def no_credentials_env(tmp_path: Path) -> dict[str, str]:
    """A project but no credentials anywhere: HOME and the gcloud config are empty, and the
    GCE metadata server is not probed."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GOOGLE_", "VEOTUI_"))}
    env.update(
        {
            "HOME": str(tmp_path),
            "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
            "NO_GCE_CHECK": "true",
            "GOOGLE_CLOUD_PROJECT": "lonely-proj",
            "VEOTUI_CONFIG": "/nonexistent/veotui.toml",
            "VEOTUI_DATA_DIR": str(tmp_path / "data"),
        }
    )
    return env


def veotui(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "veotui", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_command_reports_missing_credentials(tmp_path):
    done = veotui("doctor", env=no_credentials_env(tmp_path))
    assert done.returncode == 1, done.stderr
    settings_line = line(done.stdout.splitlines(), "settings")
    assert settings_line.startswith("  FAIL")
    assert "GOOGLE_CLOUD_PROJECT is lonely-proj" in settings_line
    assert "gcloud auth application-default login" in settings_line


def test_serve_refuses_to_start_without_credentials_in_one_line(tmp_path):
    done = veotui("serve", "--port", "0", env=no_credentials_env(tmp_path))
    assert done.returncode == 1
    assert done.stdout == ""
    [message] = done.stderr.splitlines()
    assert message.startswith("veotui: GOOGLE_CLOUD_PROJECT is lonely-proj, but no usable Google Cloud credentials")
    assert "gcloud auth application-default login" in message
