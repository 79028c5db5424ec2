"""The rules of webhooks and idempotency keys that need no server: the hooks' settings, the
signature, the retry schedule, and what makes two submits the same request."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from veotui.core.errors import InvalidRequest, SettingsError
from veotui.core.idempotency import check_key, fingerprint
from veotui.core.job import Status
from veotui.core.request import JobRequest
from veotui.core.webhooks import (
    DELIVERED,
    FAILED,
    PENDING,
    Attempt,
    Delivery,
    Hook,
    after_attempt,
    retry_delay,
    signature,
)
from veotui.settings import load_settings

SECRET = "0123456789abcdef-secret"


def settings_from(tmp_path, text: str, **env: str):
    config = tmp_path / "config.toml"
    config.write_text(text)
    return load_settings(env={"VEOTUI_CONFIG": str(config), **env})


def test_hooks_come_from_the_config_file_and_the_environment(tmp_path):
    settings = settings_from(
        tmp_path,
        f'[[webhooks]]\nurl = "https://example.test/a"\nsecret = "{SECRET}"\n'
        f'[[webhooks]]\nurl = "http://127.0.0.1:9000/b"\nsecret = "{SECRET}"\nevents = ["failed"]\n'
        f'[[webhooks]]\nurl = "http://127.0.0.1:9000/c"\nsecret = "{SECRET}"\nevents = "*"\n',
        VEOTUI_WEBHOOK_URL="http://127.0.0.1:9000/env",
        VEOTUI_WEBHOOK_SECRET=SECRET,
    )
    a, b, c, from_env = settings.webhooks
    assert a.url == "https://example.test/a" and a.events == {"completed", "failed", "cancelled"}
    assert b.wants(Status.FAILED) and not b.wants(Status.COMPLETED)
    assert c.events is None and c.wants(Status.GENERATING) and c.wants(Status.QUEUED)
    assert from_env.url.endswith("/env") and from_env.wants(Status.CANCELLED) and not from_env.wants(Status.QUEUED)
    assert "secret" not in str(a.describe()) and a.describe()["events"] == ["cancelled", "completed", "failed"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (f'secret = "{SECRET}"', "a hook needs a url"),
        (f'url = "ftp://x/y"\nsecret = "{SECRET}"', "http:// or https://"),
        ('url = "http://x/y"\nsecret = "short"', "a secret of at least 16 characters"),
        ('url = "http://x/y"', "a secret of at least 16 characters"),
        (f'url = "http://x/y"\nsecret = "{SECRET}"\nevents = ["done"]', "'done', which is not an event"),
        (f'url = "http://x/y"\nsecret = "{SECRET}"\nevents = []', "is empty"),
        (f'url = "http://x/y"\nsecret = "{SECRET}"\nheaders = 1', "has 'headers'"),
    ],
)
def test_a_bad_hook_is_refused_naming_the_table(tmp_path, table, message):
    with pytest.raises(SettingsError) as refused:
        settings_from(tmp_path, f"[[webhooks]]\n{table}\n")
    assert message in str(refused.value) and "[[webhooks]] number 1" in str(refused.value)


def test_one_address_is_one_hook(tmp_path):
    table = f'[[webhooks]]\nurl = "http://x/y"\nsecret = "{SECRET}"\n'
    with pytest.raises(SettingsError, match="names the hook http://x/y twice"):
        settings_from(tmp_path, table * 2)
    # The environment's hook replaces the file's at the same address.
    (only,) = settings_from(
        tmp_path, table, VEOTUI_WEBHOOK_URL="http://x/y", VEOTUI_WEBHOOK_SECRET="another-secret-0123"
    ).webhooks
    assert only.secret == "another-secret-0123"
    with pytest.raises(SettingsError, match="a hook needs a url"):
        load_settings(env={"VEOTUI_CONFIG": "/nonexistent.toml", "VEOTUI_WEBHOOK_SECRET": SECRET})


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"event":"job.completed"}'
    expected = hmac.new(SECRET.encode(), b"1733570000." + body, hashlib.sha256).hexdigest()
    assert signature(SECRET, "1733570000", body) == f"sha256={expected}"
    assert signature(SECRET, "1733570001", body) != signature(SECRET, "1733570000", body)


def test_retries_double_from_one_second_up_to_ten_minutes_for_a_day():
    assert [retry_delay(n) for n in range(1, 12)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    delivery = Delivery("d", "http://x", "job.failed", "j", "{}", start)
    failed = Attempt(start, 500, "no", 0.1)
    assert after_attempt(delivery, failed) == (PENDING, start + timedelta(seconds=1))
    assert after_attempt(delivery, Attempt(start, 204, "", 0.1)) == (DELIVERED, None)
    # The schedule a dead receiver sees: tries until 24 h have passed, then failed.
    at, tries = start, 0
    while True:
        state, next_at = after_attempt(Delivery("d", "x", "e", "j", "{}", start, tries=tries), Attempt(at, None, "", 0))
        tries += 1
        if state == FAILED:
            break
        assert next_at is not None
        at = next_at
    assert timedelta(hours=23, minutes=50) <= at - start <= timedelta(hours=24)
    assert 150 <= tries <= 160


def test_the_same_request_is_the_same_however_it_is_spelled():
    plain = JobRequest.from_mapping({"prompt": "a fox"})
    spelled = JobRequest.from_mapping({"seed": None, "prompt": "a fox", "model": plain.model})
    assert fingerprint(plain, [None]) == fingerprint(spelled, [None])
    # Who sends it is not part of the request: keys are per user already.
    assert fingerprint(plain, [None]) == fingerprint(JobRequest.from_mapping({"prompt": "a fox", "user": "x"}), [None])
    assert fingerprint(plain, [b"png"]) != fingerprint(plain, [None])
    assert fingerprint(plain, [b"png", None]) != fingerprint(plain, [None, b"png"])  # first frame or last frame
    assert fingerprint(plain, [None]) != fingerprint(JobRequest.from_mapping({"prompt": "a fox", "seed": 1}), [None])


@pytest.mark.parametrize("key", ["a", "x" * 200, "order 17/retry:2", "~!@#"])
def test_printable_keys_of_1_to_200_characters_are_taken(key):
    assert check_key(key) == key


@pytest.mark.parametrize(("key", "problem"), [("", "empty"), ("x" * 201, "201"), ("a\tb", r"U\+0009 at position 2")])
def test_other_keys_are_refused_with_the_reason(key, problem):
    with pytest.raises(InvalidRequest, match=problem):
        check_key(key)


def test_a_hook_by_default_wants_the_end_statuses_only():
    hook = Hook("http://x", SECRET)
    assert [s.value for s in Status if hook.wants(s)] == ["completed", "failed", "cancelled"]
