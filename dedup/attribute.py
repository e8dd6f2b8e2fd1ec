"""Cluster + documents -> the probable original, a confidence and the reasons, in words.

The evidence a careful editor weighs, strongest first:
  1. credit lines: other members saying `来源：X` where X names a member's site;
  2. the kind of site: publishers write stories, platforms and content farms copy them;
  3. a member that itself credits another source is a copy;
  4. the earliest credible publish time (a date without a time only counts for its day).
When members credit a source that is not in the crawl and no publisher is among them, the
original is external: named, not crowned among the copies.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from dedup import DATA_DIR
from dedup.errors import ConfigError
from dedup.models import ROLE_COMPILATION, ROLE_COPY, ROLE_ORIGINAL

DEFAULT_SOURCES = DATA_DIR / "sources.toml"
ROLES = ("publisher", "platform", "farm", "unknown")


@dataclass
class Source:
    name: str
    aliases: list[str]
    domains: list[str]
    role: str


@dataclass
class SiteProfile:
    """What the crawl and the sources file say about one site."""

    site: str
    names: list[str] = field(default_factory=list)
    role: str = "unknown"
    role_reason: str = ""
    n_documents: int = 0


@dataclass
class DocInfo:
    """The fields of a stored document that attribution reads."""

    doc_id: int
    path: str
    site: str
    url: str
    canonical_url: str
    title: str
    published_at: str | None
    time_confidence: float
    credits: list[str]
    boilerplate: list[str]
    original_title: str = ""
    fetched_at: str | None = None


@dataclass
class Attribution:
    original_id: int | None
    confidence: float
    reasons: list[str]
    external_source: str | None
    roles: dict[int, str]
    parents: dict[int, int | None]
    evidence: list = field(default_factory=list)  # list[Evidence]
    scores: dict[int, float] = field(default_factory=dict)


def load_sources(*paths: Path | None) -> list[Source]:
    """Read the sources data file(s); later files add to earlier ones."""
    out: list[Source] = []
    for path in [DEFAULT_SOURCES, *[p for p in paths if p]]:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read sources file {path}: {exc}") from None
        for n, entry in enumerate(data.get("source", []), 1):
            role = entry.get("role", "publisher")
            if role not in ROLES or not entry.get("name"):
                raise ConfigError(f"{path}: source #{n} needs a name and a role in {ROLES}")
            out.append(
                Source(
                    entry["name"], list(entry.get("aliases", [])), [d.lower() for d in entry.get("domains", [])], role
                )
            )
    return out


def source_for_site(site: str, sources: list[Source]) -> Source | None:
    """The known source whose domain is the site or a parent of it (the longest match wins)."""
    best, best_len = None, 0
    for s in sources:
        for d in s.domains:
            if (site == d or site.endswith("." + d)) and len(d) > best_len:
                best, best_len = s, len(d)
    return best


def profile_sites(site_docs: dict[str, list[DocInfo]], site_names: dict[str, list[list[str]]], sources: list[Source]):
    """Names and role of every site in the crawl.

    A site's own names: what its pages' titles end with, and a credit that most of its pages
    carry (content farms credit themselves). Its role: the sources file, else `.gov.cn` means a
    publisher, else a site whose pages mostly carry platform boilerplate ("发布于", disclaimers,
    "from the internet") is a content farm; otherwise it is taken for a publisher.
    """
    profiles: dict[str, SiteProfile] = {}
    # Names of known sources: a site whose pages mostly credit 新华社 is not 新华社.
    known_names = {_norm_name(n): s for s in sources for n in (s.name, *s.aliases)}
    for site, docs in site_docs.items():
        p = SiteProfile(site=site, n_documents=len(docs))
        known = source_for_site(site, sources)
        counts: Counter[str] = Counter()
        for names in site_names.get(site, []):
            counts.update(set(names))
        credit_counts: Counter[str] = Counter()
        for d in docs:
            credit_counts.update(set(d.credits))
        n = len(docs)
        for name, c in (counts + credit_counts).most_common():
            other = known_names.get(_norm_name(name))
            if other is not None and other is not known:
                continue
            if c >= max(2, 0.5 * n) or (n == 1 and counts[name]):
                p.names.append(name)
        if known:
            p.names = [known.name, *known.aliases, *p.names]
            p.role, p.role_reason = known.role, f"listed as {known.role} ({known.name})"
        elif site.endswith(".gov.cn"):
            p.role, p.role_reason = "publisher", "government site (.gov.cn)"
        else:
            with_bp = sum(1 for d in docs if d.boilerplate)
            if n >= 2 and with_bp >= 0.5 * n:
                p.role, p.role_reason = "farm", f"{with_bp} of its {n} pages carry repost boilerplate"
            elif n == 1 and with_bp:
                p.role, p.role_reason = "farm", "its page carries repost boilerplate"
            else:
                p.role, p.role_reason = "publisher", "pages without repost boilerplate"
        profiles[site] = p
    return profiles


def _title_key(title: str) -> str:
    """A title for comparison: letters, digits and CJK only, lower case."""
    return "".join(ch for ch in title.lower() if ch.isalnum())


def _norm_name(s: str) -> str:
    return re.sub(r"[\s·•]+", "", s).lower()


def credit_targets(credit: str, members_sites: set[str], profiles: dict[str, SiteProfile]) -> set[str]:
    """The member sites a credited name points to: by a site's name or by its domain."""
    c = _norm_name(credit)
    out = set()
    for site in members_sites:
        if c == site or c.endswith("." + site) or site.endswith("." + c):
            out.add(site)
            continue
        for name in profiles[site].names if site in profiles else []:
            n = _norm_name(name)
            if n == c or (len(n) >= 3 and len(c) >= 3 and (n in c or c in n)):
                out.add(site)
                break
    return out


