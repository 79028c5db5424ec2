"""The client verbs: submit, jobs, status, cancel, retry, delete, download, queue, move.

Each one talks to the server at ``--remote`` / ``VEOTUI_REMOTE`` through the
:class:`~veotui.backend.base.Backend` interface (a :class:`RemoteBackend`). Results go to
stdout (job ids, tables, JSON, saved paths); progress and explanations go to stderr. Errors
are :class:`VeotuiError` sentences that ``veotui.cli`` prints on one line (exit status 1, or
2 for a bad value).

Scripts call these many times, so a verb imports only what it uses: Rich when it draws for
a terminal, Pillow never, the batch reader only for ``submit --from``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from veotui.backend.base import QUEUE_PAGE, Backend
from veotui.core import display as fmt
from veotui.core.access import AuditEntry
from veotui.core.capabilities import MAX_REFERENCES
from veotui.core.errors import Conflict, InvalidRequest, JobNotFound, TooLarge, VeotuiError
from veotui.core.idempotency import check_key
from veotui.core.job import Job, JobLists, QueueState, Status, format_usd, isoformat, utcnow
from veotui.core.text import printable
from veotui.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

#: History rows read at a time by ``delete --finished``.
HISTORY_PAGE = 500
#: Queued jobs each page of ``jobs --all`` reads again from the page before.
PAGE_OVERLAP = 20

Verb = Callable[[Backend, argparse.Namespace], Awaitable[int]]


def run_verb(args: argparse.Namespace, settings: Settings) -> int:
    from veotui.backend.remote import RemoteBackend

    if args.command == "models" and not _names_a_server(args, settings):
        from veotui.core.catalog import model_catalog

        return show_models(model_catalog(settings.price_table), args.json)
    verb = VERBS[args.command]

    async def main() -> int:
        async with RemoteBackend(settings.remote, settings.token) as backend:
            return await verb(backend, args)

    return anyio.run(main)


def _out() -> Console:
    from rich.console import Console

    # Soft wrap: long prompts and timeline lines stay one line each when piped.
    return Console(soft_wrap=True, highlight=False)


def _safe(text: str) -> str:
    """Stored text for the terminal: no markup, and controls shown as escapes, not sent."""
    from rich.markup import escape

    return escape(printable(text))


def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


# -- submit ---------------------------------------------------------------------------------


async def submit(backend: Backend, args: argparse.Namespace) -> int:
    if args.from_file:
        return await submit_batch(backend, Path(args.from_file).expanduser())
    image, image_name = _read_image(args.image) if args.image else (None, None)
    fields: dict[str, Any] = {
        "prompt": args.prompt,
        "number_of_videos": args.count,
        "model": args.model,
        "aspect_ratio": args.aspect_ratio,
        "duration_seconds": args.duration,
        "resolution": args.resolution,
    }
    if args.negative_prompt is not None:
        fields["negative_prompt"] = args.negative_prompt
    if args.seed is not None:
        fields["seed"] = args.seed
    for name, value in (
        ("generate_audio", args.audio),
        ("person_generation", args.person_generation),
        ("enhance_prompt", args.enhance_prompt),
        ("reference_type", args.reference_type),
    ):
        if value is not None:
            fields[name] = value
    if args.extend:
        job_text, _, video = args.extend.partition(":")
        fields["extends_job_id"] = await backend.resolve(job_text)
        if video:
            if not video.isdigit():
                raise InvalidRequest(f"--extend takes JOB or JOB:N with N a video number, got {args.extend!r}")
            fields["extends_video"] = int(video)
    if len(args.reference) > MAX_REFERENCES:
        raise InvalidRequest(f"--reference may be given at most {MAX_REFERENCES} times, got {len(args.reference)}")
    last_frame = _read_image(args.last_frame) if args.last_frame else None
    references = [_read_image(path) for path in args.reference]
    key = check_key(args.idempotency_key) if args.idempotency_key is not None else None
    job = await backend.submit(
        fields, image, image_name, last_frame=last_frame, references=references, idempotency_key=key
    )
    print(job.job_id, flush=True)
    _say_cautions(job)
    if not args.wait:
        return 0
    return await _wait(backend, job)


async def submit_batch(backend: Backend, path: Path) -> int:
    """Every line checked first (nothing is sent if one is bad), then queued in order."""
    from veotui.cli.submit_file import read_batch

    jobs = read_batch(path)
    submitted = 0
    for job in jobs:
        try:
            queued = await backend.submit(
                job.fields,
                job.image[0] if job.image else None,
                job.image[1] if job.image else None,
                last_frame=job.last_frame,
                references=job.references,
                idempotency_key=job.idempotency_key,
            )
        except VeotuiError as exc:
            # Checked alike beforehand, so only the server's state can refuse it now (an
            # extended job deleted meanwhile, a full disk); what went before stays queued.
            raise VeotuiError(
                f"{path.name} line {job.line}: {exc}; the {submitted} job(s) before it were queued"
            ) from None
        print(queued.job_id, flush=True)
        _say_cautions(queued)
        submitted += 1
    _err().print(f"queued {submitted} job(s) from {_safe(str(path))}")
    return 0


def _say_cautions(job: Job) -> None:
    """What only third parties say the model does not take: the job was sent all the same."""
    from veotui.core.request import cautions

    for caution in cautions(job.request, reference_count=job.reference_count):
        print(f"caution: {printable(caution)}", file=sys.stderr, flush=True)  # one line, for scripts


def _read_image(path_text: str) -> tuple[bytes, str]:
    from veotui.datadir.files import MAX_IMAGE_BYTES

    path = Path(path_text).expanduser()
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise TooLarge(f"{path} is {fmt.size(size)}; input images may be at most {fmt.size(MAX_IMAGE_BYTES)}")
        return path.read_bytes(), path.name
    except OSError as exc:
        raise VeotuiError(f"cannot read the image {path}: {exc.strerror or exc}") from None


async def _wait(backend: Backend, job: Job) -> int:
    """A progress line on stderr until the job ends: 0 if it completed, 1 otherwise. Follows
    the backend's change stream; the job is read once the stream is open, so an end that
    came before is not missed."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    console = _err()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(fmt.short_id(job.job_id), total=100, detail=_detail(job))
        caught_up = False
        async for change in backend.changes():
            if not caught_up:
                caught_up = True
                job = await _current(backend, job)
            elif change.job_id != job.job_id:
                continue
            elif change.kind == "deleted":
                raise VeotuiError(f"job {job.job_id} was deleted while waiting for it")
            elif change.job is not None:
                job = change.job
            progress.update(task, completed=job.progress, detail=_detail(job))
            if job.status.is_final:
                break
    if job.status == Status.COMPLETED:
        console.print(
            f"completed: {len(job.videos)} video(s); save them with: veotui download {fmt.short_id(job.job_id)}"
        )
        return 0
    raise VeotuiError(
        f"job {job.job_id} {job.status.value}"
        + (f": {job.error}" if job.error else "")
        + f" (retry it with: veotui retry {fmt.short_id(job.job_id)})"
    )


