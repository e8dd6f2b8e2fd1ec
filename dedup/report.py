"""rich tables and trees from stored results, made to fit the terminal they are printed on: at 80
columns fewer columns, titles wrapped, widths counted in screen cells (a Chinese character takes
two); at WIDE columns or more, every column. Page text is untrusted: control and bidi characters
are stripped and nothing from a page is ever parsed as rich markup (everything goes through Text)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich import box
from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from dedup.models import RunSummary

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
# At this many columns or more, tables show every column (paths, credits, scores, site lists).
WIDE = 120
# A host up to this many cells is never folded in a site column (www.qingchuan.gov.cn is 20).
HOST_CELLS = 22
ROLE_STYLE = {"original": "bold green", "compilation": "cyan"}
# What an evidence kind means, in the words of the evidence tables.
EVIDENCE_KIND = {
    "credited": "credited",
    "canonical": "canonical link",
    "titled": "原标题",
    "points_away": "links away",
    "site_role": "kind of site",
    "credits_other": "credits other",
    "foreign_boilerplate": "boilerplate",
    "earliest": "earliest",
    "no_time": "no time",
    "fullest": "fullest text",
    "inside": "truncated",
    "mirror": "mirror",
}


def clean(value: object) -> str:
    """Untrusted page text as one line: control and bidi characters removed."""
    return CONTROL.sub("", "" if value is None else str(value)).replace("\n", " ")


def clip(s: str, width: int) -> str:
    """`s` cut to `width` screen cells, with an ellipsis when cut."""
    if width < 1 or cell_len(s) <= width:
        return s
    return set_cell_size(s, width - 1).rstrip(" ") + "…"


def safe(value: object, width: int | None = None) -> Text:
    """Untrusted page text as a rich Text: control and bidi characters removed, never markup;
    cut to `width` screen cells when given."""
    s = clean(value)
    return Text(clip(s, width) if width else s)


def when(iso: str | None, confidence: float | None = None, date_only: bool = False) -> str:
    """A stored time for people: minutes, or the date alone when the page gave only a date."""
    if not iso:
        return "—"
    if date_only or (confidence is not None and confidence < 0.7):
        return iso[:10]
    return iso[:16].replace("T", " ")


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def site_name(host: str | None, names: Iterable[str] | None) -> str:
    """The first name the crawl gives a site (青川日报), when it has one other than its host."""
    for n in names or ():
        if n and n != host:
            return n
    return ""


def site_text(host: str | None, names: Iterable[str] | None = None) -> Text:
    """A site for people: its Chinese name beside its host (`青川日报 www.qcnews.cn`)."""
    name = site_name(host, names)
    if not name:
        return safe(host or "—")
    return Text.assemble(safe(name), " ", (clean(host), "dim"))


def confidence_text(c: dict) -> str:
    """The confidence of a cluster's original with its word: high, fair, low, or a tie."""
    conf = c.get("confidence") or 0
    if c.get("tie"):
        return f"{conf:.2f} (a tie: no clear original)"
    word = "high" if conf >= 0.9 else "fair" if conf >= 0.75 else "low"
    return f"{conf:.2f} ({word})"


def _table(title: str | Text | None = None, caption: str | None = None) -> Table:
    """A table of few borders: every cell counts at 80 columns."""
    return Table(
        title=title,
        caption=caption,
        title_justify="left",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )


def _host_width(hosts: Iterable[str | None]) -> int:
    return min(HOST_CELLS, max((cell_len(clean(h)) for h in hosts if h), default=4))


