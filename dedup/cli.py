"""The command line: options -> Params -> pipeline / store -> report. The only click user.

Heavy modules (the pipeline with datasketch, numpy and scipy; sqlite-utils; rich) are imported
inside the commands that use them, so that `dedup --help` and a command's help start at once
(~0.1 s instead of ~0.5 s; tests/test_cli_views.py checks what `--help` imports)."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dedup import __version__
from dedup.errors import DedupError, Interrupted, LockedError
from dedup.models import FILE_TIMEOUT_S, MAX_FILE_SIZE, Params, ScanOptions

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from dedup.store import Store

log = logging.getLogger("dedup.cli")


def safe(value: object, width: int | None = None) -> Text:
    """report.safe, imported when first used (rich is not needed for --help)."""
    from dedup.report import safe as safe_text

    return safe_text(value, width)


DB_OPTION = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default="dedup.db",
    show_default=True,
    envvar="DEDUP_DB",
    show_envvar=True,
    help="SQLite database holding documents, clusters and runs.",
)
EXPORT_FIELDS = [
    "path", "cluster", "original", "contains", "role", "document_id", "similarity", "parent_id", "confidence",
    "site", "url", "title", "published_at",
]  # fmt: skip

# The cron contract (README, "Exit codes"): 0 done, 1 error, 2 usage (click's own), 75 another scan
# holds the database (EX_TEMPFAIL: try again later), 128 + signal when interrupted.
EXIT_ERROR = 1
EXIT_LOCKED = 75


class LockedExit(click.ClickException):
    exit_code = EXIT_LOCKED


class UsageExit(click.ClickException):
    """A usage error told in one line (no usage text): exit 2, as click's own."""

    exit_code = 2


def _console() -> Console:
    from rich.console import Console

    # Piped into a file or a pager, rich would assume 80 columns and cut every title short; a
    # COLUMNS the user set is honoured either way (rich reads it).
    return Console(highlight=False, width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)


def _fail(exc: DedupError) -> click.ClickException:
    return click.ClickException(str(exc))


@contextmanager
def _errors_in_one_line(db: Path) -> Iterator[None]:
    """Every error a user can meet, as one line and exit 1: no traceback, whatever failed."""
    try:
        yield
    except LockedError as exc:
        raise LockedExit(str(exc)) from None
    except DedupError as exc:
        raise _fail(exc) from None
    except sqlite3.Error as exc:
        raise click.ClickException(f"database {db}: {exc}") from None
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise click.ClickException(f"{exc.strerror or exc}{where}") from None


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise Interrupted in this process, once: a second signal during the
    clean-up (workers stopped, run marked interrupted) is ignored so the clean-up completes."""

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise Interrupted(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
# The version with where it was imported from: a benchmark's command can run another checkout's
# dedup (PYTHONPATH), and `python -m dedup` started in a checkout imports that one first.
@click.version_option(
    __version__,
    prog_name="dedup",
    message=f"%(prog)s, version %(version)s (from {Path(__file__).resolve().parent}, Python {sys.version.split()[0]})",
)
@click.option("-v", "--verbose", count=True, help="Log more (-v: info, -vv: debug) to stderr.")
def cli(verbose: int) -> None:
    """Find the copies of the same bulletin in a crawl and the probable original source.

    \b
    Examples:
        dedup scan /srv/crawl --db crawl.db   # read, cluster, pick originals
        dedup clusters --new                  # what the last scan found
        dedup show 12                         # one cluster, its original, why
        dedup doc www.qcnews.cn/2023/1.html   # one document's story
        dedup query page.html                 # the stored stories a page copies

    `--db` defaults to $DEDUP_DB, then dedup.db. `dedup COMMAND --help` says more.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    _log_to_stderr(level)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes: a progress bar on the terminal
    redirects it to print above the bar, a test runner to capture it."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _log_to_stderr(level: int) -> None:
    """The library's loggers (`dedup.*`) to stderr at `level`; only the CLI configures logging."""
    logger = logging.getLogger("dedup")
    logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())


