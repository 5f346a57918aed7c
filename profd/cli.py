"""The ``profd`` command."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from profd import logs
from profd.formats import FormatError, decode_json, encode_message, profile_event_id
from profd.formats.outcome import DataCategory
from profd.ingest.envelope import parse_envelope
from profd.ingest.submit import envelope_items, file_item, peek, submit
from profd.pipeline.sentry_topics import metadata_call_tree_message
from profd.pipeline.task import process_profile_task
from profd.services import Services, open_services
from profd.settings import Settings

app = typer.Typer(
    help="profd: a self-hostable profiling backend that speaks Sentry's profile protocol.",
    no_args_is_help=True,
)
projects_app = typer.Typer(help="Organizations' projects and their DSNs.", no_args_is_help=True)
profiles_app = typer.Typer(help="Stored profiles.", no_args_is_help=True)
app.add_typer(projects_app, name="projects")
app.add_typer(profiles_app, name="profiles")

console = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Where profd keeps its data [default: ./profd-data].")
]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
LogFormat = Annotated[
    str | None,
    typer.Option("--log-format", help="'text', or 'json': one object per line, with request ids."),
]


def _services(data_dir: Path | None) -> Services:
    return open_services(Settings.load(data_dir=data_dir))


def _logging(settings: Settings) -> None:
    try:
        logs.configure(settings.log_format, logging.getLevelName(settings.log_level.upper()))
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--log-format") from None


class ProcessResult(msgspec.Struct):
    path: str
    event_id: str | None
    outcome: str
    reason: str | None
    category: str | None


@app.command()
def process(
    paths: Annotated[
        list[Path], typer.Argument(help="Profile JSON files, Sentry envelopes or msgpack bus messages.")
    ],
    data_dir: DataDir = None,
    org_id: Annotated[
        int | None, typer.Option(help="Organization id [default: the default organization].")
    ] = None,
    project_id: Annotated[int | None, typer.Option(help="Project id [default: the default project].")] = None,
    unsampled: Annotated[bool, typer.Option("--unsampled", help="Treat the profiles as unsampled.")] = False,
    as_json: AsJson = False,
) -> None:
    """Run profiles through validation and process_profile_task, and print their outcomes."""
    services = _services(data_dir)
    organization, project = services.default_project()
    org = org_id if org_id is not None else organization.id
    proj = project_id if project_id is not None else project.id
    results: list[ProcessResult] = []
    with Progress(console=err, transient=True, disable=as_json) as progress:
        bar = progress.add_task("processing", total=len(paths))
        for path in paths:
            for result in process_file(services, path, org, proj, sampled=not unsampled):
                results.append(result)
                if as_json:
                    print(msgspec.json.encode(result).decode())
            progress.advance(bar)
    if not as_json:
        table = Table("outcome", "reason", "category", "profiles", title=f"{len(results)} profiles")
        for (outcome, reason, category), count in sorted(
            Counter((r.outcome, r.reason or "", r.category or "") for r in results).items()
        ):
            table.add_row(outcome, reason, category, str(count))
        console.print(table)
    services.close()


def process_file(
    services: Services, path: Path, org_id: int, project_id: int, sampled: bool
) -> list[ProcessResult]:
    """Every profile in the file: a JSON profile, a Sentry envelope or a msgpack bus message."""
    try:
        data = path.read_bytes()
    except OSError as e:
        return [ProcessResult(str(path), None, "invalid", f"unreadable: {e.strerror}", None)]
    if data.lstrip()[:1] not in (b"{", b"["):
        return [run_task(services, str(path), data, sampled)]
    try:
        envelope = parse_envelope(data, services.settings.max_envelope_items) if _is_envelope(data) else None
    except FormatError as e:
        return [ProcessResult(str(path), None, "invalid", e.reason, None)]
    # The envelope endpoint's rules, item by item (less the HTTP ones: keys, sizes, 429).
    items = envelope_items(envelope) if envelope is not None else [file_item(data, sampled)]
    submitted = submit(
        items,
        organization_id=org_id,
        project_id=project_id,
        received=int(time.time()),
        max_size=services.settings.max_profile_size,
    )
    services.outcomes.track_outcomes([outcome for s in submitted for outcome in s.outcomes])
    results = []
    for done in submitted:
        if done.message is None:
            assert done.rejection is not None
            event_id = profile_event_id(peek(done.item.payload))
            category = done.outcomes[0].category.api_name if done.outcomes else None
            results.append(ProcessResult(str(path), event_id, "invalid", done.rejection.reason, category))
        else:
            results.append(
                run_task(services, str(path), encode_message(done.message), sampled and done.item.sampled)
            )
    return results


def _is_envelope(data: bytes) -> bool:
    """An envelope's first line is a complete JSON object with more lines after it."""
    first, _, rest = data.partition(b"\n")
    if not rest.strip():
        return False
    try:
        return isinstance(decode_json(first), dict)
    except FormatError:
        return False


