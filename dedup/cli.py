"""The command line: options -> Params -> pipeline / store -> report. The only click user."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dedup import __version__
from dedup.errors import DedupError, Interrupted, LockedError
from dedup.models import FILE_TIMEOUT_S, MAX_FILE_SIZE, Params, ScanOptions
from dedup.report import print_cluster, print_clusters, print_history, print_runs, print_summary, run_row, safe
from dedup.store import Store

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


def _console() -> Console:
    # Piped into a file or a pager, rich would assume 80 columns and cut every title short.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


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
@click.version_option(__version__, prog_name="dedup")
@click.option("-v", "--verbose", count=True, help="Log more (-v: info, -vv: debug) to stderr.")
def cli(verbose: int) -> None:
    """Find the copies of the same bulletin in a crawl and the probable original source."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@cli.command()
@click.argument("crawl_dir", type=click.Path(file_okay=False, path_type=Path))
@DB_OPTION
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 64), default=None, help="Worker processes (default: CPUs, at most 4)."
)
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
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON (for cron and scripts).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def scan(crawl_dir, db, jobs, boilerplate, sources, shingle_size, threshold, follow_symlinks, max_file_size,
         file_timeout, allow_mass_removal, wait, as_json, quiet) -> None:  # fmt: skip
    """Scan CRAWL_DIR: read new and changed pages, cluster copies, pick originals, store them."""
    from dedup.pipeline import scan as run_scan  # here: the other commands need none of its imports (~1.5 s)

    if not crawl_dir.is_dir():
        raise click.UsageError(f"CRAWL_DIR {crawl_dir} is not a directory", click.get_current_context())
    try:
        params = Params(shingle_size=shingle_size, jaccard_threshold=threshold)
    except DedupError as exc:
        raise click.UsageError(str(exc)) from None
    options = ScanOptions(jobs=jobs, follow_symlinks=follow_symlinks, max_file_size=max_file_size * 2**20,
                          file_timeout=file_timeout, allow_mass_removal=allow_mass_removal, wait=wait)  # fmt: skip
    console = _console()
    show_bar = sys.stderr.isatty() and not quiet and not as_json
    try:
        with _stop_on_signals(), _errors_in_one_line(db):
            if show_bar:
                with Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    console=Console(stderr=True),
                    transient=True,
                ) as bar:
                    tasks: dict[str, int] = {}

                    def progress(stage: str, done: int, total: int) -> None:
                        if stage not in tasks:
                            tasks[stage] = bar.add_task(stage, total=total)
                        bar.update(tasks[stage], completed=done, total=total)

                    summary = run_scan(crawl_dir, db, params, progress, boilerplate=boilerplate, sources=sources,
                                       options=options)  # fmt: skip
            else:
                summary = run_scan(crawl_dir, db, params, None, boilerplate=boilerplate, sources=sources,
                                   options=options)  # fmt: skip
    except Interrupted as exc:
        name = signal.Signals(exc.signum).name
        click.echo(f"dedup: interrupted by {name}; the run is marked interrupted, the next scan finishes it", err=True)
        sys.exit(128 + exc.signum)
    _report_scan(summary, db, console, as_json, quiet)


def _report_scan(summary, db: Path, console: Console, as_json: bool, quiet: bool) -> None:
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
        print_summary(console, summary, str(db))
    else:  # cron, a pipe, a log file: notes, then one line
        for note in summary.notes:
            click.echo(f"dedup: {note}")
        click.echo(
            f"dedup: {summary.documents} documents ({summary.files_read} files read, {summary.files_unchanged} "
            f"unchanged, {summary.files_gone} gone), {summary.clusters} clusters ({summary.clusters_new} new, "
            f"{summary.clusters_grown} grown, {summary.clusters_merged} merged), {summary.compilations} compilation "
            f"page{'' if summary.compilations == 1 else 's'}, "
            f"{summary.skipped} skipped, {summary.seconds:.1f} s"
        )


@contextmanager
def _reading(db: Path) -> Iterator[Store]:
    """The database opened read-only (these commands never migrate, stamp or write it), closed
    after; any error, a damaged table included, is one line."""
    with _errors_in_one_line(db):
        store = Store(db, readonly=True)
        try:
            yield store
        finally:
            store.close()


def _print_rows(rows: list[dict], as_json: bool, table, as_record=dict) -> None:
    """Rows as JSON lines (`as_record` makes each a plain record), or as a rich table."""
    if as_json:
        for r in rows:
            click.echo(json.dumps(as_record(r), ensure_ascii=False))
    else:
        table(_console(), rows)


@cli.command()
@DB_OPTION
@click.option("--limit", "-n", type=click.IntRange(1), default=None, help="Show only the largest N clusters.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def clusters(db, limit, as_json) -> None:
    """List clusters, largest first: size, original site, title, time, sites."""
    with _reading(db) as store:
        _print_rows(store.clusters(limit), as_json, print_clusters)


@cli.command()
@click.argument("cluster_id", type=int)
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the cluster as JSON.")
def show(cluster_id, db, as_json) -> None:
    """Show one cluster: members by time, the original with its reasons, the propagation, its history."""
    with _reading(db) as store:
        c = store.cluster(cluster_id)
        c["history"] = store.history(cluster_id)
    if as_json:
        click.echo(json.dumps(c, ensure_ascii=False, indent=1))
    else:
        console = _console()
        print_cluster(console, c)
        print_history(console, c["history"], cluster_id)


@cli.command()
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


@cli.command()
@DB_OPTION
def skipped(db) -> None:
    """List the files and records that could not be read, with the reason."""
    with _reading(db) as store:
        rows = store.skipped_rows()
    for r in rows:  # one line each, never wrapped: grep-able
        click.echo(f"{safe(r['path']).plain}: {safe(r['reason']).plain}")


@cli.command()
@DB_OPTION
@click.option("--site", default=None, help="Only this site (host name).")
def boilerplate(db, site) -> None:
    """List the boilerplate lines learned from the crawl, per site, with how many pages carry them."""
    with _reading(db) as store:
        rows = store.learned_rows(site)
    for r in rows:  # tab-separated: site, pages, share of the site's pages, line
        click.echo("\t".join([safe(r["site"]).plain, str(r["n_docs"]), f"{r['share']:.0%}", safe(r["line"]).plain]))


@cli.command()
@DB_OPTION
@click.option("--limit", "-n", type=click.IntRange(1), default=20, show_default=True, help="The newest N runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def runs(db, limit, as_json) -> None:
    """The run ledger: start, end, status, files new/changed/gone/skipped, cluster changes."""
    with _reading(db) as store:
        _print_rows(store.runs(limit), as_json, print_runs, run_row)


def main() -> None:
    cli(prog_name="dedup")


if __name__ == "__main__":
    main()