async def _current(backend: Backend, job: Job) -> Job:
    try:
        return await backend.get(job.job_id)
    except JobNotFound:
        raise VeotuiError(f"job {job.job_id} was deleted while waiting for it") from None


def _detail(job: Job) -> str:
    if job.status == Status.QUEUED:
        return f"queued, position {job.queue_position}"
    if job.status.is_active and job.eta_seconds:
        return f"{job.status.value}, about {job.eta_seconds} s left"
    return job.status.value


# -- models ---------------------------------------------------------------------------------


def _names_a_server(args: argparse.Namespace, settings: Settings) -> bool:
    """``--remote``, ``VEOTUI_REMOTE`` or the config file's ``remote`` names a server."""
    from veotui.settings import DEFAULT_REMOTE

    return getattr(args, "remote", None) is not None or settings.remote != DEFAULT_REMOTE


async def models(backend: Backend, args: argparse.Namespace) -> int:
    return show_models(await backend.models(), args.json)


def show_models(catalog: dict[str, Any], as_json: bool) -> int:
    """The model table: JSON, or for people an overview, then each model's facts with the
    pages they rest on, then those pages."""
    if as_json:
        print(json.dumps(catalog, indent=2))
        return 0
    from rich import box
    from rich.table import Table

    console = _out()
    resolutions = list(dict.fromkeys(r for m in catalog["models"] for r in m["prices"]["audio"]))
    # Light rules keep the overview, model names whole, inside 80 columns.
    overview = Table(
        title="US dollars a second of video, with sound/silent",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    overview.add_column("model", no_wrap=True)
    overview.add_column("status", no_wrap=True)
    for resolution in resolutions:
        overview.add_column(resolution, no_wrap=True)
    for model in catalog["models"]:
        prices = model["prices"]
        cells = [
            f"{_money(prices['audio'].get(r))}/{_money(prices['silent'].get(r))}" if r in prices["audio"] else "-"
            for r in resolutions
        ]
        overview.add_row(model["model"], model["status"], *cells)
    console.print(overview)
    sources = catalog.get("sources") or {}
    for model in catalog["models"]:
        title = model["model"] + (" (the default)" if model["default"] else "")
        table = Table(title=title, title_justify="left", show_header=True, expand=False)
        table.add_column("fact", no_wrap=True)
        table.add_column("what it takes")
        table.add_column("source (read on)")
        for fact in model["facts"]:
            cited = ", ".join(
                f"{key} ({sources[key]['read_on']})" if key in sources else key for key in fact["sources"]
            )
            table.add_row(fact["label"], _safe(fact["value"]), cited)
        console.print(table)
    console.print("sources:")
    for key, source in sources.items():
        whose = "Google" if source["by_google"] else "third party: warns, never refuses"
        console.print(_safe(f"  {key} ({whose}; read {source['read_on']}): {source['title']}, {source['url']}"))
    return 0


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


# -- jobs and status ------------------------------------------------------------------------


async def jobs(backend: Backend, args: argparse.Namespace) -> int:
    lists = await backend.list_jobs(history_limit=args.limit)
    if args.all:
        lists = await _every_queued(backend, lists)
    elif lists.queued_total > len(lists.queued):
        _err().print(f"{len(lists.queued):,} of {lists.queued_total:,} queued shown; --all for every one")
    if args.json:
        print(json.dumps(lists.to_dict(), indent=2))
        return 0
    if not sys.stdout.isatty():
        _jobs_lines(lists.processing + lists.queued + lists.history)
        return 0
    from rich.table import Table

    console = _out()
    for title, rows in (("Processing", lists.processing), ("In Queue", lists.queued), ("History", lists.history)):
        if not rows:
            console.print(f"{title}: none")
            continue
        table = Table(title=f"{title} ({len(rows)})", title_justify="left", expand=False)
        for column in ("job", "status", "progress", "videos", "model", "cost", "prompt"):
            table.add_column(column, no_wrap=column != "prompt", overflow="ellipsis")
        for job in rows:
            table.add_row(
                fmt.short_id(job.job_id),
                job.status.value,
                _progress_cell(job),
                str(len(job.videos) or job.request.number_of_videos),
                fmt.model_label(job.request.model),
                format_usd(job.estimated_cost_usd),
                _safe(job.prompt if len(job.prompt) <= 60 else job.prompt[:59] + "…"),
            )
        console.print(table)
    if lists.history_total > len(lists.history):
        console.print(f"… and {lists.history_total - len(lists.history)} older (--limit N shows more)")
    return 0


async def _every_queued(backend: Backend, lists: JobLists) -> JobLists:
    """``lists`` with every queued job, read a page at a time after the first. Jobs that
    start meanwhile move the others forward, so each page overlaps the one before; a job
    read twice is kept once, and the positions are counted again in queue order."""
    queued = {job.job_id: job for job in lists.queued}
    while len(queued) < lists.queued_total:
        page = await backend.list_jobs(
            history_limit=0, queue_limit=QUEUE_PAGE, queue_offset=max(0, len(queued) - PAGE_OVERLAP)
        )
        fresh = [job for job in page.queued if job.job_id not in queued]
        if not fresh:
            break
        queued.update((job.job_id, job) for job in fresh)
    ordered = sorted(queued.values(), key=lambda job: job.queue_seq)
    ordered = [job.replace(queue_position=place) for place, job in enumerate(ordered, start=1)]
    return dataclasses.replace(lists, queued=ordered, queued_total=len(ordered))


#: ``veotui jobs`` in a pipe: one tab-separated line per job, under this header.
JOBS_COLUMNS = ("job_id", "status", "progress", "videos", "model", "cost", "finished", "error", "prompt")


def _jobs_lines(rows: list[Job]) -> None:
    """Processing, then queued (in order), then history (newest first); no wrapping, no
    colour. Text fields are on one line with their tabs and controls shown as escapes."""
    lines = ["\t".join(JOBS_COLUMNS)]
    for job in rows:
        cells = (
            job.job_id,
            job.status.value,
            _progress_cell(job),
            str(len(job.videos) or job.request.number_of_videos),
            job.request.model,
            format_usd(job.estimated_cost_usd),
            isoformat(job.finished_at) or "-",
            _cell(job.error) or "-",
            _cell(job.prompt),
        )
        lines.append("\t".join(cells))
    sys.stdout.write("\n".join(lines) + "\n")


def _cell(text: str | None) -> str:
    return printable(text or "").replace("\t", "\\t")


def _progress_cell(job: Job) -> str:
    if job.status == Status.QUEUED:
        return f"#{job.queue_position}"
    if job.status.is_active or job.status == Status.COMPLETED:
        return f"{job.progress}%"
    return "-"


async def status(backend: Backend, args: argparse.Namespace) -> int:
    job = await backend.get(await backend.resolve(args.job))
    if args.json:
        print(json.dumps(job.to_dict(), indent=2))
        return 0
    request = job.request
    state = job.status.value
    if job.status == Status.QUEUED:
        state += f" (position {job.queue_position})"
    elif job.status.is_active:
        state += f" ({job.progress}%" + (f", about {job.eta_seconds} s left)" if job.eta_seconds else ")")
    rows = [
        ("job", job.job_id),
        ("status", state),
        ("prompt", request.prompt),
        ("negative", request.negative_prompt or "-"),
        ("model", request.model),
        (
            "format",
            f"{request.number_of_videos} x {request.duration_seconds} s, {request.aspect_ratio}, {request.resolution}",
        ),
        ("seed", "-" if request.seed is None else str(request.seed)),
        ("image", "yes" if job.has_image else "no"),
        *_mode_rows(job),
        ("user", request.user),
        ("attempts", str(job.attempts)),
        ("operation", job.operation or "-"),
        ("cost", f"{format_usd(job.estimated_cost_usd)} (estimate)"),
    ]
    if job.error:
        rows.append(("error", job.error))
    if job.status in (Status.FAILED, Status.CANCELLED):
        rows.append(("retry", f"{job.retry_effect} (veotui retry {fmt.short_id(job.job_id)})"))
    for video in job.videos:
        rows.append((f"video {video.index}", f"{video.filename} ({fmt.size(video.size_bytes)})"))
    from rich.table import Table

    console = _out()
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in rows:
        table.add_row(label, _safe(value))
    console.print(table)
    console.print("\ntimeline:")
    for event in fmt.shown_timeline(job, await backend.timeline(job.job_id)):
        moment = event.at.strftime("%Y-%m-%d %H:%M:%S")
        console.print(_safe(f"  {moment}  {event.status.value}" + (f"  {event.detail}" if event.detail else "")))
    return 0


def _mode_rows(job: Job) -> list[tuple[str, str]]:
    """The Veo 3.1 modes a job uses, one row each (none for a plain job)."""
    request, rows = job.request, []
    if job.has_last_frame:
        rows.append(("last frame", "yes"))
    if job.reference_count:
        rows.append(("references", f"{job.reference_count} ({request.reference_type or 'asset'})"))
    if request.extends:
        rows.append(("extends", f"video {request.extends.video} of {request.extends.job_id}"))
        rows.append(("result", fmt.extension_result(request)))
    for label, value in (
        ("audio", request.generate_audio),
        ("people", request.person_generation),
        ("enhance", request.enhance_prompt),
    ):
        if value is not None:
            rows.append((label, str(value).lower() if isinstance(value, bool) else value))
    return rows


# -- actions --------------------------------------------------------------------------------


async def cancel(backend: Backend, args: argparse.Namespace) -> int:
    if args.queued or args.all:
        return await _cancel_many(backend, args)
    job = await backend.cancel(await backend.resolve(args.job))
    print(f"cancelled {job.job_id}")
    return 0


async def _cancel_many(backend: Backend, args: argparse.Namespace) -> int:
    lists = await backend.list_jobs(history_limit=0)
    which = "queued" if args.queued else "queued and processing"
    count = len(lists.queued) + (0 if args.queued else len(lists.processing))
    if not count:
        _err().print(f"no {which} jobs to cancel")
        return 0
    _confirm(args, f"cancel {_many(count)} {which} job(s)?")
    done = 0
    # The queue may be listed a page at a time: read it again until nothing is left.
    while True:
        targets = [*([] if args.queued else lists.processing), *lists.queued]
        progressed = False
        for job in targets:
            try:
                await backend.cancel(job.job_id)
            except (Conflict, JobNotFound):
                continue  # it ended or went meanwhile
            print(job.job_id, flush=True)
            done += 1
            progressed = True
        if not progressed:
            break
        lists = await backend.list_jobs(history_limit=0)
        if not lists.queued and (args.queued or not lists.processing):
            break
    _err().print(f"cancelled {done} job(s)")
    return 0


async def retry(backend: Backend, args: argparse.Namespace) -> int:
    job = await backend.retry(await backend.resolve(args.job))
    print(f"queued {job.job_id} again (position {job.queue_position}): {job.retry_effect}")
    return 0


async def delete(backend: Backend, args: argparse.Namespace) -> int:
    if args.finished:
        return await _delete_history(backend, args)
    job_id = await backend.resolve(args.job)
    await backend.delete(job_id)
    print(f"deleted {job_id}")
    return 0


async def _delete_history(backend: Backend, args: argparse.Namespace) -> int:
    page = await backend.list_jobs(history_limit=HISTORY_PAGE)
    if not page.history_total:
        _err().print("the history is empty")
        return 0
    _confirm(args, f"delete {_many(page.history_total)} ended job(s) and all their files?")
    done = 0
    while page.history:
        progressed = False
        for job in page.history:
            try:
                await backend.delete(job.job_id)
            except JobNotFound:
                continue  # deleted meanwhile (auto-delete)
            print(job.job_id, flush=True)
            done += 1
            progressed = True
        if not progressed:
            break
        page = await backend.list_jobs(history_limit=HISTORY_PAGE)
    _err().print(f"deleted {done} job(s)")
    return 0


def _many(count: int) -> str:
    return f"{count:,}"


def _confirm(args: argparse.Namespace, question: str) -> None:
    """Ask on the terminal unless --yes; without a terminal, refuse (nobody can answer)."""
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise VeotuiError(f"{question.rstrip('?')}: this asks first; add --yes to do it without a terminal")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise VeotuiError("nothing was done")


async def download(backend: Backend, args: argparse.Namespace) -> int:
    job_id = await backend.resolve(args.job)
    target = Path(args.output).expanduser()
    if target.exists() and not target.is_dir():
        raise VeotuiError(f"{target} is not a directory; -o takes the directory to save into")
    try:
        if args.video is not None:
            save = backend.view_video if args.keep else backend.download_video
            path = await save(job_id, args.video, target)
        else:
            path = await backend.download_zip(job_id, target, keep=args.keep)
    except OSError as exc:
        raise VeotuiError(f"cannot save into {target}: {exc.strerror or exc}") from None
    print(path)
    if args.keep:
        return 0
    after = (await backend.info()).auto_delete_after_download
    try:
        notice = fmt.auto_delete_notice(await backend.get(job_id), after, utcnow())
    except JobNotFound:  # already gone: the delay was shorter than the download's answer
        notice = f"job {job_id[:8]} was deleted after download; to keep jobs, set auto_delete_after_download = off"
    if notice:
        _err().print(_safe(notice))
    return 0


# -- the queue ------------------------------------------------------------------------------


async def queue(backend: Backend, args: argparse.Namespace) -> int:
    """``veotui queue pause|resume|status``; alone, ``status``."""
    if args.queue_action == "pause":
        state = await backend.pause(args.reason)
    elif args.queue_action == "resume":
        state = await backend.resume()
    else:
        state = await backend.queue()
        if args.json:
            print(json.dumps(state.to_dict(), indent=2))
            return 0
    print(describe_queue(state))
    return 0


def describe_queue(state: QueueState) -> str:
    waiting = f"{state.length} job{'s' if state.length != 1 else ''} queued"
    if state.paused:
        line = f"paused{': ' + printable(state.reason, keep='') if state.reason else ''} ({waiting})"
    else:
        line = f"running ({waiting})"
    spend = f"today ${state.spent_today_usd:,.2f}"
    if state.daily_budget_usd is not None:
        spend += f" of ${state.daily_budget_usd:,.2f}"
    if state.spend_simulated:
        spend += " (simulated: nothing is charged)"
    line += f"; {spend}"
    if state.budget_override:
        line += "; the daily budget is set aside until 00:00 UTC"
    return line


async def move(backend: Backend, args: argparse.Namespace) -> int:
    job_id = await backend.resolve(args.job)
    if isinstance(args.where, int):
        job = await backend.move(job_id, position=args.where)
    else:
        job = await backend.move(job_id, to=args.where)
    print(f"{job.job_id} is now at position {job.queue_position}")
    return 0


async def audit(backend: Backend, args: argparse.Namespace) -> int:
    """The audit log, oldest of the page first so the newest ends at the bottom; ``-f``
    then prints each new entry as it is written."""
    job_id = await backend.resolve(args.job) if args.job else None
    entries = await backend.audit(user=args.user, job_id=job_id, limit=args.limit)
    for entry in reversed(entries):
        _audit_line(entry, args.json)
    last = max((entry.id or 0 for entry in entries), default=0)
    while args.follow:
        await anyio.sleep(1.0)
        fresh = [e for e in await backend.audit(user=args.user, job_id=job_id, limit=200) if (e.id or 0) > last]
        for entry in reversed(fresh):
            _audit_line(entry, args.json)
        last = max((entry.id or 0 for entry in fresh), default=last)
    return 0


def _audit_line(entry: AuditEntry, as_json: bool) -> None:
    if as_json:
        print(json.dumps(entry.to_dict()), flush=True)
        return
    parts = [entry.ts or "", f"{entry.user} ({entry.role})", entry.action]
    if entry.job_id:
        parts.append(entry.job_id)
    if entry.detail:
        parts.append(entry.detail)
    if entry.remote_addr:
        parts.append(f"from {entry.remote_addr}")
    print(printable("  ".join(parts)), flush=True)


# -- hooks ----------------------------------------------------------------------------------


async def hooks(backend: Backend, args: argparse.Namespace) -> int:
    if args.hooks_action == "test":
        results = await backend.test_webhooks()
        if args.json:
            print(json.dumps(results, indent=2))
        elif not results:
            _err().print("the server has no webhooks; add [[webhooks]] to its config file")
        for result in [] if args.json else results:
            print(f"{_hook_line(result)}")
        return 0 if all(result["delivered"] for result in results) else 1
    job_id = await backend.resolve(args.job) if args.job else None
    deliveries = await backend.webhook_deliveries(job_id, limit=args.limit)
    if args.json:
        print(json.dumps({"deliveries": [d.to_dict() for d in deliveries]}, indent=2))
        return 0
    if not deliveries:
        _err().print("no deliveries" + (f" for job {job_id}" if job_id else ""))
    out = _out()
    for delivery in deliveries:
        last = delivery.attempts[-1] if delivery.attempts else None
        tried = f"{len(delivery.attempts)} attempt{'s' if len(delivery.attempts) != 1 else ''}"
        answer = ""
        if last is not None:
            answer = f", last: {last.status if last.status is not None else _safe(last.answer)}"
        next_try = ""
        if delivery.state == "pending" and delivery.next_attempt_at is not None:
            next_try = f", next try {delivery.next_attempt_at:%H:%M:%S} UTC"
        out.print(
            f"{delivery.delivery_id}  {delivery.state:<9}  {delivery.event:<14}  "
            f"job {delivery.job_id or '-'}  {_safe(delivery.url)}  ({tried}{answer}{next_try})"
        )
    return 0


def _hook_line(result: dict[str, Any]) -> str:
    if result["status"] is None:
        outcome = f"no answer: {printable(result['answer'])}"
    else:
        outcome = f"answered {result['status']}" + (" (delivered)" if result["delivered"] else " (not delivered)")
    return f"{printable(result['url'])}: {outcome} in {result['seconds']:.2f} s"


VERBS: dict[str, Verb] = {
    "audit": audit,
    "hooks": hooks,
    "models": models,
    "submit": submit,
    "jobs": jobs,
    "status": status,
    "cancel": cancel,
    "retry": retry,
    "delete": delete,
    "download": download,
    "queue": queue,
    "move": move,
}