def platform_names(sources: list[Source]) -> dict[str, str]:
    """Name or alias -> domain of every platform in the sources file."""
    out = {}
    for s in sources:
        if s.role == "platform" and s.domains:
            for name in (s.name, *s.aliases):
                # Short names ("微信", "头条") also occur in ads and teasers; a platform's own
                # disclaimer names it in full ("搜狐号系信息发布平台", "“网易号”用户").
                if len(name) >= 3:
                    out[name] = s.domains[0]
    return out


def _time_key(d: DocInfo) -> str:
    """Sortable time in UTC (pages state times in different zones).

    A date without a time sorts at the end of its day (it cannot claim more). A page with no
    publish time that a crawler fetched (WARC) existed by then: the fetch time stands in, as an
    upper bound, so it never makes a page look earlier than it is.
    """
    when, date_only = d.published_at, d.time_confidence < 0.7
    if not when:
        when, date_only = d.fetched_at, False
    if not when:
        return "9999"
    try:
        t = datetime.fromisoformat(when)
    except ValueError:
        return "9999"
    if date_only:
        t = t.replace(hour=23, minute=59, second=59)
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S")


# Evidence weights. Their order mirrors how an editor ranks the evidence: what other members say
# (credits, canonical links) outweighs what kind of site a page is on, which outweighs who shows
# the earliest time (clocks are skewed and copies of copies keep old dates). Tuned on the
# development corpus only in their order, not their digits.
W_CREDITED = 3.0  # per member whose credit line names this member's site (at most 3 counted)
W_CANONICAL = 4.0  # another member's canonical/og:url link points to this page
W_TITLED = 2.0  # per member whose 原标题 line is this member's title (at most 2 counted)
W_POINTS_AWAY = -4.0  # this page's canonical link points to another member
W_ROLE = {"publisher": 2.0, "unknown": 1.0, "platform": 0.0, "farm": -1.0}
W_CREDITS_OTHER = -1.5  # this page credits a source other than its own site
W_FOREIGN_BOILERPLATE = -1.0  # carries another platform's boilerplate: a repost of a repost
W_EARLIEST = 1.0  # the earliest credible publish time of the cluster
W_NO_TIME = -0.5
W_FULLEST = 0.5  # holds the others' text (truncated copies lie inside it)
W_INSIDE = -0.5  # lies inside a fuller member (a truncated copy)


@dataclass
class Evidence:
    doc_id: int
    kind: str
    weight: float
    detail: str


def _url_key(url: str) -> str:
    """A URL without scheme, 'www.', query noise and trailing slash, for comparing links."""
    u = urlsplit(url.strip())
    host = (u.hostname or "").removeprefix("www.")
    return f"{host}{u.path.rstrip('/')}" + (f"?{u.query}" if u.query and "id=" in u.query else "")


def platform_of_boilerplate(lines: list[str], sources: dict[str, str]) -> set[str]:
    """Names of platforms whose own boilerplate appears in these lines ('搜狐号系信息发布平台')."""
    out = set()
    for line in lines:
        for name, domain in sources.items():
            if len(name) >= 2 and name in line:
                out.add(domain)
    return out