class _StageLog:
    """The other half of the progress callback: when each stage starts and ends, with its rate,
    to the log (-v); where it is, at most once a second (-vv)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()  # the scan's start: stage times are given from it
        self.started: dict[str, float] = {}
        self.ended: set[str] = set()
        self.last_tick = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if stage not in self.started:
            self.started[stage] = now
            log.info("%s: started at +%.2f s%s", stage, now - self.t0, f" ({total:,} to do)" if total > 1 else "")
        if total and done >= total and stage not in self.ended:
            self.ended.add(stage)
            secs = now - self.started[stage]
            rate = f", {total / secs:,.0f}/s" if total > 1 and secs > 0 else ""
            log.info("%s: done at +%.2f s%s", stage, now - self.t0, rate)
        elif now - self.last_tick >= 1.0 and log.isEnabledFor(logging.DEBUG):
            self.last_tick = now
            log.debug("%s: %s of %s at +%.2f s", stage, f"{done:,}", f"{total:,}" if total > 1 else "?", now - self.t0)


STAGE_LABELS = {"read": "reading files", "sign": "signing texts", "cluster": "clustering"}


@contextmanager
def _progress_bar(crawl_dir: Path, stage_log: _StageLog | None) -> Iterator:
    """A progress bar on stderr from the first moment of a scan: a spinner with the elapsed time
    for the whole run, and a bar per stage with its count, rate and time left; a stage whose size
    is unknown (clustering reports only its start and end) spins, with its elapsed time."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class Counts(ProgressColumn):
        """'1,234/5,000 310/s 0:04 left' for a stage of known size; nothing otherwise."""

        def render(self, task) -> Text:
            if not task.total or task.fields.get("unknown"):
                return Text("")
            out = f"{int(task.completed):,}/{int(task.total):,}"
            speed = task.finished_speed or task.speed
            if speed:
                out += f" {speed:,.0f}/s"
                if not task.finished and task.time_remaining is not None:
                    left = int(task.time_remaining)
                    out += f" {left // 60}:{left % 60:02d} left"
            return Text(out, style="progress.download")

    with Progress(
        SpinnerColumn(finished_text="✓"),
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        Counts(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        overall = bar.add_task(f"dedup scan {safe(crawl_dir).plain}", total=None, unknown=True)
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage_log:
                stage_log(stage, done, total)
            # Clustering says (0, 1) at its start and (1, 1) at its end: it spins until then.
            unknown = total <= 1
            label = STAGE_LABELS.get(stage, stage)
            if stage not in tasks:
                tasks[stage] = bar.add_task(label, total=None if unknown and not done else total, unknown=unknown)
            elif unknown and done < total:
                bar.update(tasks[stage], total=None)
            else:
                bar.update(tasks[stage], completed=done, total=total)
            bar.update(overall, description=f"dedup scan: {label}")

        yield progress
        bar.update(overall, total=1, completed=1)


@cli.command(
    epilog="""\b
Examples:
    dedup scan /srv/crawl --db crawl.db    # a progress bar, then a summary
    dedup -v scan /srv/crawl               # and stage timings on stderr
    dedup scan /srv/crawl -q --wait 600    # cron: errors only, waits its turn
    dedup scan /srv/crawl --json | jq .stage_seconds
    dedup scan /srv/crawl --engine ray                         # on a Ray started here
    dedup scan /srv/crawl --engine ray --address 10.0.0.5:6379 # on a Ray cluster
"""
)
@click.argument("crawl_dir", type=click.Path(file_okay=False, path_type=Path))
@DB_OPTION
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 64), default=None,
    help="Worker processes (default: CPUs, at most 4); with --engine ray, Ray tasks at once (default: the cluster's "
         "CPUs).",
)  # fmt: skip
@click.option("--boilerplate", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Boilerplate pattern file to use instead of the bundled dedup/data/boilerplate.txt.")  # fmt: skip
@click.option("--sources", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Extra sources file (TOML, like dedup/data/sources.toml) added to the bundled one.")  # fmt: skip
@click.option("--shingle-size", type=click.IntRange(1, 10), default=Params.shingle_size, show_default=True,
              help="Words per shingle.")  # fmt: skip
@click.option("--threshold", type=click.FloatRange(0.05, 1.0), default=Params.jaccard_threshold, show_default=True,
              help="Jaccard similarity at or above which a verified pair is a copy.")  # fmt: skip
@click.option("--follow-symlinks", is_flag=True, help="Follow symbolic links that lead outside CRAWL_DIR.")
@click.option("--max-file-size", type=click.IntRange(1), default=MAX_FILE_SIZE // 2**20, show_default=True,
              metavar="MB", help="Skip files larger than this many MiB, unread.")  # fmt: skip
@click.option("--file-timeout", type=click.FloatRange(1), default=FILE_TIMEOUT_S, show_default=True,
              metavar="SECONDS", help="Skip a file whose reading takes longer than this.")  # fmt: skip
@click.option("--allow-mass-removal", is_flag=True,
              help="Let this scan mark more than half of the stored files gone (refused otherwise).")  # fmt: skip
@click.option("--wait", type=click.FloatRange(0), default=0, metavar="SECONDS",
              help="Wait this long for another scan of this database to finish (else exit 75 at once).")  # fmt: skip
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where reading, signing, the candidate search and verification run: worker processes "
                   "here, or Ray tasks (pip install 'crawl-dedup-zh[ray]'). The database is written here "
                   "either way.")  # fmt: skip
@click.option("--address", default=None, metavar="ADDR",
              help="The Ray cluster to join (host:port of its head, or 'auto'); without it --engine ray starts "
                   "a Ray here with --jobs CPUs.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON (for cron and scripts).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def scan(crawl_dir, db, jobs, boilerplate, sources, shingle_size, threshold, follow_symlinks, max_file_size,
         file_timeout, allow_mass_removal, wait, engine, address, as_json, quiet) -> None:  # fmt: skip
    """Scan CRAWL_DIR: read new and changed pages, cluster copies, pick originals, store them."""
    from dedup.pipeline import scan as run_scan  # here: the other commands need none of its imports (~1.5 s)

    if not crawl_dir.is_dir():
        raise click.UsageError(f"CRAWL_DIR {crawl_dir} is not a directory", click.get_current_context())
    try:
        params = Params(shingle_size=shingle_size, jaccard_threshold=threshold)
    except DedupError as exc:
        raise click.UsageError(str(exc)) from None
    if address and engine != "ray":
        raise click.UsageError("--address names a Ray cluster: it needs --engine ray")
    if engine != "local":
        from dedup.engine import EngineUnavailable, check_engine

        try:
            check_engine(engine)
        except EngineUnavailable as exc:
            raise UsageExit(str(exc)) from None
    options = ScanOptions(jobs=jobs, follow_symlinks=follow_symlinks, max_file_size=max_file_size * 2**20,
                          file_timeout=file_timeout, allow_mass_removal=allow_mass_removal, wait=wait,
                          engine=engine, address=address)  # fmt: skip
    show_bar = sys.stderr.isatty() and not quiet and not as_json
    stage_log = _StageLog() if log.isEnabledFor(logging.INFO) else None
    try:
        with _stop_on_signals(), _errors_in_one_line(db):
            if show_bar:
                with _progress_bar(crawl_dir, stage_log) as progress:
                    summary = run_scan(crawl_dir, db, params, progress, boilerplate=boilerplate, sources=sources,
                                       options=options)  # fmt: skip
            else:
                summary = run_scan(crawl_dir, db, params, stage_log, boilerplate=boilerplate, sources=sources,
                                   options=options)  # fmt: skip
    except Interrupted as exc:
        name = signal.Signals(exc.signum).name
        click.echo(f"dedup: interrupted by {name}; the run is marked interrupted, the next scan finishes it", err=True)
        sys.exit(128 + exc.signum)
    for stage, secs in summary.stage_seconds.items():
        log.info("stage %s: %.2f s", stage, secs)
    log.info("scan: %.2f s in all", summary.seconds)
    _report_scan(summary, db, as_json, quiet)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _report_scan(summary, db: Path, as_json: bool, quiet: bool) -> None:
    for sk in summary.skipped_examples:
        click.echo(f"skipped {safe(sk.path).plain}: {safe(sk.reason).plain}", err=True)
    more = summary.skipped_new - len(summary.skipped_examples)
    if more > 0:
        click.echo(
            f"skipped {more} more files or records in this run: `dedup skipped --db {db}` lists them all", err=True
        )
    if as_json:
        click.echo(json.dumps(summary.to_dict(), ensure_ascii=False))
    elif quiet:
        pass
    elif sys.stdout.isatty():
        from dedup.report import print_summary

        print_summary(_console(), summary, str(db))  # rich, imported for this only (~25 ms)
    else:  # cron, a pipe, a log file: notes, then one line
        for note in summary.notes:
            click.echo(f"dedup: {note}")
        docs, clusters = _plural(summary.documents, "document"), _plural(summary.clusters, "cluster")
        click.echo(
            f"dedup: {docs} ({_plural(summary.files_read, 'file')} read, {summary.files_unchanged} "
            f"unchanged, {summary.files_gone} gone), {clusters} ({summary.clusters_new} new, "
            f"{summary.clusters_grown} grown, {summary.clusters_merged} merged), {summary.compilations} compilation "
            f"page{'' if summary.compilations == 1 else 's'}, "
            f"{summary.skipped} skipped, {summary.seconds:.1f} s"
        )


@contextmanager
def _reading(db: Path) -> Iterator[Store]:
    """The database opened read-only (these commands never migrate, stamp or write it), closed
    after; any error, a damaged table included, is one line."""
    from dedup.store import Store

    with _errors_in_one_line(db):
        store = Store(db, readonly=True)
        try:
            yield store
        finally:
            store.close()


def output_options(what: str):
    """--json (one JSON array) and --nl (one JSON object a line): the same on every command that
    lists things."""

    def decorate(f):
        f = click.option("--nl", "as_nl", is_flag=True, help=f"Print {what} as JSON lines, one object a line.")(f)
        return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as one JSON array.")(f)

    return decorate


def _output_format(as_json: bool, as_nl: bool) -> str | None:
    if as_json and as_nl:
        raise click.UsageError("--json prints one array, --nl one object a line: choose one")
    return "json" if as_json else "nl" if as_nl else None


def _emit_json(rows: list[dict], fmt: str) -> None:
    """rows as one JSON array (an element a line) or as JSON lines."""
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    if fmt == "nl":
        for line in lines:
            click.echo(line)
    else:
        click.echo("[" + ",\n ".join(lines) + "]" if lines else "[]")


def _print_rows(rows: list[dict], fmt: str | None, table, as_record=dict, **table_args) -> None:
    """Rows as JSON (`as_record` makes each a plain record), or as a rich table."""
    if fmt:
        _emit_json([as_record(r) for r in rows], fmt)
    else:
        table(_console(), rows, **table_args)


def _date_bound(ctx, param, value: str | None) -> str | None:
    """--since / --until: a date (2023-03-10) or a time (2023-03-10 08:00) as a bound on stored
    ISO times: --since inclusive; --until inclusive of the day or minute given (the bound returned
    is the next one, exclusive)."""
    if value is None:
        return None
    from datetime import datetime, timedelta

    text = value.strip().replace("T", " ")
    for fmt, step in (("%Y-%m-%d", timedelta(days=1)), ("%Y-%m-%d %H:%M", timedelta(minutes=1))):
        try:
            t = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if param.name == "until":
            t += step
        return t.strftime("%Y-%m-%d" if fmt == "%Y-%m-%d" else "%Y-%m-%dT%H:%M")
    raise click.BadParameter(f"{value!r} is not a date (2023-03-10) or a time (2023-03-10 08:00)")


@cli.command(
    epilog="""\b
Examples:
    dedup clusters -n 20              # the 20 largest, and how many in all
    dedup clusters --site qcnews.cn   # a member on it (host, domain or name)
    dedup clusters --site 青川日报 --since 2023-03-01 --until 2023-03-31
    dedup clusters --new              # made or changed by the last scan
    dedup clusters --min-size 5 --json | jq '.[].id'
"""
)
@DB_OPTION
@click.option("--limit", "-n", type=click.IntRange(1), default=None, help="Show only the largest N clusters.")
@click.option("--site", default=None, help="Only clusters with a member on this site: a host, a domain or a name.")
@click.option("--since", callback=_date_bound, metavar="DATE", help="Only stories first published on or after DATE.")
@click.option("--until", callback=_date_bound, metavar="DATE", help="Only stories first published on or before DATE.")
@click.option(
    "--min-size", type=click.IntRange(2), default=None, metavar="N", help="Only clusters of N documents or more."
)
@click.option(
    "--new", "new", is_flag=True, help="Only clusters the last scan made or changed (new, grown, merged ...)."
)
@output_options("the clusters")
def clusters(db, limit, site, since, until, min_size, new, as_json, as_nl) -> None:
    """List clusters, largest first: size, original (site and name), title, first time, confidence, sites."""
    fmt = _output_format(as_json, as_nl)
    where = []
    with _reading(db) as store:
        hosts = None
        if site is not None:
            hosts = store.sites_matching(site)
            if not hosts:
                raise click.ClickException(
                    f"no site of the crawl is called {safe(site).plain!r} (a host, a domain or a name)"
                )
            where.append(f"on {safe(site).plain}")
        run_id = None
        if new:
            run_id = store.last_run_id() or 0
            where.append(f"new or changed in run {run_id}")
        if since or until:
            where.append(f"first published {_range_words(since, until)}")
        if min_size:
            where.append(f"of {min_size}+ documents")
        rows, total = store.cluster_page(
            limit, sites=hosts, since=since, until=until, min_size=min_size, changed_in_run=run_id
        )
    _print_rows(rows, fmt, _print_clusters, total=total, where=", ".join(where))


def _print_clusters(console: Console, rows: list[dict], **args) -> None:
    from dedup.report import print_clusters

    print_clusters(console, rows, **args)


def _range_words(since: str | None, until: str | None) -> str:
    """The dates the user gave, back from their bounds (until is exclusive there)."""
    from datetime import datetime, timedelta

    end = None
    if until:
        fmt = "%Y-%m-%d" if len(until) == 10 else "%Y-%m-%dT%H:%M"
        step = timedelta(days=1) if len(until) == 10 else timedelta(minutes=1)
        end = (datetime.strptime(until, fmt) - step).strftime(fmt).replace("T", " ")
    start = since.replace("T", " ") if since else None
    if start and end:
        return f"{start} to {end}"
    return f"since {start}" if start else f"until {end}"


@cli.command(
    epilog="""\b
Examples:
    dedup show 12                     # fits the terminal, 80 columns or more
    dedup show 12 --json | jq .reasons
"""
)
@click.argument("cluster_id", type=int)
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the cluster as one JSON object.")
def show(cluster_id, db, as_json) -> None:
    """Show one cluster: the original and why, members by time, evidence, propagation, history."""
    with _reading(db) as store:
        c = store.cluster(cluster_id)
        c["history"] = store.history(cluster_id)
    if as_json:
        click.echo(json.dumps(c, ensure_ascii=False, indent=1))
    else:
        from dedup.report import print_cluster, print_history

        console = _console()
        print_cluster(console, c)
        print_history(console, c["history"], cluster_id)


@cli.command(
    epilog="""\b
Examples:
    dedup export > documents.jsonl
    dedup export --format csv -o docs.csv   # with a BOM: Excel reads Chinese
    dedup export | jq -c 'select(.role == "original")'
"""
)
@DB_OPTION
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True,
              help="jsonl: one object per document (the scorer's format); csv: the same as columns.")  # fmt: skip
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (complete or not at all) instead of standard output.")  # fmt: skip
def export(db, fmt, output) -> None:
    """Export one row per document: path, cluster, original, contains, role and metadata."""
    with _reading(db) as store:
        _warn_if_unfinished(store)
        if output is None:
            _write_rows(sys.stdout, store.export_rows(), fmt)
            return
        # Written beside the target and renamed over it at the end: a failed export (disk full,
        # an error) leaves the previous file, never half of a new one.
        tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
        # A CSV file starts with a BOM: Excel (on a Chinese Windows above all) reads UTF-8 then.
        encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
        try:
            with tmp.open("w", encoding=encoding, newline="") as out:
                _write_rows(out, store.export_rows(), fmt)
            os.replace(tmp, output)
        finally:
            tmp.unlink(missing_ok=True)


