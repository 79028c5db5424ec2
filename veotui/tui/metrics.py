"""The metrics screen (``m``): the last day as charts, and the figures an operator checks.

It reads ``Backend.metrics()`` and ``Backend.metric_series(24)`` (``GET /api/metrics`` and
``/api/metrics/series`` over ``--remote``), once on opening and then every
``REFRESH_SECONDS``; a read still running when the next is due is not doubled.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Sparkline, Static

from veotui.backend.base import Backend
from veotui.core import display as fmt
from veotui.core.job import ACTIVE_STATUSES
from veotui.core.text import printable
from veotui.tui.cells import rich_style

#: At most one refresh a second.
REFRESH_SECONDS = 1.0
HOURS = 24


class Chart(Vertical):
    """A titled sparkline with its scale underneath."""

    DEFAULT_CSS = """
    Chart {
        height: 5;
        border: round $panel-lighten-2;
        padding: 0 1;
    }
    Chart Sparkline {
        height: 2;
    }
    Chart .scale {
        height: 1;
        color: $text-muted;
    }
    """

    def __init__(self, title: str, id: str) -> None:
        super().__init__(id=id)
        self.border_title = title

    def compose(self) -> ComposeResult:
        yield Sparkline([], summary_function=max)
        yield Static("", classes="scale")

    def show(self, values: list[float], scale: str) -> None:
        self.query_one(Sparkline).data = values
        self.query_one(".scale", Static).update(Text(scale))


class MetricsScreen(Screen[None]):
    DEFAULT_CSS = """
    MetricsScreen #metrics {
        padding: 0 1;
    }
    MetricsScreen #metrics-title {
        height: 1;
    }
    MetricsScreen #top {
        height: auto;
    }
    MetricsScreen #charts {
        width: 2fr;
        height: auto;
    }
    MetricsScreen #now {
        width: 1fr;
        min-width: 36;
        height: auto;
        border: round $panel-lighten-2;
        padding: 0 1;
    }
    MetricsScreen #tables {
        height: auto;
    }
    MetricsScreen #stages, MetricsScreen #errors {
        width: 1fr;
        height: auto;
        border: round $panel-lighten-2;
        padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,m,q", "dismiss", "Back", id="metrics_close"),
    ]

    def __init__(self, backend: Backend, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self.backend = backend
        self.clock = clock
        self.loaded = False
        #: The figures and series last shown.
        self.figures: dict[str, Any] = {}
        self.series: list[dict[str, Any]] = []
        #: Whether the engine only simulates (its spend is then marked so); None until read.
        self.simulated: bool | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="metrics"):
            yield Static(Text("Metrics · last 24 hours", style="bold"), id="metrics-title")
            with Horizontal(id="top"):
                with Vertical(id="charts"):
                    yield Chart("Jobs finished per hour", id="finished")
                    yield Chart("Success rate per hour", id="success")
                    yield Chart("Longest queue per hour", id="queue")
                now = Static("Reading the metrics…", id="now")
                now.border_title = "Now"
                yield now
            with Horizontal(id="tables"):
                stages = Static("", id="stages")
                stages.border_title = "Time per stage"
                yield stages
                errors = Static("", id="errors")
                errors.border_title = "Errors by kind"
                yield errors
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_figures()
        self.set_interval(REFRESH_SECONDS, self.refresh_figures)

    @work(exclusive=True, group="metrics", exit_on_error=False)
    async def refresh_figures(self) -> None:
        try:
            if self.simulated is None:
                self.simulated = (await self.backend.info()).is_simulator
            figures = await self.backend.metrics()
            series = await self.backend.metric_series(HOURS)
        except Exception as exc:  # noqa: BLE001 - VeotuiError or a dropped connection: say it here
            self.query_one("#now", Static).update(Text(printable(f"Could not read the metrics: {exc}"), style="red"))
            return
        self.show(figures, series)
        self.loaded = True

    def show(self, figures: dict[str, Any], series: list[dict[str, Any]]) -> None:
        self.figures, self.series = figures, series
        finished = [float(h["completed"] + h["failed"] + h["cancelled"]) for h in series]
        judged = [(h["completed"], h["completed"] + h["failed"]) for h in series]
        rates = [100.0 * ok / total if total else 0.0 for ok, total in judged]
        queue = [float(h["queue_length_max"]) for h in series]
        first, last = (_hour(series[0]["hour"]), _hour(series[-1]["hour"])) if series else ("", "")
        span = f"{first} … {last} UTC"
        self.query_one("#finished", Chart).show(
            finished, f"{span} · {int(sum(finished))} in all, at most {int(max(finished, default=0))} an hour"
        )
        ok, total = sum(o for o, _ in judged), sum(t for _, t in judged)
        overall = f"{100 * ok / total:.0f} % of {total} completed or failed" if total else "no job completed or failed"
        self.query_one("#success", Chart).show(rates, f"{span} · {overall}")
        self.query_one("#queue", Chart).show(queue, f"{span} · at most {int(max(queue, default=0))} waiting")
        self.query_one("#now", Static).update(now_table(figures, self.clock(), simulated=bool(self.simulated)))
        self.query_one("#stages", Static).update(stage_table(figures))
        self.query_one("#errors", Static).update(error_table(figures))