def _bullets(reasons: Iterable[str]) -> Table:
    """Reasons as bullets, wrapped under their first word."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for r in reasons:
        grid.add_row("  •", safe(r))
    return grid


def print_summary(console: Console, s: RunSummary, db: str) -> None:
    t = Table(title="dedup scan", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column(justify="right", overflow="fold")
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
    t = _table("history")
    t.add_column("run", justify="right", no_wrap=True)
    t.add_column("started", no_wrap=True)
    t.add_column("event", overflow="fold")
    t.add_column("detail", overflow="fold")
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
            str(h["run_id"]), safe((h["started_at"] or "")[:16].replace("T", " ")), safe(event), safe(h["detail"])
        )
    console.print(t)


def run_row(r: dict) -> dict:
    """One ledger row flattened: the run's own columns and its summary's counts."""
    out = {k: r.get(k) for _, k in RUN_COLUMNS[:4]}
    out.update({k: r["summary"].get(k) for _, k in RUN_COLUMNS[4:]})
    out["seconds"] = r["summary"].get("seconds")
    out["root"] = r.get("root")
    return out


def _count(v: object) -> str:
    return "—" if v is None else f"{v:,}" if isinstance(v, int) else str(v)


def print_runs(console: Console, runs: list[dict], total: int | None = None) -> None:
    total = len(runs) if total is None else total
    shown = f"showing {len(runs):,} of {plural(total, 'run')}" if total > len(runs) else plural(total, "run")
    if console.width >= WIDE:
        t = _table(f"{shown}, newest first")
        for head, _ in RUN_COLUMNS:
            t.add_column(head, justify="left" if head in ("started", "finished", "status") else "right")
        for r in runs:
            row = run_row(r)
            t.add_row(*["—" if row[k] is None else safe(str(row[k]).replace("T", " ")[:19]) for _, k in RUN_COLUMNS])
        console.print(t)
        return
    t = _table(
        f"{shown}, newest first",
        caption="files: new/changed/gone/unreadable; clusters: new/grown/merged/split",
    )
    t.add_column("run", justify="right", no_wrap=True)
    t.add_column("started", no_wrap=True)
    t.add_column("status", no_wrap=True)
    t.add_column("files", justify="right", overflow="fold")
    t.add_column("clusters", justify="right", overflow="fold")
    t.add_column("originals\nchanged", justify="right")
    t.add_column("seconds", justify="right")
    for r in runs:
        row = run_row(r)
        files = "/".join(_count(row[k]) for k in ("files_new", "files_changed", "files_gone", "files_skipped"))
        clusters = "/".join(
            _count(row[k]) for k in ("clusters_new", "clusters_grown", "clusters_merged", "clusters_split")
        )
        secs = row.get("seconds")
        t.add_row(
            str(row["id"]),
            safe(when(row["started_at"])),
            safe(row["status"]),
            files,
            clusters,
            _count(row["originals_changed"]),
            "—" if secs is None else f"{secs:,.1f}",
        )
    console.print(t)


def _original_cell(c: dict) -> Text:
    if c.get("original_id"):
        return site_text(c.get("original_site"), c.get("original_site_names"))
    if c.get("external_source"):
        return Text.assemble(("outside: ", "italic"), safe(c["external_source"]))
    return Text("outside the crawl", style="italic")


def print_clusters(console: Console, clusters: list[dict], total: int | None = None, where: str = "") -> None:
    """Clusters, largest first; `total`: how many pass the filters (`where` says which)."""
    total = len(clusters) if total is None else total
    what = plural(total, "cluster") + (f" {where}" if where else "")
    title = f"showing {len(clusters):,} of {what}" if total > len(clusters) else what
    wide = console.width >= WIDE
    t = _table(f"{title}, largest first" if clusters else title)
    if not clusters:
        console.print(t.title)
        return
    t.add_column("id", justify="right", no_wrap=True)
    t.add_column("size", justify="right", no_wrap=True)
    t.add_column("original", min_width=_host_width(c.get("original_site") for c in clusters), overflow="fold")
    t.add_column("title", overflow="fold", ratio=1, min_width=16)
    t.add_column("first published" if wide else "first seen", no_wrap=True)
    t.add_column("conf.", justify="right", no_wrap=True)
    t.add_column("sites", justify="right" if not wide else "left", overflow="fold", ratio=1 if wide else None)
    for c in clusters:
        sites = c.get("sites") or []
        if wide:
            shown = ", ".join(clean(s) for s in sites[:4])
            site_cell = Text(shown + (f" +{len(sites) - 4} more" if len(sites) > 4 else ""))
        else:
            site_cell = Text(str(len(sites)))
        t.add_row(
            str(c["id"]),
            str(c["size"]),
            _original_cell(c),
            safe(c.get("original_title") or c.get("title")),
            when(c.get("original_time") or c.get("first_published"), date_only=not wide),
            "tie" if c.get("tie") else f"{c.get('confidence') or 0:.2f}",
            site_cell,
        )
    console.print(t)


def verdict(c: dict, this_doc: int | None = None) -> Text:
    """'original: 青川日报 www.qcnews.cn (document 10)', or where the original is said to be."""
    if c.get("original_id"):
        member = next((m for m in c.get("members", []) if m["id"] == c["original_id"]), None)
        host = member["site"] if member else c.get("original_site")
        names = member.get("site_names") if member else c.get("original_site_names")
        which = "this document" if this_doc == c["original_id"] else f"document {c['original_id']}"
        return Text.assemble(("original: ", "bold"), site_text(host, names), f" ({which})")
    if c.get("external_source"):
        return Text.assemble(("original: outside the crawl, ", "bold"), safe(c["external_source"]))
    return Text("original: outside the crawl, source unknown", style="bold")


def print_cluster(console: Console, c: dict) -> None:
    wide = console.width >= WIDE
    n_sites = len({m["site"] for m in c["members"]}) if c.get("members") else len(c.get("sites") or [])
    console.print(
        Text.assemble(
            ("cluster ", "bold"),
            (str(c["id"]), "bold"),
            f" · {plural(len(c['members']), 'document')} on ",
            plural(n_sites, "site"),
        )  # fmt: skip
    )
    console.print(safe(c.get("title")))
    console.print(verdict(c))
    console.print(Text(f"confidence {confidence_text(c)}"))
    if c.get("reasons"):
        console.print(Text("why:"))
        console.print(_bullets(c["reasons"]))
    print_members(console, c["members"], wide)
    evidence = [e for e in c.get("evidence") or [] if e["weight"]]
    if evidence:
        ev = _table("evidence weighed (a member's score is the sum of its weights)")
        ev.add_column("doc", justify="right", no_wrap=True)
        ev.add_column("evidence", no_wrap=not wide, overflow="fold")
        ev.add_column("weight", justify="right", no_wrap=True)
        ev.add_column("detail", overflow="fold", ratio=1)
        for e in evidence:
            ev.add_row(
                str(e["document_id"]), EVIDENCE_KIND.get(e["kind"], e["kind"]), f"{e['weight']:+.1f}", safe(e["detail"])
            )
        console.print(ev)
    console.print(propagation_tree(c, wide))


def print_members(console: Console, members: list[dict], wide: bool) -> None:
    t = _table("members by publish time", caption=None if wide else "`dedup doc ID` tells one document's story")
    t.add_column("doc", justify="right", no_wrap=True)
    t.add_column("role", no_wrap=True)
    t.add_column("published", no_wrap=True)
    t.add_column(
        "site", min_width=_host_width(m["site"] for m in members), overflow="fold", ratio=1 if not wide else None
    )
    if wide:
        t.add_column("site role", no_wrap=True)
    t.add_column("sim.", justify="right", no_wrap=True)
    if wide:
        t.add_column("score", justify="right", no_wrap=True)
        t.add_column("credits", overflow="fold")
        t.add_column("path", overflow="fold", ratio=1)
    for m in members:
        row = [
            str(m["id"]),
            Text(m["role"], style=ROLE_STYLE.get(m["role"], "")),
            when(m["published_at"], m.get("time_confidence")),
            site_text(m["site"], m.get("site_names")),
        ]
        if wide:
            row.append(safe(m.get("site_role")))
        row.append(f"{m['similarity'] or 0:.2f}")
        if wide:
            row += [f"{m.get('score') or 0:.1f}", safe(", ".join(m["credits"])), safe(m["path"])]
        t.add_row(*row)
    console.print(t)


def propagation_tree(c: dict, wide: bool = True) -> Tree:
    """Who probably copied from whom: each copy under its likely parent."""
    members = {m["id"]: m for m in c["members"]}
    children: dict[int | None, list[dict]] = {}
    for m in c["members"]:
        parent = m["parent_id"] if m["parent_id"] in members else None
        if m["role"] == "original":
            parent = None
        children.setdefault(parent, []).append(m)
    tree = Tree(Text("propagation (each copy under the member it was most likely copied from)", style="bold"))

    def label(m: dict) -> Text:
        parts: list = [
            (m["role"], ROLE_STYLE.get(m["role"], "")),
            " ",
            when(m["published_at"], m.get("time_confidence")),
            " ",
            site_text(m["site"], m.get("site_names")),
            f" #{m['id']}",
        ]
        if wide:
            parts += [" ", safe(m["path"])]
        return Text.assemble(*parts)

    def add(node: Tree, parent_id: int | None, depth: int) -> None:
        for m in sorted(children.get(parent_id, []), key=lambda m: m["published_at"] or "9999"):
            sub = node.add(label(m))
            if depth < 20:
                add(sub, m["id"], depth + 1)

    add(tree, None, 0)
    return tree


# ----------------------------------------------------------------------------- one document

ROLE_WORDS = {
    "original": "the probable original of cluster {cluster}",
    "copy": "a copy in cluster {cluster}",
    "compilation": "a compilation page: it carries the stories of clusters {clusters}",
    "unique": "no copy of it was found in the crawl: its own original",
    "too_short": "too little text to compare ({n} word shingles)",
    "skipped": "could not be signed (see `dedup skipped`)",
    "pending": "read by a scan that was interrupted before clustering it: run `dedup scan` to finish",
    "gone": "its file is no longer in the crawl",
}
MATCH_WORDS = {
    "exact": "exact",
    "similar": "similar",
    "inside": "inside",  # this text lies inside the other
    "holds": "holds",  # the other text lies inside this one
}


def _key_values(rows: list[tuple[str, Text | str]]) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for k, v in rows:
        grid.add_row(k, v)
    return grid


def _brief(d: dict | None) -> Text:
    """'document 10 · 2023-03-12 08:30 · 青川日报 www.qcnews.cn'."""
    if not d:
        return Text("—")
    return Text.assemble(
        f"document {d['id']} · ", when(d.get("published_at"), d.get("time_confidence")), " · ",
        site_text(d.get("site"), d.get("site_names")),
    )  # fmt: skip


def print_doc(console: Console, d: dict) -> None:
    """One document's story: what it is, its role, each cluster it is in, its verified copies."""
    wide = console.width >= WIDE
    own = [c for c in d["clusters"] if c["role"] != "compilation"]
    role_line = ROLE_WORDS.get(d["role"], d["role"]).format(
        cluster=own[0]["id"] if own else "", clusters=", ".join(str(c["id"]) for c in d["clusters"]),
        n=d.get("n_shingles") or 0,
    )  # fmt: skip
    console.print(Text.assemble(("document ", "bold"), (str(d["id"]), "bold"), ": ", role_line))
    site = site_text(d["site"], d.get("site_names"))
    if d.get("site_role"):
        site.append(f" · {d['site_role']}")
        if d.get("site_role_reason"):
            site.append(" (")
            site.append_text(safe(d["site_role_reason"]))
            site.append(")")
    rows: list[tuple[str, Text | str]] = [
        ("path", safe(d["path"])),
        ("site", site),
        ("title", safe(d.get("title") or "—")),
    ]
    if d.get("original_title"):
        rows.append(("原标题", safe(d["original_title"])))
    published = when(d.get("published_at"), d.get("time_confidence"))
    if d.get("published_at") and d.get("time_source"):
        published += f" (from {clean(d['time_source'])})"
    rows.append(("published", published))
    if d.get("fetched_at"):
        rows.append(("fetched", when(d["fetched_at"])))
    if d.get("url"):
        rows.append(("url", safe(d["url"])))
    if d.get("credits"):
        rows.append(("credits", safe(", ".join(d["credits"]))))
    console.print(_key_values(rows))
    for c in d["clusters"]:
        console.print()
        head = Text.assemble(
            ("cluster ", "bold"), (str(c["id"]), "bold"), f" · {plural(c['size'], 'document')} · its role: ",
            (c["role"], ROLE_STYLE.get(c["role"], "")),
        )  # fmt: skip
        console.print(head)
        console.print(safe(c.get("title")))
        console.print(verdict(c, d["id"]))
        console.print(Text(f"confidence {confidence_text(c)}"))
        if c.get("reasons") and (c["role"] == "original" or len(d["clusters"]) == 1):
            console.print(Text("why:"))
            console.print(_bullets(c["reasons"]))
        elif c.get("reasons"):
            console.print(Text(f"why: `dedup show {c['id']}`"))
        facts: list[tuple[str, Text | str]] = []
        if c["role"] != "original" and c.get("parent"):
            facts.append(("copied from", _brief(c["parent"])))
        if c.get("copied_by"):
            by = Text()
            for k, x in enumerate(c["copied_by"]):
                if k:
                    by.append("\n")
                by.append_text(_brief(x))
            facts.append(("copied by", by))
        if c.get("similarity") is not None:
            facts.append(("similarity", f"{c['similarity']:.2f} to its closest member"))
        evidence = [e for e in c.get("evidence") or [] if e["weight"]]
        if evidence:
            score = sum(e["weight"] for e in c["evidence"])
            facts.append(("score", f"{score:+.1f}, from:"))
        if facts:
            console.print(_key_values(facts))
        if evidence:
            grid = Table.grid(padding=(0, 1))
            grid.add_column(justify="right", no_wrap=True)
            grid.add_column(overflow="fold")
            for e in evidence:
                grid.add_row(f"  {e['weight']:+.1f}", safe(e["detail"]))
            console.print(grid)
    matches = d.get("matches") or []
    if matches:
        console.print()
        print_matches(console, matches, wide)