def run_task(services: Services, path: str, message: bytes, sampled: bool) -> ProcessResult:
    run = process_profile_task(message, sampled=sampled, context=services.task_context())
    if not run.outcomes:
        return ProcessResult(path, run.event_id, "skipped", "unsampled profiles are disabled", None)
    duration = (DataCategory.PROFILE_DURATION, DataCategory.PROFILE_DURATION_UI)
    main = next((o for o in run.outcomes if o.category not in duration), run.outcomes[0])
    return ProcessResult(path, run.event_id, main.outcome.name.lower(), main.reason, main.category.api_name)


WEB_UI_TOKEN = "web UI (profd serve)"


def _web_ui_token(services: Services, organization_id: int) -> str:
    """A fresh token per start, shown once in a URL the UI reads and then drops from the
    address bar (as jupyter does): only hashes are kept, so the last one cannot be shown
    again. The previous start's token is revoked so that they do not pile up.  It can only
    read (org:read): the UI writes nothing, and a link in a terminal's scrollback should not
    be able to upload, create projects or mint tokens."""
    for token in services.directory.tokens(organization_id):
        if token.name == WEB_UI_TOKEN and not token.revoked:
            services.directory.revoke_token(organization_id, token.id)
    return services.directory.create_token(organization_id, WEB_UI_TOKEN, scopes=["org:read"])


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on [default: 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [default: 8000].")] = None,
    public_url: Annotated[str | None, typer.Option(help="How SDKs reach this server, for the DSN.")] = None,
    worker_mode: Annotated[
        str,
        typer.Option("--worker", help="Run the pipeline worker as a child 'process', a 'thread', or 'none'."),
    ] = "process",
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=1, help="How many worker processes share the queue (with --worker process)."
        ),
    ] = 1,
    log_format: LogFormat = None,
) -> None:
    """Receive profiles from Sentry SDKs and process them: ingest, and the pipeline worker beside it.

    The worker runs in a child process by default, so that ingest and processing each have a
    core; it stops with the server, finishing the message in hand.  With --workers N, N child
    processes share the queue, each supervised and restarted on its own.
    """
    import os
    import sys

    import uvicorn

    from profd import metrics
    from profd.supervisor import Supervised, WorkerProcess, WorkerProcesses, WorkerThread
    from profd.web.app import create_app
    from profd.web.protocol import LingeringH11Protocol
    from profd.worker import pipeline_worker

    if worker_mode not in ("process", "thread", "none"):
        raise typer.BadParameter("process, thread or none", param_hint="--worker")
    if workers > 1 and worker_mode != "process":
        # Threads of one process share its GIL: more than one would not process faster.
        raise typer.BadParameter("more than one worker needs --worker process", param_hint="--workers")
    settings = Settings.load(
        data_dir=data_dir, host=host, port=port, public_url=public_url, log_format=log_format
    )
    _logging(settings)
    services = open_services(settings)
    organization, project = services.default_project()
    ui_token = _web_ui_token(services, organization.id)
    # The worker's process counts into the same metrics as this one (profd.metrics).
    metrics.share_between_processes(settings.data_dir / "metrics")
    worker: Supervised | None = None
    if worker_mode == "process":
        command = [sys.executable, "-m", "profd", "worker", "--data-dir", str(settings.data_dir)]
        command += ["--log-format", settings.log_format]
        command += ["--parent-pid", str(os.getpid())]
        worker = WorkerProcess(command) if workers == 1 else WorkerProcesses(command, workers)
    elif worker_mode == "thread":
        worker = WorkerThread(lambda: pipeline_worker(services))
    console.print(f"profd is listening on http://{settings.host}:{settings.port}")
    console.print(f"DSN of project [bold]{project.slug}[/bold]: {services.dsn(project)}")
    # soft_wrap: a URL split over two lines cannot be pasted.
    console.print(
        f"Open the UI: {settings.dsn_base_url.rstrip('/')}/#token={ui_token}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    try:
        app_ = create_app(services, worker)
        uvicorn.run(
            app_,
            host=settings.host,
            port=settings.port,
            http=LingeringH11Protocol,
            # uvicorn's loggers go through profd's handler (and its format) like every other.
            log_config=None,
            log_level=settings.log_level,
        )
    finally:
        services.close()


@app.command()
def worker(
    data_dir: DataDir = None,
    parent_pid: Annotated[int | None, typer.Option(help="Stop when this process is gone.")] = None,
    processes: Annotated[
        int, typer.Option("--processes", min=1, help="How many worker processes share the queue.")
    ] = 1,
    log_format: LogFormat = None,
) -> None:
    """Only process what is queued (the pipeline worker without the HTTP server)."""
    import os
    import signal
    import threading

    from profd.worker import pipeline_worker

    settings = Settings.load(data_dir=data_dir, log_format=log_format)
    _logging(settings)
    if processes > 1:
        _worker_processes(settings, processes, parent_pid)
        return
    services = open_services(settings)
    processor = pipeline_worker(services)
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda *_: processor.stop())
    if parent_pid is not None:
        # A server killed with -9 cannot stop its worker; the worker notices it is orphaned.
        def watch_parent() -> None:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            processor.stop()

        threading.Thread(target=watch_parent, daemon=True).start()
    try:
        processor.run()
    finally:
        services.close()