def pick_original(
    members: dict[int, str],
    docs: dict[int, DocInfo],
    profiles: dict[str, SiteProfile],
    overlaps: dict[tuple[int, int], float] | None = None,
    platform_names: dict[str, str] | None = None,
) -> Attribution:
    """Weigh the evidence for every member, choose the probable original and say why.

    `overlaps[(a, b)]` is the estimated share of b's text inside a (from the verified pairs);
    `platform_names` maps a platform's names to its domain (from the sources file).
    """
    overlaps = overlaps or {}
    platform_names = platform_names or {}
    candidates = [docs[i] for i, r in members.items() if r != ROLE_COMPILATION]
    everyone = [docs[i] for i in members]
    sites = {d.site for d in everyone}
    evidence: list[Evidence] = []
    score: dict[int, float] = defaultdict(float)

    def add(d: DocInfo, kind: str, weight: float, detail: str) -> None:
        evidence.append(Evidence(d.doc_id, kind, weight, detail))
        score[d.doc_id] += weight

    def role(d: DocInfo) -> str:
        return profiles[d.site].role if d.site in profiles else "unknown"

    # What the members say about each other: credit lines and canonical links.
    votes: dict[str, set[int]] = defaultdict(set)
    voter_names: dict[str, set[str]] = defaultdict(set)
    foreign: dict[int, list[str]] = {}
    external: Counter[str] = Counter()
    for d in everyone:
        own = {_norm_name(n) for n in (profiles[d.site].names if d.site in profiles else [])}
        for credit in d.credits:
            if _norm_name(credit) in own:
                continue
            foreign.setdefault(d.doc_id, []).append(credit)
            targets = credit_targets(credit, sites, profiles) - {d.site}
            for t in targets:
                votes[t].add(d.doc_id)
                voter_names[t].add(credit)
            if not targets:
                external[credit] += 1
    by_url = {_url_key(d.url): d for d in candidates if d.url}
    for d in everyone:
        if d.canonical_url and _url_key(d.canonical_url) != _url_key(d.url or d.canonical_url):
            target = by_url.get(_url_key(d.canonical_url))
            if target is not None and target.doc_id != d.doc_id:
                add(target, "canonical", W_CANONICAL, f"{d.site} links to it as canonical")
                if d.doc_id in {c.doc_id for c in candidates}:
                    add(d, "points_away", W_POINTS_AWAY, f"its canonical link points to {target.site}")

    # 原标题 lines: a retitled copy names the title the story had where it was first published.
    by_title: dict[str, list[DocInfo]] = defaultdict(list)
    for d in candidates:
        if d.title:
            by_title[_title_key(d.title)].append(d)
    titled: dict[int, set[int]] = defaultdict(set)
    for d in everyone:
        if d.original_title:
            for target in by_title.get(_title_key(d.original_title), []):
                if target.doc_id != d.doc_id and _title_key(target.title) != _title_key(d.title):
                    titled[target.doc_id].add(d.doc_id)
    for doc_id, who in titled.items():
        n = len(who)
        add(docs[doc_id], "titled", W_TITLED * min(n, 2), f"{n} member{'s' if n > 1 else ''} give its title as 原标题")

    timed = sorted((d for d in candidates if d.published_at or d.fetched_at), key=_time_key)
    first_key = _time_key(timed[0])[:16] if timed else None
    for d in candidates:
        n = len(votes.get(d.site, ()))
        if n:
            names = ", ".join(sorted(voter_names[d.site]))
            add(d, "credited", W_CREDITED * min(n, 3), f"{n} member{'s' if n > 1 else ''} credit {names} = {d.site}")
        r = role(d)
        reason = profiles[d.site].role_reason if d.site in profiles else ""
        add(d, "site_role", W_ROLE.get(r, 1.0), f"{r} site ({reason})" if reason else f"{r} site")
        if d.doc_id in foreign:
            add(d, "credits_other", W_CREDITS_OTHER, f"credits {', '.join(foreign[d.doc_id])}")
        copied_from = platform_of_boilerplate(d.boilerplate, platform_names) - {_base(d.site)}
        if copied_from and not any(_base(d.site).endswith(p) for p in copied_from):
            add(
                d, "foreign_boilerplate", W_FOREIGN_BOILERPLATE, f"carries {', '.join(sorted(copied_from))} boilerplate"
            )
        if d.published_at:
            how = "time" if d.time_confidence >= 0.7 else "date only"
            when = d.published_at[:16].replace("T", " ") if how == "time" else d.published_at[:10]
            if _time_key(d)[:16] == first_key:
                add(d, "earliest", W_EARLIEST, f"earliest credible time {when} ({how})")
        elif d.fetched_at and _time_key(d)[:16] == first_key:
            when = d.fetched_at[:16].replace("T", " ")
            add(d, "earliest", W_EARLIEST, f"fetched by a crawler at {when}, before any other member's time")
        else:
            add(d, "no_time", W_NO_TIME, "no publish time on the page")
        inside = [o for o in candidates if o.doc_id != d.doc_id and overlaps.get((d.doc_id, o.doc_id), 0) >= 0.8]
        held_by = [o for o in candidates if o.doc_id != d.doc_id and overlaps.get((o.doc_id, d.doc_id), 0) >= 0.8]
        if inside and not held_by:
            add(d, "fullest", W_FULLEST, f"holds the text of {len(inside)} shorter member(s)")
        elif held_by and not inside:
            add(d, "inside", W_INSIDE, f"its text lies inside {len(held_by)} fuller member(s)")

    publishers = [d for d in candidates if role(d) == "publisher" and d.doc_id not in foreign]
    ext_name, ext_count = external.most_common(1)[0] if external else (None, 0)
    if not votes and not publishers and ext_name and ext_count >= 2:
        reasons = [
            f"{ext_count} members credit {ext_name}, which is not in the crawl",
            "no publisher among the members: the original is external",
        ]
        # Its address, when the copies link to it (canonical/og:url on a site outside the crawl).
        links = Counter(
            d.canonical_url
            for d in everyone
            if d.canonical_url and (urlsplit(d.canonical_url).hostname or "") not in sites
        )
        if links:
            url = links.most_common(1)[0][0]
            reasons.append(f"the copies link to {url}")
            ext_name = f"{ext_name} ({url})"
        conf = min(0.9, 0.5 + 0.1 * ext_count)
        roles = dict(members)
        parents = {i: None for i in members}
        return Attribution(None, conf, reasons, ext_name, roles, parents, evidence, dict(score))

    ranked = sorted(candidates, key=lambda d: (-score[d.doc_id], _time_key(d), d.path))
    best = ranked[0]
    margin = score[best.doc_id] - score[ranked[1].doc_id] if len(ranked) > 1 else 3.0
    # Confidence from the margin over the runner-up: 0 margin (a coin toss between two equals)
    # gives 0.5, a credited publisher over an uncredited platform copy (margin >= 4) about 0.95.
    confidence = round(min(0.99, 1.0 - 0.5 * math.exp(-0.6 * margin)), 2)
    reasons = [e.detail for e in evidence if e.doc_id == best.doc_id and e.weight > 0]
    reasons += [f"but {e.detail}" for e in evidence if e.doc_id == best.doc_id and e.weight < 0]
    if timed and timed[0].doc_id != best.doc_id and _time_key(timed[0])[:16] != _time_key(best)[:16]:
        first = timed[0]
        shown = (first.published_at or first.fetched_at or "")[:16].replace("T", " ")
        reasons.append(f"{first.site} shows an earlier time {shown} (taken as clock skew or a copy's date)")
    if len(ranked) > 1:
        reasons.append(f"runner-up {ranked[1].site} (score {score[ranked[1].doc_id]:.1f} vs {score[best.doc_id]:.1f})")

    roles = {}
    parents: dict[int, int | None] = {}
    by_site: dict[str, list[DocInfo]] = defaultdict(list)
    for d in candidates:
        by_site[d.site].append(d)
    for i, role_ in members.items():
        if i == best.doc_id:
            roles[i], parents[i] = ROLE_ORIGINAL, None
            continue
        roles[i] = role_ if role_ == ROLE_COMPILATION else ROLE_COPY
        parents[i] = _likely_parent(docs[i], best, candidates, by_site, sites, profiles, platform_names)
    return Attribution(best.doc_id, confidence, reasons, None, roles, parents, evidence, dict(score))