def print_matches(console: Console, matches: list[dict], wide: bool, limit: int = 50) -> None:
    """The verified copies of one document's text."""
    caption = "share: of the smaller text inside the larger; inside: this text lies in the other; holds: the reverse"
    more = len(matches) - limit
    t = _table(f"verified copies of this text ({len(matches):,})", caption=caption)
    t.add_column("doc", justify="right", no_wrap=True)
    t.add_column("sim.", justify="right", no_wrap=True)
    t.add_column("share", justify="right", no_wrap=True)
    t.add_column("how", no_wrap=True)
    t.add_column("published", no_wrap=True)
    t.add_column("site", min_width=_host_width(m["site"] for m in matches), overflow="fold", ratio=1)
    if wide:
        t.add_column("cluster", no_wrap=True)
        t.add_column("title", overflow="fold", ratio=1)
    for m in matches[:limit]:
        row = [
            str(m["id"]),
            f"{m['jaccard']:.2f}",
            f"{m['containment']:.2f}",
            MATCH_WORDS.get(m["way"], m["way"]),
            when(m.get("published_at"), m.get("time_confidence")),
            site_text(m["site"], m.get("site_names")),
        ]
        if wide:
            row += [", ".join(str(x) for x in m.get("clusters") or []) or "—", safe(m.get("title"))]
        t.add_row(*row)
    console.print(t)
    if more > 0:
        console.print(Text(f"… and {more:,} more (--json lists them all)"))