def _write_rows(out, rows, fmt: str) -> None:
    if fmt == "jsonl":
        for r in rows:
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
    else:
        w = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow(
                {
                    **r,
                    "original": "true" if r["original"] else "false",  # as in the JSON lines, not Python's True
                    "contains": " ".join(str(c) for c in r["contains"]),
                }
            )


def _warn_if_unfinished(store: Store) -> None:
    """An export after an interrupted scan is correct but not complete: say what is missing."""
    pending = store.pending_count()
    last = store.last_run()
    if last and last["status"] != "done":
        click.echo(f"dedup: warning: the last scan (run {last['id']}) ended {last['status']}", err=True)
    if pending:
        click.echo(
            f"dedup: warning: {pending:,} documents are read but not yet clustered (role 'pending'); "
            "run `dedup scan` to finish",
            err=True,
        )


@cli.command(
    epilog="""\b
Examples:
    dedup skipped                     # PATH: REASON, one a line (grep-able)
    dedup skipped --json | jq length
"""
)
@DB_OPTION
@output_options("the skipped files and records")
def skipped(db, as_json, as_nl) -> None:
    """List the files and records that could not be read, with the reason."""
    fmt = _output_format(as_json, as_nl)
    with _reading(db) as store:
        rows = store.skipped_rows()
    if fmt:
        _emit_json(rows, fmt)
    elif not rows:
        click.echo("dedup: nothing skipped: every file and record of the crawl could be read", err=True)
    for r in rows if not fmt else ():  # one line each, never wrapped: grep-able
        click.echo(f"{safe(r['path']).plain}: {safe(r['reason']).plain}")