def _base(site: str) -> str:
    return site.removeprefix("www.")


def _likely_parent(d, best, candidates, by_site, sites, profiles, platform_names) -> int:
    """Where a copy was most likely copied from: its canonical link, its credit, the member its
    原标题 names, the platform whose boilerplate it carries, else the original.

    Not the latest earlier member whose text holds it: tried, that took fuller copies for
    parents and fell from 0.96 to 0.82 of the development corpus' labelled parents.
    """
    me = d.doc_id
    by_url = {_url_key(c.url): c for c in candidates if c.url and c.doc_id != me}
    if d.canonical_url and _url_key(d.canonical_url) in by_url:
        return by_url[_url_key(d.canonical_url)].doc_id
    before = [c for c in candidates if c.doc_id != me and _time_key(c) <= _time_key(d)]
    for credit in d.credits:
        targets = credit_targets(credit, sites, profiles) - {d.site}
        cands = [x for t in targets for x in by_site.get(t, []) if x.doc_id != me]
        if cands:
            return min(cands, key=_time_key).doc_id
    if d.original_title:
        cands = [c for c in candidates if c.doc_id != me and _title_key(c.title) == _title_key(d.original_title)]
        if cands:
            return min(cands, key=_time_key).doc_id
    for platform in platform_of_boilerplate(d.boilerplate, platform_names) - {_base(d.site)}:
        cands = [c for c in before if _base(c.site).endswith(platform)]
        if cands:
            return max(cands, key=_time_key).doc_id
    return best.doc_id