def _hour(text: str) -> str:
    return text[11:16] if len(text) >= 16 else text


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:,.2f}"


def now_table(figures: dict[str, Any], now: datetime, *, simulated: bool = False) -> Table:
    """The figures of now; ``simulated``: the spend is the simulator's, nothing was paid."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(no_wrap=True)
    rate = figures.get("success_rate")
    rows: list[tuple[str, str | Text]] = [
        ("Queued", str(figures.get("queue_length", 0))),
        ("Processing", str(figures.get("processing", 0))),
        ("Completed", str(figures.get("completed", 0))),
        ("Failed", str(figures.get("failed", 0))),
        ("Cancelled", str(figures.get("cancelled", 0))),
        ("Success rate", "—" if rate is None else f"{100 * rate:.0f} %"),
        ("Avg queue wait", fmt.duration(figures.get("queue_wait_seconds_avg"))),
        ("Median run", fmt.duration(figures.get("processing_seconds_p50"))),
        ("p95 run", fmt.duration(figures.get("processing_seconds_p95"))),
    ]
    spent = figures.get("spend_today_usd")
    budget = figures.get("daily_budget_usd")
    mark = Text(" simulated", style="dim") if simulated else Text("")
    if budget:
        share = 100 * (spent or 0) / budget
        style = rich_style("$text-error") if share >= 100 else rich_style("$text-warning") if share >= 80 else ""
        today = Text(f"{_money(spent)} of {_money(budget)} ({share:.0f} %)", style=style)
    else:
        today = Text(_money(spent))
    rows += [
        ("Spend today", Text.assemble(today, mark)),
        ("Spend in all", Text.assemble(_money(figures.get("estimated_cost_usd_total")), mark)),
        ("Data dir", fmt.size(int(figures.get("storage_bytes") or 0))),
        ("Updated", now.astimezone().strftime("%H:%M:%S")),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def stage_table(figures: dict[str, Any]) -> Table | Text:
    stages = figures.get("stage_seconds") or {}
    if not stages:
        return Text("No stage has ended yet.", style="dim")
    table = Table(box=None, padding=(0, 2, 0, 0), header_style="bold")
    table.add_column("Stage", no_wrap=True)
    table.add_column("Median", justify="right", no_wrap=True)
    table.add_column("p95", justify="right", no_wrap=True)
    table.add_column("Count", justify="right", no_wrap=True)
    for status in ACTIVE_STATUSES:
        entry = stages.get(status.value)
        if entry:
            table.add_row(
                fmt.stage_label(status),
                _seconds(entry.get("p50")),
                _seconds(entry.get("p95")),
                str(entry.get("count", 0)),
            )
    return table


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} s" if value < 60 else fmt.duration(value)


def error_table(figures: dict[str, Any]) -> Table | Text:
    errors = figures.get("errors_by_kind") or {}
    if not errors:
        return Text("No job has failed.", style="dim")
    table = Table(box=None, padding=(0, 2, 0, 0), header_style="bold")
    table.add_column("Kind", no_wrap=True)
    table.add_column("Jobs", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    top = max(errors.values())
    for kind, count in sorted(errors.items(), key=lambda item: (-item[1], item[0])):
        bar = "█" * max(1, round(12 * count / top))
        table.add_row(Text(printable(kind)), str(count), Text(bar, style=rich_style("$error")))
    return table
