"""The client verbs: submit, jobs, status, cancel, retry, delete, download."""

from __future__ import annotations

import argparse
import sys

from veotui.settings import Settings


def run_verb(args: argparse.Namespace, settings: Settings) -> int:
    print(f"veotui: `{args.command}` is not built yet", file=sys.stderr)
    return 1
