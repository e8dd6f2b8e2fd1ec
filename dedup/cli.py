"""The command line: options -> Params -> pipeline / store -> report. The only click user."""

from __future__ import annotations

import csv
import json
import logging
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dedup import __version__
from dedup.errors import DedupError
from dedup.models import Params
from dedup.pipeline import scan as run_scan
from dedup.report import print_cluster, print_clusters, print_summary, safe
from dedup.store import Store

DB_OPTION = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default="dedup.db",
    show_default=True,
    help="SQLite database holding documents, clusters and runs.",
)
EXPORT_FIELDS = ["path", "cluster", "original", "contains", "role", "site", "url", "title", "published_at"]


def _console() -> Console:
    # Piped into a file or a pager, rich would assume 80 columns and cut every title short.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _fail(exc: DedupError) -> click.ClickException:
    return click.ClickException(str(exc))


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
              help="Boilerplate pattern file to use instead of data/boilerplate.txt.")  # fmt: skip
@click.option("--sources", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Extra sources file (TOML, like data/sources.toml) added to the bundled one.")  # fmt: skip
@click.option("--shingle-size", type=click.IntRange(1, 10), default=Params.shingle_size, show_default=True,
              help="Words per shingle.")  # fmt: skip
@click.option("--threshold", type=click.FloatRange(0.05, 1.0), default=Params.jaccard_threshold, show_default=True,
              help="Jaccard similarity at or above which a verified pair is a copy.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON (for cron and scripts).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def scan(crawl_dir, db, jobs, boilerplate, sources, shingle_size, threshold, as_json, quiet) -> None:
    """Scan CRAWL_DIR: read new and changed pages, cluster copies, pick originals, store them."""
    if not crawl_dir.is_dir():
        raise click.UsageError(f"CRAWL_DIR {crawl_dir} is not a directory", click.get_current_context())
    try:
        params = Params(shingle_size=shingle_size, jaccard_threshold=threshold)
    except DedupError as exc:
        raise click.UsageError(str(exc)) from None
    console = _console()
    show_bar = sys.stderr.isatty() and not quiet and not as_json
    try:
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

                summary = run_scan(crawl_dir, db, params, progress, jobs=jobs, boilerplate=boilerplate, sources=sources)
        else:
            summary = run_scan(crawl_dir, db, params, None, jobs=jobs, boilerplate=boilerplate, sources=sources)
    except DedupError as exc:
        raise _fail(exc) from None
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
    else:  # cron, a pipe, a log file: one line
        click.echo(
            f"dedup: {summary.documents} documents ({summary.files_new} files read, {summary.files_unchanged} "
            f"unchanged), {summary.clusters} clusters, {summary.compilations} compilation "
            f"page{'' if summary.compilations == 1 else 's'}, "
            f"{summary.skipped} skipped, {summary.seconds:.1f} s"
        )


def _open(db: Path) -> Store:
    try:
        return Store(db, create=False)
    except DedupError as exc:
        raise _fail(exc) from None


@cli.command()
@DB_OPTION
@click.option("--limit", "-n", type=click.IntRange(1), default=None, help="Show only the largest N clusters.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def clusters(db, limit, as_json) -> None:
    """List clusters, largest first: size, original site, title, time, sites."""
    store = _open(db)
    try:
        rows = store.clusters(limit)
    finally:
        store.close()
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False))
    else:
        print_clusters(_console(), rows)


@cli.command()
@click.argument("cluster_id", type=int)
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the cluster as JSON.")
def show(cluster_id, db, as_json) -> None:
    """Show one cluster: members by time, the original with its reasons, the propagation."""
    store = _open(db)
    try:
        c = store.cluster(cluster_id)
    except DedupError as exc:
        raise _fail(exc) from None
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(c, ensure_ascii=False, indent=1))
    else:
        print_cluster(_console(), c)


@cli.command()
@DB_OPTION
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True,
              help="jsonl: one object per document (the scorer's format); csv: the same as columns.")  # fmt: skip
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Write to this file instead of standard output.")  # fmt: skip
def export(db, fmt, output) -> None:
    """Export one row per document: path, cluster, original, contains, role and metadata."""
    store = _open(db)
    out = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        rows = store.export_rows()
        if fmt == "jsonl":
            for r in rows:
                out.write(json.dumps(r, ensure_ascii=False) + "\n")
        else:
            w = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
            w.writeheader()
            for r in rows:
                w.writerow({**r, "contains": " ".join(str(c) for c in r["contains"])})
    finally:
        store.close()
        if output:
            out.close()


@cli.command()
@DB_OPTION
def skipped(db) -> None:
    """List the files and records that could not be read, with the reason."""
    store = _open(db)
    try:
        rows = store.skipped_rows()
    finally:
        store.close()
    for r in rows:  # one line each, never wrapped: grep-able
        click.echo(f"{safe(r['path']).plain}: {safe(r['reason']).plain}")


@cli.command()
@DB_OPTION
@click.option("--site", default=None, help="Only this site (host name).")
def boilerplate(db, site) -> None:
    """List the boilerplate lines learned from the crawl, per site, with how many pages carry them."""
    store = _open(db)
    try:
        rows = store.learned_rows(site)
    finally:
        store.close()
    for r in rows:  # tab-separated: site, pages, share of the site's pages, line
        click.echo("\t".join([safe(r["site"]).plain, str(r["n_docs"]), f"{r['share']:.0%}", safe(r["line"]).plain]))


def main() -> None:
    cli(prog_name="dedup")


if __name__ == "__main__":
    main()