def _worker_processes(settings: Settings, count: int, parent_pid: int | None) -> None:
    """`count` single workers as supervised children of this process, until it is told to
    stop (SIGTERM, SIGINT) or its own parent is gone."""
    import os
    import signal
    import sys
    import threading

    from profd.supervisor import WorkerProcesses

    command = [sys.executable, "-m", "profd", "worker", "--data-dir", str(settings.data_dir)]
    command += ["--log-format", settings.log_format, "--parent-pid", str(os.getpid())]
    group = WorkerProcesses(command, count)
    stopping = threading.Event()
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda *_: stopping.set())
    group.start()
    while not stopping.wait(0.5):
        if parent_pid is not None and os.getppid() != parent_pid:
            break
    group.stop()


retention_app = typer.Typer(help="Deleting profiles past their retention.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def retention_run(data_dir: DataDir = None) -> None:
    """Delete every profile older than its retention (blobs and index rows, and outcomes) now,
    and upload chunks older than a day."""
    services = _services(data_dir)
    console.print(f"{services.profiles.expire()} profiles deleted")
    console.print(f"{services.symbols.collect_garbage()} upload leftovers deleted")


dlq_app = typer.Typer(
    help="Dead letters: messages the worker gave up on because a backend stayed down.", no_args_is_help=True
)
app.add_typer(dlq_app, name="dlq")


@dlq_app.command("list")
def dlq_list(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The dead letters not yet sent back, oldest first, with why they were given up on."""
    from profd.bus.dead_letters import dead_letters

    services = _services(data_dir)
    letters = dead_letters(services.queue)
    if as_json:
        for letter in letters:
            print(msgspec.json.encode(letter).decode())
    else:
        table = Table(
            "partition/offset",
            "dead-lettered",
            "from",
            "attempts",
            "reason",
            title=f"{len(letters)} dead letters",
        )
        for letter in letters:
            table.add_row(
                f"{letter.partition}/{letter.offset}",
                letter.dead_lettered.isoformat(timespec="seconds"),
                letter.source,
                str(letter.attempts),
                letter.reason,
            )
        console.print(table)
    services.close()


@dlq_app.command("retry")
def dlq_retry(data_dir: DataDir = None) -> None:
    """Send every dead letter back to the profiles topic, for the worker to try again."""
    from profd.bus.dead_letters import redrive

    services = _services(data_dir)
    console.print(f"{redrive(services.queue)} dead letters sent back")
    services.close()


tokens_app = typer.Typer(help="Bearer tokens for the API and sentry-cli.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def tokens_create(
    data_dir: DataDir = None,
    org: Annotated[str, typer.Option(help="Organization slug.")] = "default",
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="A scope the token gets, again for more: org:read, project:write, project:releases,"
            " org:admin [default: all of them].",
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="A name to tell the token by in listings.")] = "",
) -> None:
    """Create a token for an organization and print it (it is shown only once).

    Every scope unless --scope says otherwise: whoever runs this holds the data directory,
    which is everything already.  sentry-cli needs project:releases (or project:write)."""
    from profd.store.tenancy import SCOPES, InvalidScope, parse_scopes

    try:
        scopes = parse_scopes(SCOPES if scope is None else scope)
    except InvalidScope as e:
        raise typer.BadParameter(str(e), param_hint="--scope") from None
    services = _services(data_dir)
    services.default_project()
    organization = services.directory.organization_by_slug(org)
    if organization is None:
        raise typer.BadParameter(f"no organization {org!r}", param_hint="--org")
    print(services.directory.create_token(organization.id, name, scopes))


@tokens_app.command("list")
def tokens_list(
    data_dir: DataDir = None,
    org: Annotated[str, typer.Option(help="Organization slug.")] = "default",
    as_json: AsJson = False,
) -> None:
    """List an organization's tokens with their scopes (never their secrets), revoked ones too."""
    services = _services(data_dir)
    services.default_project()
    organization = services.directory.organization_by_slug(org)
    if organization is None:
        raise typer.BadParameter(f"no organization {org!r}", param_hint="--org")
    rows = [
        {
            "id": t.id,
            "name": t.name,
            "scopes": list(t.scopes) if as_json else " ".join(t.scopes),
            "parent_id": t.parent_id,
            "created": t.created if as_json else time.strftime("%Y-%m-%d %H:%M", time.localtime(t.created)),
            "revoked": t.revoked,
        }
        for t in services.directory.tokens(organization.id)
    ]
    _print_rows(rows, as_json, f"tokens of {org}")


@projects_app.command("create")
def projects_create(
    name: str,
    data_dir: DataDir = None,
    org: Annotated[str, typer.Option(help="Organization slug.")] = "default",
) -> None:
    """Create a project and print its DSN."""
    services = _services(data_dir)
    organization = services.directory.organization_by_slug(org)
    if organization is None:
        if org != "default":
            raise typer.BadParameter(f"no organization {org!r}", param_hint="--org")
        organization, _ = services.default_project()
    from profd.store.tenancy import InvalidSlug, SlugTaken

    try:
        project = services.directory.create_project(organization.id, name)
    except (InvalidSlug, SlugTaken) as e:
        raise typer.BadParameter(str(e), param_hint="NAME") from None
    console.print(services.dsn(project))


@projects_app.command("list")
def projects_list(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List projects with their DSNs."""
    services = _services(data_dir)
    services.default_project()
    rows = [
        {
            "id": p.id,
            "organization_id": p.organization_id,
            "slug": p.slug,
            "has_profiles": p.has_profiles,
            "dsn": services.dsn(p),
        }
        for p in services.directory.projects()
    ]
    _print_rows(rows, as_json, "projects")


@profiles_app.command("list")
def profiles_list(
    data_dir: DataDir = None,
    project_id: Annotated[int | None, typer.Option(help="Only this project.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: AsJson = False,
) -> None:
    """List stored profiles, newest first."""
    services = _services(data_dir)
    rows = [
        {
            "profile_id": m.profile_id,
            "project_id": m.project_id,
            "kind": m.kind,
            "platform": m.platform,
            "transaction": m.transaction_name,
            "release": m.release,
            "duration_ms": round(m.duration_ns / 1e6, 1),
        }
        for m in services.reads.profiles(project_id, limit)
    ]
    if as_json or not rows:
        _print_rows(rows, as_json, "profiles")
    else:
        console.print(_profiles_table(rows, console.width))


# Least telling first: the columns that give way when the terminal is too narrow for them
# beside a whole profile id (the id is what `profiles show` takes, so it is never cut).
_PROFILE_COLUMNS_DROPPED_FIRST = ("project_id", "kind", "release", "duration_ms", "platform")
_ENOUGH_OF_A_CELL = 16  # a narrower column still shows this much before folding


def _profiles_table(rows: list[dict[str, Any]], width: int) -> Table:
    id_width = max(len(row["profile_id"]) for row in rows)

    def needs(column: str) -> int:
        cells = (len("" if row[column] is None else str(row[column])) for row in rows)
        cell = id_width if column == "profile_id" else min(max(len(column), *cells), _ENOUGH_OF_A_CELL)
        return cell + 3  # padding on both sides and the border on its left

    columns, hidden = list(rows[0]), []
    for column in _PROFILE_COLUMNS_DROPPED_FIRST:
        if 1 + sum(map(needs, columns)) <= width:
            break
        columns.remove(column)
        hidden.append(column)
    caption = f"too narrow for {', '.join(hidden)} (--json has every field)" if hidden else None
    table = Table(title="profiles", caption=caption)
    for column in columns:
        if column == "profile_id":
            table.add_column(column, no_wrap=True, min_width=id_width)
        else:
            table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
    return table


@profiles_app.command("show")
def profiles_show(profile_id: str, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Show one stored profile: its index row, or with --json the stored profile itself."""
    services = _services(data_dir)
    metadata = services.reads.find_profile(profile_id.replace("-", "").lower())
    if metadata is None:
        err.print(f"no profile {profile_id}")
        raise typer.Exit(1)
    if as_json:
        print(msgspec.json.encode(services.profiles.load(metadata)).decode())
    else:
        _print_rows([msgspec.structs.asdict(metadata)], False, f"profile {metadata.profile_id}")


@app.command()
def functions(
    profile_id: Annotated[str, typer.Option("--profile-id", help="A profile or chunk id.")],
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """A profile's function metrics; with --json, the profiles-call-tree message Sentry would write."""
    services = _services(data_dir)
    metadata = services.reads.find_profile(profile_id.replace("-", "").lower())
    if metadata is None:
        err.print(f"no profile {profile_id}")
        raise typer.Exit(1)
    found = services.reads.functions(metadata.project_id, metadata.profile_id)
    if as_json:
        message = metadata_call_tree_message(metadata, found)
        print(msgspec.json.encode(message).decode())
        return
    rows = [
        {
            "function": f.function,
            "package": f.package,
            "in_app": f.in_app,
            "self_ms": round(f.sum_self_time_ns / 1e6, 2),
            "occurrences": len(f.self_times_ns),
            "samples": f.sample_count,
            "thread": f.thread_id,
            "fingerprint": f.fingerprint,
        }
        for f in found
    ]
    _print_rows(rows, False, f"functions of {metadata.profile_id}")


@app.command()
def outcomes(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Count outcomes by outcome, reason and category."""
    services = _services(data_dir)
    rows = [
        {
            "outcome": c.outcome.name.lower(),
            "reason": c.reason,
            "category": c.category.api_name,
            "times": c.times,
            "quantity": c.quantity,
        }
        for c in services.reads.outcome_counts()
    ]
    _print_rows(rows, as_json, "outcomes")


def _print_rows(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=title)
    for column in rows[0] if rows else ["(none)"]:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


def main() -> None:
    logs.configure()
    app()