@cli.command(
    epilog="""\b
Examples:
    dedup boilerplate                 # SITE PAGES SHARE LINE, tab-separated
    dedup boilerplate --site www.sohu.com --json
"""
)
@DB_OPTION
@click.option("--site", default=None, help="Only this site (host name).")
@output_options("the learned lines")
def boilerplate(db, site, as_json, as_nl) -> None:
    """List the boilerplate lines learned from the crawl, per site, with how many pages carry them."""
    fmt = _output_format(as_json, as_nl)
    with _reading(db) as store:
        rows = store.learned_rows(site)
    if fmt:
        _emit_json(rows, fmt)
    elif not rows:
        where = f" for {safe(site).plain}" if site else ""
        click.echo(
            f"dedup: no boilerplate learned{where}: a line is learned when many pages of one site carry it", err=True
        )
    for r in rows if not fmt else ():  # tab-separated: site, pages, share of the site's pages, line
        click.echo("\t".join([safe(r["site"]).plain, str(r["n_docs"]), f"{r['share']:.0%}", safe(r["line"]).plain]))


@cli.command(
    epilog="""\b
Examples:
    dedup runs -n 5
    dedup runs --nl | head -1 | jq .status   # how the last scan ended
"""
)
@DB_OPTION
@click.option("--limit", "-n", type=click.IntRange(1), default=20, show_default=True, help="The newest N runs.")
@output_options("the runs")
def runs(db, limit, as_json, as_nl) -> None:
    """The run ledger: start, end, status, files new/changed/gone/skipped, cluster changes."""
    from dedup.report import print_runs, run_row

    fmt = _output_format(as_json, as_nl)
    with _reading(db) as store:
        rows, total = store.runs(limit), store.run_count()
    _print_rows(rows, fmt, print_runs, run_row, total=total)


