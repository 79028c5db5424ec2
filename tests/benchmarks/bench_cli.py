"""How long a client verb takes, run on demand:

    .venv/bin/python tests/benchmarks/bench_cli.py [RUNS]

Starts a real ``veotui serve`` (simulator, a fresh data directory, ten jobs in its lists),
then times RUNS (default 15) runs each of ``veotui jobs`` (in a pipe, as a script calls it)
and of ``python -c "import httpx"``, alternating, and prints the best of each (the machine
may be busy; the best run is the one it was not). A verb has to start Python and import
httpx whatever it does, so that is the floor it is compared to.

The last line is ``ratio: X`` (veotui jobs / import httpx; target <= 2).
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JOBS = 10


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return elapsed


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    python = sys.executable
    with tempfile.TemporaryDirectory() as data_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VEOTUI_")}
        env.update(
            PYTHONPATH=str(ROOT),
            VEOTUI_CONFIG="/nonexistent/veotui-bench-config.toml",
            VEOTUI_DATA_DIR=data_dir,
            VEOTUI_GENERATOR="sim",
            VEOTUI_SIM_SECONDS="0.2",
        )
        server = subprocess.Popen(
            [python, "-m", "veotui", "serve", "--port", "0"], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            url = None
            for line in server.stdout:
                match = re.search(r"serves (http://\S+)", line)
                if match:
                    url = match.group(1)
                    break
            if url is None:
                raise SystemExit("veotui serve did not start")
            client = {**env, "VEOTUI_REMOTE": url}
            for n in range(JOBS):
                timed([python, "-m", "veotui", "submit", f"bench job {n}"], client)
            verb, floor = [], []
            for _ in range(runs):
                verb.append(timed([python, "-m", "veotui", "jobs"], client))
                floor.append(timed([python, "-c", "import httpx"], client))
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    jobs_s, httpx_s = min(verb), min(floor)
    print(f"runs: {runs} each, alternating; best of each (median in brackets)")
    print(f"veotui jobs (in a pipe): {jobs_s * 1000:.0f} ms ({statistics.median(verb) * 1000:.0f})")
    print(f'python -c "import httpx": {httpx_s * 1000:.0f} ms ({statistics.median(floor) * 1000:.0f})')
    print(f"ratio: {jobs_s / httpx_s:.2f}")


if __name__ == "__main__":
    main()
