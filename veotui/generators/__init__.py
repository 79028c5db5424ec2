"""Generators: ``sim`` (offline simulator) and ``veo`` (Google Veo on Vertex AI)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from veotui.generators.base import (
    GenerationResult,
    Generator,
    GeneratorFault,
    PermanentFault,
    SubmitOutcomeUnknown,
    TransientFault,
)
from veotui.settings import Settings

__all__ = [
    "GenerationResult",
    "Generator",
    "GeneratorFault",
    "PermanentFault",
    "SubmitOutcomeUnknown",
    "TransientFault",
    "choose_generator",
    "make_generator",
]

#: Any of these in the environment means the operator meant to use Google Cloud.
GOOGLE_SETTINGS = ("GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT", "GOOGLE_API_KEY")


def choose_generator(settings: Settings, env: Mapping[str, str] | None = None) -> str:
    """``auto`` means ``veo`` when Google Cloud settings are present, else ``sim``."""
    env = os.environ if env is None else env
    if settings.generator != "auto":
        return settings.generator
    return "veo" if any(_is_set(name, env.get(name)) for name in GOOGLE_SETTINGS) else "sim"


def _is_set(name: str, value: str | None) -> bool:
    # GOOGLE_GENAI_USE_VERTEXAI=false is a setting that says "not Vertex", not one that says
    # "use Google"; like the SDK, only true or 1 turns it on.
    if name == "GOOGLE_GENAI_USE_VERTEXAI":
        return (value or "").strip().lower() in {"true", "1"}
    return bool(value and value.strip())


def make_generator(settings: Settings, env: Mapping[str, str] | None = None) -> Generator:
    env = os.environ if env is None else env
    name = choose_generator(settings, env)
    if name == "sim":
        from veotui.generators.sim import SimGenerator

        bucket = None
        if not settings.shared_dir and settings.gcs_bucket:
            # Without a shared directory the bucket holds the simulator's operations too.
            from veotui.generators.gcs import Bucket

            bucket = Bucket.connect(
                settings.gcs_bucket, env, project=env.get("GOOGLE_CLOUD_PROJECT") or None, credentials=None
            )
        return SimGenerator(settings.sim_dir, seconds=settings.sim_seconds, bucket=bucket)
    from veotui.generators.veo import VeoGenerator

    return VeoGenerator.from_settings(settings, env)