@cli.command(
    epilog="""\b
Examples:
    dedup doc 10                        # by id (`show`, `export` give it)
    dedup doc www.qcnews.cn/2023/0312/1000234567.html   # its crawl path
    dedup doc /srv/crawl/www.qcnews.cn/2023/0312/1000234567.html
    dedup doc 1000234567.html           # the end of a path, if only one
    dedup doc 'feeds/crawl-20230315.jsonl#0' --json   # a feed's record
"""
)
@click.argument("ref", metavar="PATH|ID")
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the document's story as one JSON object.")
def doc(ref, db, as_json) -> None:
    """One document's story: its cluster and role, the original and why, the page it was likely
    copied from and the pages that copied it, its verified copies with their similarity, and the
    evidence weighed for it; its site with the site's Chinese name."""
    with _reading(db) as store:
        found = store.find_documents(ref, store.crawl_roots())
        if not found:
            raise click.ClickException(
                f"no document {safe(ref).plain!r}: give an id, or a path as `dedup export` lists them"
            )
        if len(found) > 1:
            listed = ", ".join(f"{d['id']} {safe(d['path']).plain}" for d in found[:8])
            more = ", …" if len(found) > 8 else ""
            raise click.ClickException(
                f"{safe(ref).plain!r} names {len(found)}{'+' if len(found) > 20 else ''} documents "
                f"({listed}{more}): give one id or path"
            )
        story = store.document_story(found[0]["id"])
    if as_json:
        click.echo(json.dumps(story, ensure_ascii=False, indent=1))
        return
    from dedup.report import print_doc

    print_doc(_console(), story)