# ----------------------------------------------------------------------------- a text asked about


def print_query(console: Console, results: list[dict]) -> None:
    """The stored clusters each queried text copies, best first."""
    wide = console.width >= WIDE
    for k, q in enumerate(results):
        if k:
            console.print()
        head = Text.assemble(("query ", "bold"), safe(q["query"]))
        if q.get("title"):
            head.append(" · ")
            head.append_text(safe(q["title"]))
        console.print(head)
        if q.get("note"):
            console.print(safe(q["note"]))
        matches = q["matches"]
        if not matches:
            if q.get("status") == "ok":
                console.print(Text("no stored document or cluster holds a copy of this text"))
            continue
        n_clusters = sum(1 for m in matches if m["cluster"] is not None)
        n_docs = len(matches) - n_clusters
        found = [plural(n_clusters, "cluster")] if n_clusters else []
        if n_docs:
            found.append(f"{plural(n_docs, 'document')} in no cluster")
        title = " and ".join(found)
        t = _table(
            f"{title} this text copies, most similar first",
            caption="sim.: similarity; share: of the smaller text inside the larger; "
            "inside: this text lies in the stored one; holds: the reverse",
        )
        t.add_column("cluster", justify="right", no_wrap=True)
        t.add_column("size", justify="right", no_wrap=True)
        t.add_column("sim.", justify="right", no_wrap=True)
        t.add_column("share", justify="right", no_wrap=True)
        t.add_column("how", no_wrap=True)
        t.add_column("original", min_width=_host_width(_query_host(m) for m in matches), overflow="fold")
        t.add_column("title", overflow="fold", ratio=1, min_width=16)
        if wide:
            t.add_column("matched", overflow="fold")
        for m in matches:
            if m["cluster"] is None:
                cid, size = "—", "1"
                original = site_text(m["site"], m.get("site_names"))
                title_cell = Text.assemble(f"document {m['document_id']}: ", safe(m.get("title")))
            else:
                c = m["cluster_row"]
                cid, size = str(m["cluster"]), str(c["size"])
                original = _original_cell(c)
                title_cell = safe(c.get("original_title") or c.get("title"))
            row = [
                cid,
                size,
                f"{m['jaccard']:.2f}",
                f"{m['containment']:.2f}",
                MATCH_WORDS.get(m["way"], m["way"]),
                original,
                title_cell,
            ]
            if wide:
                row.append(Text.assemble(f"document {m['document_id']} ", safe(m.get("path"))))
            t.add_row(*row)
        console.print(t)


def _query_host(m: dict) -> str | None:
    if m["cluster"] is None:
        return m.get("site")
    return m["cluster_row"].get("original_site")
