"""The new job form. Each field is checked as it is typed, by the job model's own rules
(``veotui.tui.validators``), and its problem shown beneath it; ``ctrl+s`` submits only when
every field is valid, ``escape`` closes."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar

import anyio
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Collapsible, Footer, Input, Label, OptionList, Select, Static, TextArea

from veotui.backend.base import Backend
from veotui.core import display as fmt
from veotui.core.capabilities import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    DEFAULT_DURATION,
    DEFAULT_MODEL,
    DEFAULT_RESOLUTION,
    DURATIONS,
    MAX_REFERENCES,
    MAX_VIDEOS,
    MODELS,
    PERSON_GENERATION,
    REFERENCE_TYPES,
    RESOLUTIONS,
)
from veotui.core.errors import InvalidRequest, VeotuiError
from veotui.core.job import Job, Status, format_usd
from veotui.core.prices import DEFAULT_TABLE, PriceTable, estimate_cost, price_per_second, wants_audio
from veotui.core.request import JobRequest, ModelRefusal, cautions, check_extension_source, refusals
from veotui.datadir.files import IMAGE_NAME, LAST_FRAME_NAME, reference_name
from veotui.tui.dialogs import ConfirmScreen
from veotui.tui.validators import ImageFile, JobField, image_path


class PathSuggester(Suggester):
    """Completes a file path as it is typed (→ or End accepts): the first entry of the
    folder that starts with what follows the last slash; folders end with a slash."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value.strip():
            return None
        return await anyio.to_thread.run_sync(complete_path, value)


def complete_path(value: str) -> str | None:
    typed = Path(value).expanduser()
    folder, stem = (typed, "") if value.endswith("/") else (typed.parent, typed.name)
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    except OSError:
        return None
    for name in names:
        if name.startswith(stem) and name != stem and not (name.startswith(".") and not stem.startswith(".")):
            return value + name[len(stem) :]
    return None


class ChoiceSelect(Select[Any]):
    """A Select whose choices the selected model may rule out: such a choice stays in the
    list, greyed out and not selectable, with the reason beside it."""

    def __init__(self, options: list[tuple[str, Any]], **kwargs: Any) -> None:
        super().__init__(options, allow_blank=False, **kwargs)
        self.choices = list(options)
        self.reasons: dict[Any, str] = {}

    def rule_out(self, reasons: dict[Any, str]) -> None:
        """Grey out each choice ``reasons`` names, with its reason; offer the others."""
        if reasons == self.reasons or not self.is_mounted:
            return
        self.reasons = reasons
        overlay = self.query_one(OptionList)
        for index, (label, value) in enumerate(self.choices):
            reason = reasons.get(value)
            overlay.replace_option_prompt_at_index(index, f"{label} — {reason}" if reason else label)
            if reason:
                overlay.disable_option_at_index(index)
            else:
                overlay.enable_option_at_index(index)


#: The choices the model rules on: the widget and the job field it sets.
RULED_CHOICES = {
    "#count": "number_of_videos",
    "#aspect": "aspect_ratio",
    "#duration": "duration_seconds",
    "#resolution": "resolution",
    "#model": "model",
    "#ref-type": "reference_type",
}

#: The three-way switches: the model's default (None), on, off.
SWITCH_CHOICES: list[tuple[str, str]] = [("model default", ""), ("on", "on"), ("off", "off")]


def _videos_of(job: Job) -> list[int]:
    """The videos of ``job`` an extension may continue: those it made, or, while it is not
    finished, those it will make."""
    return [v.index for v in job.videos] or list(range(1, job.request.number_of_videos + 1))


