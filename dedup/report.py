"""rich tables and trees from stored results. Page text is untrusted: control characters are
stripped and nothing from a page is ever parsed as rich markup (everything goes through Text)."""

from __future__ import annotations

import re

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from dedup.models import RunSummary

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def safe(value: object, width: int | None = None) -> Text:
    """Untrusted page text as a rich Text: control and bidi characters removed, never markup."""
    s = CONTROL.sub("", "" if value is None else str(value)).replace("\n", " ")
    if width and len(s) > width:
        s = s[: width - 1] + "…"
    return Text(s)


def when(iso: str | None, confidence: float | None = None) -> str:
    """A stored time for people: minutes, or the date alone when the page gave only a date."""
    if not iso:
        return "—"
    if confidence is not None and confidence < 0.7:
        return iso[:10]
    return iso[:16].replace("T", " ")


def print_summary(console: Console, s: RunSummary, db: str) -> None:
    t = Table(title="dedup scan", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column(justify="right")
    rows = [
        ("crawl", safe(s.root)),
        ("database", safe(db)),
        ("files seen", f"{s.files_seen:,}"),
        ("files new / changed", f"{s.files_new:,} / {s.files_changed:,}"),
        ("files unchanged", f"{s.files_unchanged:,}"),
        ("files gone", f"{s.files_gone:,}"),
        ("files unreadable this run", f"{s.files_skipped:,}"),
        ("documents", f"{s.documents:,}"),
        ("skipped (unreadable)", f"{s.skipped:,}"),
        ("too short to compare", f"{s.too_short:,}"),
        ("clusters", f"{s.clusters:,}"),
        ("clusters new / grown / merged", f"{s.clusters_new:,} / {s.clusters_grown:,} / {s.clusters_merged:,}"),
        ("originals changed", f"{s.originals_changed:,}"),
        ("documents in clusters", f"{s.clustered_documents:,}"),
        ("compilation pages", f"{s.compilations:,}"),
        ("seconds", f"{s.seconds:.1f}"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)
    for note in s.notes:
        console.print(safe(note))


RUN_COLUMNS = [
    ("run", "id"), ("started", "started_at"), ("finished", "finished_at"), ("status", "status"),
    ("new", "files_new"), ("changed", "files_changed"), ("gone", "files_gone"), ("skipped", "files_skipped"),
    ("clusters new", "clusters_new"), ("grown", "clusters_grown"), ("merged", "clusters_merged"),
    ("split", "clusters_split"),
    ("originals changed", "originals_changed"),
]  # fmt: skip


def print_history(console: Console, history: list[dict], cluster_id: int) -> None:
    """What the runs did to a cluster (from cluster_history), oldest first."""
    if not history:
        return
    t = Table(title="history", title_justify="left")
    for head in ("run", "started", "event", "detail"):
        t.add_column(head)
    for h in history:
        event = h["event"]
        if h["other_id"] is not None and h["other_id"] == cluster_id:
            event = (
                f"{event} (cluster {h['cluster_id']} into this)"
                if event == "merged"
                else f"{event} (from cluster {h['cluster_id']})"
            )
        elif h["other_id"] is not None:
            event = f"{event} -> cluster {h['other_id']}"
        t.add_row(
            str(h["run_id"]), safe((h["started_at"] or "")[:19].replace("T", " ")), safe(event), safe(h["detail"])
        )
    console.print(t)


def run_row(r: dict) -> dict:
    """One ledger row flattened: the run's own columns and its summary's counts."""
    out = {k: r.get(k) for _, k in RUN_COLUMNS[:4]}
    out.update({k: r["summary"].get(k) for _, k in RUN_COLUMNS[4:]})
    out["seconds"] = r["summary"].get("seconds")
    out["root"] = r.get("root")
    return out


def print_runs(console: Console, runs: list[dict]) -> None:
    t = Table(title=f"{len(runs)} run{'' if len(runs) == 1 else 's'}, newest first", title_justify="left")
    for head, _ in RUN_COLUMNS:
        t.add_column(head, justify="left" if head in ("started", "finished", "status") else "right")
    for r in runs:
        row = run_row(r)
        t.add_row(*["—" if row[k] is None else safe(str(row[k]).replace("T", " ")[:19]) for _, k in RUN_COLUMNS])
    console.print(t)


def print_clusters(console: Console, clusters: list[dict]) -> None:
    t = Table(title=f"{len(clusters)} clusters, largest first", title_justify="left")
    t.add_column("id", justify="right")
    t.add_column("size", justify="right")
    t.add_column("original site")
    t.add_column("title")
    t.add_column("published")
    t.add_column("conf.", justify="right")
    t.add_column("sites")
    for c in clusters:
        if c.get("original_id"):
            site = safe(c.get("original_site"))
        elif c.get("external_source"):
            site = Text.assemble(("external: ", "italic"), safe(c["external_source"]))
        else:
            site = Text("—")
        sites = c.get("sites") or []
        t.add_row(
            str(c["id"]),
            str(c["size"]),
            site,
            safe(c.get("original_title") or c.get("title"), 40),
            when(c.get("original_time") or c.get("first_published")),
            f"{c.get('confidence') or 0:.2f}",
            safe(", ".join(sites[:4]) + (f" +{len(sites) - 4}" if len(sites) > 4 else ""), 60),
        )
    console.print(t)


def print_cluster(console: Console, c: dict) -> None:
    head = Text.assemble(("cluster ", "bold"), str(c["id"]), ": ", safe(c.get("title"), 80))
    console.print(head)
    if c.get("external_source"):
        console.print(Text.assemble("probable original: ", ("external ", "bold"), safe(c["external_source"])))
    console.print(Text(f"confidence {c.get('confidence') or 0:.2f}"))
    for r in c.get("reasons", []):
        console.print(Text.assemble("  • ", safe(r)))
    scores = {m["id"]: m.get("score") for m in c["members"]}
    t = Table(title="members by publish time", title_justify="left")
    t.add_column("doc", justify="right")
    t.add_column("role")
    t.add_column("published")
    t.add_column("site")
    t.add_column("site role")
    t.add_column("sim.", justify="right")
    t.add_column("score", justify="right")
    t.add_column("credits")
    t.add_column("path")
    for m in c["members"]:
        style = "bold green" if m["role"] == "original" else ("cyan" if m["role"] == "compilation" else "")
        t.add_row(
            str(m["id"]),
            Text(m["role"], style=style),
            when(m["published_at"], m.get("time_confidence")),
            safe(m["site"]),
            safe(m.get("site_role")),
            f"{m['similarity'] or 0:.2f}",
            f"{scores.get(m['id']) or 0:.1f}",
            safe(", ".join(m["credits"]), 30),
            safe(m["path"], 60),
        )
    console.print(t)
    if c.get("evidence"):
        ev = Table(title="evidence (weight per member)", title_justify="left")
        ev.add_column("doc", justify="right")
        ev.add_column("kind")
        ev.add_column("weight", justify="right")
        ev.add_column("detail")
        for e in c["evidence"]:
            ev.add_row(str(e["document_id"]), e["kind"], f"{e['weight']:+.1f}", safe(e["detail"], 80))
        console.print(ev)
    console.print(propagation_tree(c))


def propagation_tree(c: dict) -> Tree:
    """Who probably copied from whom: each copy under its likely parent."""
    members = {m["id"]: m for m in c["members"]}
    children: dict[int | None, list[dict]] = {}
    for m in c["members"]:
        parent = m["parent_id"] if m["parent_id"] in members else None
        if m["role"] == "original":
            parent = None
        children.setdefault(parent, []).append(m)
    tree = Tree(Text("propagation", style="bold"))

    def label(m: dict) -> Text:
        return Text.assemble(
            (m["role"], "bold green" if m["role"] == "original" else ""),
            " ",
            when(m["published_at"], m.get("time_confidence")),
            " ",
            safe(m["site"]),
            " ",
            safe(m["path"], 50),
        )

    def add(node: Tree, parent_id: int | None, depth: int) -> None:
        for m in sorted(children.get(parent_id, []), key=lambda m: m["published_at"] or "9999"):
            sub = node.add(label(m))
            if depth < 20:
                add(sub, m["id"], depth + 1)

    add(tree, None, 0)
    return tree