@cli.command(
    epilog="""\b
Examples:
    dedup query page.html              # .html .txt .json .jsonl .warc .gz
    dedup query --text '青川市林业局今天启动2023年春季义务植树活动……'
    xclip -o | dedup query --text - --json    # from standard input
Nothing is stored: the database and its index are only read.
"""
)
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--text", default=None, metavar="TEXT", help="Ask about this text instead of a FILE ('-': standard input)."
)
@click.option("--title", default="", help="The text's title (with --text), shown with the results.")
@DB_OPTION
@click.option("--boilerplate", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The boilerplate pattern file the database was scanned with, if not the bundled one.")  # fmt: skip
@output_options("the matches")
def query(file, text, title, db, boilerplate, as_json, as_nl) -> None:
    """Which stored clusters a text copies, most similar first, without storing it: the text is
    extracted, normalized, shingled and signed as a scan would, and matched against the stored
    signatures (with the candidate index, read-only)."""
    fmt = _output_format(as_json, as_nl)
    if (file is None) == (text is None):
        raise click.UsageError("give a FILE or --text TEXT (one of them)")
    if text == "-":
        text = sys.stdin.read()
    from dedup.query import as_record, query_file, query_text

    with _reading(db) as store:
        results = query_file(store, file, boilerplate) if file else [query_text(store, text, title, boilerplate)]
    if fmt:
        for r in results:
            if r.note:
                click.echo(f"dedup: {safe(r.query).plain}: {safe(r.note).plain}", err=True)
        _emit_json([rec for r in results for rec in as_record(r)], fmt)
        return
    from dataclasses import asdict

    from dedup.report import print_query

    print_query(_console(), [asdict(r) for r in results])


# ---------------------------------------------------------------- report --html (issue 10)


@cli.command()
@click.option("--html", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write the report into (made if missing): index.html and c/<id>.html.")  # fmt: skip
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
              help="Language of the report's labels and reasons.")  # fmt: skip
@DB_OPTION
def report(out_dir, lang, db) -> None:
    """Write a static HTML report: an index of clusters and a page per cluster (works offline).

    \b
    Example:
        dedup report --html report/ --db crawl.db && xdg-open report/index.html
    """
    from dedup.html_report import write_html_report  # here: the other commands need none of it

    with _reading(db) as store:
        stats = write_html_report(store, out_dir, lang)
    click.echo(
        f"dedup: report of {stats.clusters:,} clusters written to {safe(str(out_dir / 'index.html')).plain} "
        f"({stats.files:,} files, {stats.bytes / 2**20:.1f} MiB, {stats.seconds:.1f} s)"
    )


# ---------------------------------------------------------------- datasette (issue 10)


@cli.command(
    "datasette",
    epilog="""\b
Examples:
    dedup datasette --db crawl.db        # then open http://127.0.0.1:8001/crawl
    dedup datasette --db crawl.db -p 9000 --host 0.0.0.0
    dedup datasette --db crawl.db --index-text --index-only   # make the texts searchable, once
    datasette dedup.db -m "$(dedup datasette --metadata-path)"   # the same, with plain Datasette
    dedup datasette --db crawl.db --print-metadata > crawl.json && datasette crawl.db -m crawl.json
Needs the extra: pip install 'crawl-dedup-zh[datasette]'.
""",
)
@DB_OPTION
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=8001, show_default=True,
              help="Port to serve on.")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; Datasette has no login).")  # fmt: skip
