"""Large images cannot balloon the server: three uploads of 50 megapixels at once raise its
peak resident memory by at most 400 MB (a conversion decodes the image once, scales it to
4k a band of rows at a time, and conversions take turns within a budget). The figures over
repeated runs are in tests/benchmarks/bench_server.py (--images)."""

from __future__ import annotations

import io
import threading

import httpx
import pytest
from PIL import Image

from tests.server.harness import ServeProcess, server_env
from tests.support.memory import large_png, peak_mb, reset_peak, rss_mb

pytestmark = pytest.mark.slow

#: Peak growth allowed for three concurrent 50-megapixel uploads.
BOUND_MB = 400


def test_three_50_megapixel_uploads_at_once_stay_within_the_memory_bound(tmp_path):
    images = [large_png(colour=(n * 80, 120, 40, 100 + n)) for n in range(3)]
    server = ServeProcess(server_env(tmp_path / "data", VEOTUI_SIM_SECONDS="60"))
    answers: list[httpx.Response] = []

    def upload(image: bytes) -> None:
        with httpx.Client(base_url=server.url, timeout=300, trust_env=False) as client:
            answers.append(
                client.post(
                    "/api/generate", data={"prompt": "large"}, files={"image": ("large.png", image, "image/png")}
                )
            )

    try:
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            client.get("/api/health")
        before = rss_mb(server.process.pid)
        reset_peak(server.process.pid)
        uploads = [threading.Thread(target=upload, args=(image,)) for image in images]
        for thread in uploads:
            thread.start()
        for thread in uploads:
            thread.join(300)
        growth = peak_mb(server.process.pid) - before
        assert [answer.status_code for answer in answers] == [202, 202, 202], [a.text for a in answers]
        # Scaled to 4k: the long side is 3840.
        job = answers[0].json()
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            stored = client.get(f"/api/jobs/{job['job_id']}/inputs/uploaded_image.jpg").content
        assert Image.open(io.BytesIO(stored)).size == (3840, 3840)
        assert growth <= BOUND_MB, f"peak RSS grew by {growth:.0f} MB"
    finally:
        server.kill()