class NewJobScreen(ModalScreen[Job | None]):
    DEFAULT_CSS = """
    NewJobScreen {
        align: center middle;
    }
    NewJobScreen #form {
        width: 100;
        max-width: 100%;
        height: 100%;
        max-height: 40;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    NewJobScreen #form-title {
        text-style: bold;
        height: 1;
    }
    NewJobScreen #form-fields {
        height: 1fr;
    }
    NewJobScreen #form-fields Label {
        margin-top: 1;
        color: $text-muted;
    }
    NewJobScreen #prompt {
        height: 5;
    }
    NewJobScreen #form .row {
        height: auto;
    }
    NewJobScreen #form .field {
        width: 1fr;
        height: auto;
        margin-right: 1;
    }
    NewJobScreen #form .field.wide {
        width: 2fr;
    }
    NewJobScreen #form .error {
        color: $error;
        height: auto;
    }
    NewJobScreen #form .invalid {
        border: tall $error;
    }
    NewJobScreen #form-error, NewJobScreen #form-rule {
        height: auto;
    }
    NewJobScreen #form-rule, NewJobScreen #form-caution {
        display: none;
        height: auto;
    }
    NewJobScreen #form-caution {
        color: $warning;
    }
    NewJobScreen #form-status {
        height: auto;
        color: $text-muted;
    }
    NewJobScreen Collapsible {
        padding: 0;
        border: none;
        margin-top: 1;
    }
    NewJobScreen #extends-picture {
        width: 24;
        height: 7;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "Submit", id="form_submit", priority=True),
        Binding("escape", "close", "Close", id="form_close"),
    ]

    def __init__(
        self,
        backend: Backend,
        *,
        extends: Job | None = None,
        prices: Any = None,
        template: Job | None = None,
        memory: dict[str, Any] | None = None,
    ) -> None:
        """``extends``: a completed job whose video this job continues. ``template``: a job
        whose parameters and inputs fill the form (edit and resubmit: a new job; the
        template is left as it is). ``memory``: the choices of the last job submitted from a
        form, which this one starts from and updates when it submits."""
        super().__init__()
        self.memory = memory
        #: The prompt as the form opened with it: escape asks only when it was changed.
        self._initial_prompt = ""
        self.backend = backend
        self.extends = extends
        #: The engine's price table (read from the backend, so a server's overrides count)
        #: and whether the engine only simulates; until read, ``prices`` or the shipped table.
        self.prices: PriceTable = prices if isinstance(prices, PriceTable) else DEFAULT_TABLE
        self.simulated = False
        self.template = template
        #: The rules the fields are checked by: the job model's and the engine's own.
        self.prompt_rule = JobField("prompt")
        self.image_rule = ImageFile()

    def compose(self) -> ComposeResult:
        title = "New job"
        if self.extends is not None:
            title = f"Extend job {fmt.short_id(self.extends.job_id)}"
        if self.template is not None:
            title = f"Edit and resubmit job {fmt.short_id(self.template.job_id)} (as a new job)"
        with Vertical(id="form"):
            yield Static(title, id="form-title")
            # The fields scroll, but the scroller takes no focus of its own: tabbing round
            # the form comes back to the prompt, which is first, never to a list that a
            # space would open, nor to the scroller, where what is typed is lost.
            with VerticalScroll(id="form-fields", can_focus=False):
                yield Label("Prompt")
                yield TextArea(id="prompt", soft_wrap=True, show_line_numbers=False)
                yield Static(id="prompt-error", classes="error")
                if self.extends is not None:
                    with Horizontal(classes="row", id="extends-row"):
                        with Vertical(classes="field"):
                            yield Label("Continue video")
                            yield Select(
                                [(f"video {n}", n) for n in _videos_of(self.extends)],
                                value=_videos_of(self.extends)[0],
                                allow_blank=False,
                                id="extends-video",
                            )
                            yield Static(id="extends-note")
                        yield Vertical(id="extends-picture")
                if self.extends is None:
                    yield Label("Input image (optional): a path to PNG, JPEG, WebP, GIF, AVIF… ≤ 10 MB")
                    yield self._path_input("image", "~/pictures/start-frame.png")
                    yield Static(id="image-error", classes="error")
                with Horizontal(classes="row"):
                    with Vertical(classes="field"):
                        yield Label("Videos")
                        yield ChoiceSelect([(str(n), n) for n in range(1, MAX_VIDEOS + 1)], value=1, id="count")
                    with Vertical(classes="field"):
                        yield Label("Aspect ratio")
                        aspect = self.extends.request.aspect_ratio if self.extends else DEFAULT_ASPECT_RATIO
                        yield ChoiceSelect([(r, r) for r in ASPECT_RATIOS], value=aspect, id="aspect")
                    with Vertical(classes="field"):
                        yield Label("Duration")
                        yield ChoiceSelect([(f"{d} s", d) for d in DURATIONS], value=DEFAULT_DURATION, id="duration")
                    with Vertical(classes="field"):
                        yield Label("Resolution")
                        yield ChoiceSelect([(r, r) for r in RESOLUTIONS], value=DEFAULT_RESOLUTION, id="resolution")
                with Horizontal(classes="row"):
                    with Vertical(classes="field wide"):
                        yield Label("Model")
                        model = self.extends.request.model if self.extends else DEFAULT_MODEL
                        yield ChoiceSelect([(m, m) for m in MODELS], value=model, id="model")
                    with Vertical(classes="field"):
                        yield Label("Seed (optional)")
                        yield Input(id="seed", placeholder="random", validators=[JobField("seed")])
                yield Static(id="seed-error", classes="error")
                with Collapsible(title="Advanced", id="advanced", collapsed=True):
                    yield Label("Negative prompt (optional)")
                    yield Input(id="negative", placeholder="what to avoid", validators=[JobField("negative_prompt")])
                    yield Static(id="negative-error", classes="error")
                    with Horizontal(classes="row"):
                        with Vertical(classes="field"):
                            yield Label("Sound")
                            yield Select(SWITCH_CHOICES, value="", allow_blank=False, id="audio")
                        with Vertical(classes="field"):
                            yield Label("People")
                            yield Select(
                                [("model default", ""), *((p, p) for p in PERSON_GENERATION)],
                                value="",
                                allow_blank=False,
                                id="people",
                            )
                        with Vertical(classes="field"):
                            yield Label("Enhance prompt")
                            yield Select(SWITCH_CHOICES, value="", allow_blank=False, id="enhance")
                    if self.extends is None:
                        yield Label("Last frame (optional; needs the input image)")
                        yield self._path_input("last-frame", "~/pictures/end-frame.png")
                        yield Static(id="last-frame-error", classes="error")
                        yield Label(f"Reference images (optional, up to {MAX_REFERENCES}; not with an input image)")
                        for number in range(1, MAX_REFERENCES + 1):
                            yield self._path_input(f"reference-{number}", f"reference image {number}")
                            yield Static(id=f"reference-{number}-error", classes="error")
                        yield Label("Reference type")
                        yield ChoiceSelect([(t, t) for t in REFERENCE_TYPES], value="asset", id="ref-type")
            yield Static(id="form-status")
            yield Static(id="form-rule", classes="error")
            yield Static(id="form-caution")
            yield Static(id="form-error", classes="error")
        yield Footer()

    def _path_input(self, field: str, placeholder: str) -> Input:
        """A path to an input image: completed as it is typed, checked by the engine's rule."""
        return Input(
            id=field,
            placeholder=placeholder,
            suggester=PathSuggester(),
            validators=[self.image_rule],
            classes="image-path",
        )

    def on_mount(self) -> None:
        self.query_one("#prompt", TextArea).focus()
        if self.template is not None:
            self._fill(self.template)
        elif self.memory and self.extends is None:
            for field, widget in _REMEMBERED.items():
                if field in self.memory:
                    self.query_one(widget, Select).value = self.memory[field]
        self._initial_prompt = self.query_one("#prompt", TextArea).text
        self._update_status()
        self.read_prices()
        if self.extends is not None:
            self.show_last_frame(_videos_of(self.extends)[0])

    def _fill(self, job: Job) -> None:
        """Every field as ``job`` had it; its input images by their path on this machine."""
        request = job.request
        self.query_one("#prompt", TextArea).text = request.prompt
        for widget, value in (
            ("#count", request.number_of_videos),
            ("#aspect", request.aspect_ratio),
            ("#duration", request.duration_seconds),
            ("#resolution", request.resolution),
            ("#model", request.model),
            ("#audio", _switch_choice(request.generate_audio)),
            ("#people", request.person_generation or ""),
            ("#enhance", _switch_choice(request.enhance_prompt)),
        ):
            self.query_one(widget, Select).value = value
        self.query_one("#seed", Input).value = "" if request.seed is None else str(request.seed)
        self.query_one("#negative", Input).value = request.negative_prompt or ""
        if request.negative_prompt or request.generate_audio is not None or request.person_generation:
            self.query_one("#advanced", Collapsible).collapsed = False
        if self.extends is not None:
            if request.extends is not None:
                self.query_one("#extends-video", Select).value = request.extends.video
            return
        inputs = {"image": IMAGE_NAME if job.has_image else None}
        inputs["last-frame"] = LAST_FRAME_NAME if job.has_last_frame else None
        for number in range(1, job.reference_count + 1):
            inputs[f"reference-{number}"] = reference_name(number)
        if request.reference_type:
            self.query_one("#ref-type", Select).value = request.reference_type
        if job.has_last_frame or job.reference_count:
            self.query_one("#advanced", Collapsible).collapsed = False
        self.fill_inputs(job, {field: name for field, name in inputs.items() if name is not None})

    @work(exclusive=True, group="template-inputs")
    async def fill_inputs(self, job: Job, wanted: dict[str, str]) -> None:
        """The template's input images, as files on this machine (fetched in remote mode)."""
        if not wanted:
            return
        try:
            files = await self.backend.input_files(job.job_id, Path(tempfile.gettempdir()) / "veotui-inputs")
        except Exception as exc:  # noqa: BLE001 - VeotuiError or a dropped connection: say it in the form
            files = {}
            self.query_one("#form-error", Static).update(f"Could not read the job's input images: {exc}")
        missing = []
        for field, name in wanted.items():
            if name in files:
                self.query_one(f"#{field}", Input).value = str(files[name])
            else:
                missing.append(field.replace("-", " "))
        if missing:
            self.query_one("#form-error", Static).update(
                f"The {', '.join(missing)} of job {fmt.short_id(job.job_id)} is gone: give it again."
            )

    @on(Select.Changed, "#extends-video")
    def _extends_video_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, int):
            self.show_last_frame(event.value)

    @work(exclusive=True, group="extends-picture")
    async def show_last_frame(self, index: int) -> None:
        """The last frame of the video being continued: where the extension starts."""
        from veotui.tui.pictures import mode_of, picture_cache, picture_class

        assert self.extends is not None
        note = self.query_one("#extends-note", Static)
        holder = self.query_one("#extends-picture", Vertical)
        await holder.remove_children()
        if self.extends.status != Status.COMPLETED:
            note.update(
                f"starts where video {index} ends: waits for job {fmt.short_id(self.extends.job_id)} "
                f"({self.extends.status.value}) to complete"
            )
            return
        widget_class = picture_class(mode_of(self.app))
        if widget_class is None:
            note.update(f"starts where video {index} ends")
            return
        try:
            rows = await self.backend.job_pictures(self.extends.job_id, picture_cache(self.app))
        except Exception as exc:  # noqa: BLE001 - the form works without the picture
            note.update(f"starts where video {index} ends (no picture: {exc})")
            return
        strip = dict(dict(rows).get(f"Video {index}", []))
        if "last" not in strip:
            note.update(f"starts where video {index} ends")
            return
        note.update("starts on this frame →")
        await holder.mount(widget_class(str(strip["last"])))

    @on(Select.Changed)
    @on(Input.Changed)
    def _any_changed(self) -> None:
        self._update_status()

    @work(exclusive=True, group="prices")
    async def read_prices(self) -> None:
        try:
            info = await self.backend.info()
        except Exception:  # noqa: BLE001 - the table in hand stands in
            return
        self.prices, self.simulated = info.prices, info.is_simulator
        self._update_status()

    def _update_status(self) -> None:
        """What the job will cost (from the engine's price table) and, for an extension, how
        long the result is; which choices the model rules out, and why the current ones do
        not go together. Updated as fields change."""
        status = self.query_one("#form-status", Static)
        rule = self.query_one("#form-rule", Static)
        try:
            request = self._request(self.fields())
        except InvalidRequest:  # a field still being typed
            status.update("")
            rule.display = False
            self.query_one("#form-caution", Static).display = False
            return
        self._rule_out_choices()
        problems = self._refusals(request)
        # Shown only when there is something to say: the form keeps its height otherwise.
        rule.update(f"Not accepted: {problems[0]}" if problems else "")
        rule.display = bool(problems)
        said = cautions(request, reference_count=self._inputs()[2])
        caution = self.query_one("#form-caution", Static)
        caution.update("Caution: " + "; ".join(said) if said else "")
        caution.display = bool(said)
        cost, per_second = estimate_cost(request, self.prices), price_per_second(request, self.prices)
        result = ""
        if self.extends is not None:
            result = f"; the result: {fmt.extension_result(request)}"
        if cost is None or per_second is None:
            status.update("Estimated cost: unknown (the price table has no price for this choice)" + result)
            return
        videos = request.number_of_videos
        sound = "with sound" if wants_audio(request) else "silent"
        text = (
            f"Estimated cost: {format_usd(cost)} — {request.duration_seconds} s × {videos} "
            f"video{'s' if videos != 1 else ''} × ${per_second:.2f}/s ({sound}, {request.resolution})"
        )
        status.update(text + ("; simulated, nothing is paid" if self.simulated else "") + result)

    # -- what the model takes -------------------------------------------------------------

    def _request(self, fields: dict[str, Any]) -> JobRequest:
        """The job as chosen so far, its free text aside (what it costs and what the model
        takes do not depend on the prompt, the negative prompt or the seed). An extension
        carries what the engine records of the video it continues: its length (as its job
        asked) and its aspect ratio."""
        request = JobRequest.from_mapping({**fields, "prompt": "x", "negative_prompt": None, "seed": None})
        if self.extends is None or request.extends is None:
            return request
        source = self.extends.request
        return request.continuing(source.video_seconds, source.aspect_ratio)

    def _inputs(self) -> tuple[bool, bool, int]:
        """Whether an input image and a last frame are given, and how many reference images."""
        paths = {field: value.strip() for field, value in self._paths().items()}
        references = sum(1 for n in range(1, MAX_REFERENCES + 1) if paths.get(f"reference-{n}"))
        return bool(paths.get("image")), bool(paths.get("last-frame")), references

    def _refusals(self, request: JobRequest, *, min_references: int = 0) -> list[ModelRefusal]:
        """Every rule ``request`` breaks with this form's inputs (the same rules the engine
        applies at submit), the video an extension continues included; ``min_references``
        counts reference images not given yet."""
        has_image, has_last_frame, references = self._inputs()
        found = refusals(
            request,
            has_image=has_image,
            has_last_frame=has_last_frame,
            reference_count=max(references, min_references),
        )
        if self.extends is not None and request.extends is not None:
            try:
                check_extension_source(
                    request,
                    source_seconds=request.extends.source_seconds,
                    source_name=f"video {request.extends.video} of job {fmt.short_id(self.extends.job_id)}",
                )
            except ModelRefusal as refusal:
                found.append(refusal)
        return found

    def _rule_out_choices(self) -> None:
        """Grey out each choice the model would refuse with the other fields as they are."""
        fields = self.fields()
        current = {(p.field, p.model_short) for p in self._refusals(self._request(fields))}
        for selector, name in RULED_CHOICES.items():
            widgets = self.query(selector).results(ChoiceSelect)
            for widget in widgets:
                reasons = {}
                # A reference type matters once a reference image is given: judge it as if one were.
                references = 1 if name == "reference_type" else 0
                for _label, value in widget.choices:
                    try:
                        problems = self._refusals(self._request({**fields, name: value}), min_references=references)
                    except InvalidRequest:
                        continue
                    if name == "model":
                        # A model is ruled out by what it refuses that the current one takes.
                        worse = [p for p in problems if p.by_model and (p.field, p.model_short) not in current]
                        if worse:
                            reasons[value] = worse[0].model_short
                    else:
                        mine = [p for p in problems if p.field == name]
                        if mine:
                            reasons[value] = mine[0].short
                widget.rule_out(reasons)

    # -- checking as the user types -------------------------------------------------------

    def _show(self, field: str, problem: str | None) -> bool:
        self.query_one(f"#{field}-error", Static).update(problem or "")
        self.query_one(f"#{field}").set_class(problem is not None, "invalid")
        return problem is None

    def _prompt_problem(self) -> str | None:
        result = self.prompt_rule.validate(self.query_one("#prompt", TextArea).text)
        return None if result.is_valid else result.failure_descriptions[0]

    @on(TextArea.Changed, "#prompt")
    def _prompt_changed(self) -> None:
        self._show("prompt", self._prompt_problem())

    @on(Input.Changed, "#seed, #negative, .image-path")
    def _field_changed(self, event: Input.Changed) -> None:
        result = event.validation_result
        problem = result.failure_descriptions[0] if result is not None and not result.is_valid else None
        self._show(event.input.id or "", problem)

    def _paths(self) -> dict[str, str]:
        """The path fields this form has, by id, as typed."""
        if self.extends is not None:
            return {}
        ids = ["image", "last-frame", *(f"reference-{n}" for n in range(1, MAX_REFERENCES + 1))]
        return {field: self.query_one(f"#{field}", Input).value for field in ids}

    def validate(self) -> bool:
        """Check every field; focus the first one that is wrong."""
        checks = [("prompt", self._prompt_problem())]
        for field in (*self._paths(), "seed", "negative"):
            widget = self.query_one(f"#{field}", Input)
            result = widget.validate(widget.value)
            checks.append((field, result.failure_descriptions[0] if result and not result.is_valid else None))
        valid = [self._show(field, problem) for field, problem in checks]
        for (field, _), ok in zip(checks, valid, strict=True):
            if not ok:
                self._reveal(field)
                return False
        return self._model_takes_it()

    def _model_takes_it(self) -> bool:
        """Whether the model takes the choices as they are; if not, focus the choice at fault
        (the reason is shown above the footer)."""
        try:
            problems = self._refusals(self._request(self.fields()))
        except InvalidRequest:
            return True  # the engine says what is wrong
        if not problems:
            return True
        field = problems[0].field
        if field in ("reference_type", "reference_image", "last_frame", "generate_audio"):
            self.query_one("#advanced", Collapsible).collapsed = False
        widget = {name: selector for selector, name in RULED_CHOICES.items()}.get(field)
        for target in self.query(widget).results(ChoiceSelect) if widget else ():
            target.focus()
        return False

    def _reveal(self, field: str) -> None:
        if field not in ("prompt", "image", "seed"):
            self.query_one("#advanced", Collapsible).collapsed = False
        self.query_one(f"#{field}").focus()

    def fields(self) -> dict[str, Any]:
        seed = self.query_one("#seed", Input).value.strip()
        fields: dict[str, Any] = {
            "prompt": self.query_one("#prompt", TextArea).text.strip(),
            "number_of_videos": self.query_one("#count", Select).value,
            "model": self.query_one("#model", Select).value,
            "aspect_ratio": self.query_one("#aspect", Select).value,
            "duration_seconds": self.query_one("#duration", Select).value,
            "resolution": self.query_one("#resolution", Select).value,
            "negative_prompt": self.query_one("#negative", Input).value.strip() or None,
            "seed": seed or None,
        }
        for name, widget in (
            ("generate_audio", "#audio"),
            ("person_generation", "#people"),
            ("enhance_prompt", "#enhance"),
        ):
            value = self.query_one(widget, Select).value
            if isinstance(value, str) and value:
                fields[name] = {"on": True, "off": False}.get(value, value)
        if self.extends is not None:
            fields["extends_job_id"] = self.extends.job_id
            fields["extends_video"] = self.query_one("#extends-video", Select).value
        elif any(self._paths()[f"reference-{n}"].strip() for n in range(1, MAX_REFERENCES + 1)):
            fields["reference_type"] = self.query_one("#ref-type", Select).value
        return fields

    # -- actions --------------------------------------------------------------------------

    def action_close(self) -> None:
        prompt = self.query_one("#prompt", TextArea).text
        if not prompt.strip() or prompt == self._initial_prompt:
            self.dismiss(None)
            return

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss(None)

        self.app.push_screen(
            ConfirmScreen("Discard this job?", "The prompt you typed is not submitted and is lost.", "Discard"),
            answered,
        )

    def action_submit(self) -> None:
        self.query_one("#form-error", Static).update("")
        if self.validate():
            paths = {field: image_path(value) for field, value in self._paths().items()}
            self.submit(self.fields(), paths)

    @work(exclusive=True, group="submit")
    async def submit(self, fields: dict[str, Any], paths: dict[str, Path | None]) -> None:
        async def read(path: Path | None) -> tuple[bytes, str] | None:
            return (await anyio.Path(path).read_bytes(), path.name) if path is not None else None

        try:
            image = await read(paths.get("image"))
            last_frame = await read(paths.get("last-frame"))
            references = [
                upload
                for n in range(1, MAX_REFERENCES + 1)
                if (upload := await read(paths.get(f"reference-{n}"))) is not None
            ]
            job = await self.backend.submit(
                fields,
                image=image[0] if image else None,
                image_name=image[1] if image else None,
                last_frame=last_frame,
                references=references,
            )
        except (VeotuiError, OSError) as exc:
            self.query_one("#form-error", Static).update(f"Not submitted: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - a sentence in the form, never a traceback
            self.query_one("#form-error", Static).update(f"Not submitted: {type(exc).__name__}: {exc}")
            return
        if self.memory is not None:
            self.memory.update({field: fields[field] for field in _REMEMBERED})
        self.dismiss(job)


#: The choices a new form takes over from the last job submitted: field -> its widget.
_REMEMBERED = {
    "model": "#model",
    "number_of_videos": "#count",
    "aspect_ratio": "#aspect",
    "duration_seconds": "#duration",
    "resolution": "#resolution",
}


def _switch_choice(value: bool | None) -> str:
    """A three-way switch as its Select value: on, off, or blank for the model's default."""
    return "" if value is None else ("on" if value else "off")