@click.option("--metadata-path", "show_path", is_flag=True,
              help="Print the path of the shipped metadata file (keyed for dedup.db) and exit.")  # fmt: skip
@click.option("--print-metadata", "print_meta", is_flag=True,
              help="Print the metadata as JSON keyed for --db (for `datasette DB -m FILE`) and exit.")  # fmt: skip
@click.option("--index-text", is_flag=True,
              help="First index the pages' texts for search, once (titles always are); every later scan keeps it "
                   "up to date, at ~0.7 ms of CPU per new or changed page, and the database grows ~40 %.")  # fmt: skip
@click.option("--index-only", is_flag=True,
              help="With --index-text: index the texts and exit without serving (for cron).")  # fmt: skip
def datasette_command(db, port, host, show_path, print_meta, index_text, index_only) -> None:
    """Browse the database in Datasette, read-only: tables and columns described, canned queries
    (largest clusters, reposts per site, originals per publisher, new clusters, where a title was
    copied) and full-text search of the pages in Chinese.

    Titles are always indexed; texts are searched by reading them all until `--index-text` indexes
    them (a write, under the scan lock: it waits for no scan and exits 75 if one is running)."""
    from dedup import browse  # here: only this command needs it

    if index_only and not index_text:
        raise click.UsageError("--index-only needs --index-text")
    if index_text and (show_path or print_meta):
        raise click.UsageError("--index-text cannot be combined with --metadata-path or --print-metadata")
    with _errors_in_one_line(db):
        if index_text:
            done = browse.index_texts(db)
            if done.already:
                click.echo(f"dedup: texts already searchable ({done.documents:,} documents)")
            else:
                click.echo(f"dedup: texts of {done.documents:,} documents indexed for search in {done.seconds:.1f} s")
            if index_only:
                return
        if show_path:
            click.echo(str(browse.metadata_path()))
            return
        if print_meta:
            click.echo(json.dumps(browse.load_metadata(browse.database_name(db)), ensure_ascii=False, indent=2))
            return
        browse.serve(db, host, port)  # until Ctrl-C; Datasette lists the database at http://HOST:PORT/


def main() -> None:
    cli(prog_name="dedup")


if __name__ == "__main__":
    main()
