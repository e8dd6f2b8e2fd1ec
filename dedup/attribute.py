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

import json
import math
import re
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple
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


# A site with fewer pages than this in the crawl is "unknown": one or two pages say nothing about
# what a site does (real crawls: 86 of 100 one-page sites came out as publishers before).
MIN_ROLE_PAGES = 3
# A site whose pages credit this many different sources, on at least half of its pages, reposts
# for a living (an aggregator or a farm), whatever it looks like.
REPOSTER_SOURCES = 3
# Lines that publishers carry as much as reposters do: page furniture, not repost boilerplate.
FURNITURE_LINE = re.compile(r"版权所有|©|copyright|当前位置|您现在的位置|上一篇|下一篇|打印本页|关闭窗口|字体", re.I)


def repost_lines(lines: list[str]) -> list[str]:
    """The boilerplate lines that say a page was reposted (furniture left out)."""
    return [ln for ln in lines if not FURNITURE_LINE.search(ln)]


@dataclass
class SiteTally:
    """What profiling a site needs of its pages, counted a page at a time (no page is kept, so a
    crawl of a million pages is profiled in the memory of its sites)."""

    n: int = 0
    credited: Counter[str] = field(default_factory=Counter)  # name -> pages crediting it
    credit_sets: Counter[frozenset[str]] = field(default_factory=Counter)  # the credits of each page
    with_repost_lines: int = 0  # pages carrying repost boilerplate
    names: Counter[str] = field(default_factory=Counter)  # name the page gives its site -> pages

    def add(self, credits: list[str], boilerplate: list[str], site_names: list[str]) -> None:
        # Each name once a page, first met first: counts that tie keep the order of the pages
        # (a set's order changes with the hash seed of the process, and so did the order of a
        # site's names, from one scan of the same crawl to the next).
        self.n += 1
        self.credited.update(dict.fromkeys(credits).keys())
        self.credit_sets[frozenset(credits)] += 1
        self.with_repost_lines += bool(repost_lines(boilerplate))
        self.names.update(dict.fromkeys(site_names).keys())

    def to_json(self) -> str:
        return json.dumps(
            {
                "n": self.n,
                "credited": dict(self.credited),
                "credit_sets": [[sorted(k), c] for k, c in self.credit_sets.items()],
                "with_repost_lines": self.with_repost_lines,
                "names": dict(self.names),
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, blob: str) -> SiteTally:
        d = json.loads(blob)
        return cls(
            d["n"],
            Counter(d["credited"]),
            Counter({frozenset(k): c for k, c in d["credit_sets"]}),
            d["with_repost_lines"],
            Counter(d["names"]),
        )


def tally_sites(site_docs: dict[str, list[DocInfo]], site_names: dict[str, list[list[str]]]) -> dict[str, SiteTally]:
    """The tallies of pages held in memory (site_names: per site, each page's names for it)."""
    out: dict[str, SiteTally] = {}
    for site, docs in site_docs.items():
        t = out[site] = SiteTally()
        names = site_names.get(site, [])
        for k, d in enumerate(docs):
            t.add(d.credits, d.boilerplate, names[k] if k < len(names) else [])
    return out


def house_credits(tallies: dict[str, SiteTally]) -> dict[str, set[str]]:
    """Site -> the credits that are its own name: carried by most of its pages, and either no other
    site's house credit or close to the site's own title name (a city paper 上饶日报 and its news
    site 上饶新闻网 share their place name). A name several sites credit alike is a source they
    share: a government site reposting the city paper is not the paper."""
    mostly = {site: {name for name, c in t.credited.items() if c >= max(2, 0.5 * t.n)} for site, t in tallies.items()}
    claimed: Counter[str] = Counter(name for names in mostly.values() for name in names)
    out = {}
    for site, names in mostly.items():
        titles = set(tallies[site].names)
        out[site] = {n for n in names if claimed[n] == 1 or any(_akin(n, t) for t in titles)}
    return out


def _akin(a: str, b: str) -> bool:
    """Two outlet names of one place: the same first two characters, both CJK (上饶日报 / 上饶新闻网)."""
    return len(a) >= 3 and len(b) >= 3 and a[:2] == b[:2] and all("\u4e00" <= ch <= "\u9fff" for ch in a[:2])


def profile_sites(site_docs: dict[str, list[DocInfo]], site_names: dict[str, list[list[str]]], sources: list[Source]):
    """profile_tallies of pages held in memory."""
    return profile_tallies(tally_sites(site_docs, site_names), sources)


def profile_tallies(tallies: dict[str, SiteTally], sources: list[Source]) -> dict[str, SiteProfile]:
    """Names and role of every site in the crawl.

    A site's own names: what its pages' titles end with, and its house credits (`house_credits`).
    Its role: the sources file, else `.gov.cn` means a publisher; else from what the site does
    across the crawl: too few pages say nothing (unknown); pages that mostly carry repost
    boilerplate make a content farm; pages that credit many different sources make a reposter
    (platform); otherwise a publisher.
    """
    profiles: dict[str, SiteProfile] = {}
    # Names of known sources: a site whose pages mostly credit 新华社 is not 新华社.
    known_names = {_norm_name(n): s for s in sources for n in (s.name, *s.aliases)}
    house = house_credits(tallies)
    for site, t in tallies.items():
        p = SiteProfile(site=site, n_documents=t.n)
        known = source_for_site(site, sources)
        n = t.n
        for name, c in t.names.most_common():
            if c >= max(2, 0.5 * n) or (n <= 2 and c):
                p.names.append(name)
        for name in sorted(house.get(site, ())):
            if name not in p.names:
                p.names.append(name)
        p.names = [x for x in p.names if known_names.get(_norm_name(x)) in (None, known)]
        if known:
            p.names = [known.name, *known.aliases, *p.names]
            p.role, p.role_reason = known.role, f"listed as {known.role} ({known.name})"
        elif site.endswith(".gov.cn"):
            p.role, p.role_reason = "publisher", "government site (.gov.cn)"
        else:
            p.role, p.role_reason = _learned_role(t, {_norm_name(x) for x in p.names})
        profiles[site] = p
    return profiles


def _learned_role(t: SiteTally, own: set[str]) -> tuple[str, str]:
    """A site's role from what its pages do, and why."""
    n = t.n
    if n < MIN_ROLE_PAGES:
        return "unknown", f"{n} page{'s' if n > 1 else ''} in the crawl: too few to tell"
    if t.with_repost_lines >= 0.5 * n:
        return "farm", f"{t.with_repost_lines} of its {n} pages carry repost boilerplate"
    others = {cs: {c for c in cs if _norm_name(c) not in own} for cs in t.credit_sets}
    crediting = sum(k for cs, k in t.credit_sets.items() if others[cs])
    sources = {c for cs in others.values() for c in cs}
    if len(sources) >= REPOSTER_SOURCES and crediting >= 0.5 * n:
        return "platform", f"{crediting} of its {n} pages credit {len(sources)} different sources"
    return "publisher", f"{n} pages, {crediting} crediting another source"


def _title_key(title: str) -> str:
    """A title for comparison: letters, digits and CJK only, lower case."""
    return _NOT_ALNUM.sub("", title.lower())


# What str.isalnum() is not: Python's \w is isalnum() or "_" (the same on every code point).
_NOT_ALNUM = re.compile(r"[\W_]+")


@lru_cache(maxsize=65_536)  # the same credits and site names are compared for every cluster
def _norm_name(s: str) -> str:
    return re.sub(r"[\s·•]+", "", s).lower()


def credit_targets(credit: str, members_sites: set[str], profiles: dict[str, SiteProfile]) -> set[str]:
    """The member sites a credited name points to: by a site's name or by its domain."""
    c = _norm_name(credit)
    return {
        site
        for site in members_sites
        if _points_to(c, site, _norm_names(tuple(profiles[site].names)) if site in profiles else ())
    }


@lru_cache(maxsize=65_536)
def _norm_names(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_norm_name(n) for n in names)


# The same credits are compared with the same sites for cluster after cluster (145,000 calls of
# credit_targets at 100,000 documents, 4.5 s of attribution when each compared every name).
@lru_cache(maxsize=262_144)
def _points_to(c: str, site: str, names: tuple[str, ...]) -> bool:
    """Whether a normalized credited name `c` names this site: its domain, or one of its `names`
    (normalized)."""
    if c == site or c.endswith("." + site) or site.endswith("." + c):
        return True
    return any(n == c or (len(n) >= 3 and len(c) >= 3 and (n in c or c in n)) for n in names)


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
    return _utc_key(d.published_at, d.time_confidence < 0.7, d.fetched_at)


# Attribution sorts members by time again and again (216,000 keys for 1,533 clusters of a 100k
# rescan, 1 s): each distinct stored time is parsed once.
@lru_cache(maxsize=65_536)
def _utc_key(when: str | None, date_only: bool, fetched_at: str | None) -> str:
    if not when:
        when, date_only = fetched_at, False
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
W_MIRROR = -1.0  # a big5 gateway or mobile host of another member's site: the same page, served again


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


@dataclass
class Case:
    """One cluster as attribution sees it: its members and what they say about each other."""

    members: dict[int, str]
    docs: dict[int, DocInfo]
    profiles: dict[str, SiteProfile]
    overlaps: dict[tuple[int, int], float]
    platform_names: dict[str, str]
    candidates: list[DocInfo] = field(default_factory=list)  # members that may be the original
    everyone: list[DocInfo] = field(default_factory=list)
    sites: set[str] = field(default_factory=set)
    foreign: dict[int, list[str]] = field(default_factory=dict)  # doc -> credits naming another source
    votes: dict[str, set[int]] = field(default_factory=dict)  # member site -> docs crediting it
    voter_names: dict[str, set[str]] = field(default_factory=dict)
    external: Counter[str] = field(default_factory=Counter)  # credited names no member is
    # credit -> the member sites it points to (credit_targets over `sites`): the copies of one
    # story repeat the same credits (8 of a 1M crawl's +1 % rescan's 135 s went to asking again)
    _targets: dict[str, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)

    def role(self, d: DocInfo) -> str:
        return self.profiles[d.site].role if d.site in self.profiles else "unknown"

    def targets(self, credit: str) -> frozenset[str]:
        """The member sites `credit` points to."""
        found = self._targets.get(credit)
        if found is None:
            found = self._targets[credit] = frozenset(credit_targets(credit, self.sites, self.profiles))
        return found


def read_case(members, docs, profiles, overlaps, platform_names) -> Case:
    """The cluster's members and their credits: whom each credits, and who is credited."""
    case = Case(members, docs, profiles, overlaps or {}, platform_names or {})
    case.candidates = [docs[i] for i, r in members.items() if r != ROLE_COMPILATION]
    case.everyone = [docs[i] for i in members]
    case.sites = {d.site for d in case.everyone}
    votes: dict[str, set[int]] = defaultdict(set)
    voter_names: dict[str, set[str]] = defaultdict(set)
    for d in case.everyone:
        own = {_norm_name(n) for n in (profiles[d.site].names if d.site in profiles else [])}
        for credit in d.credits:
            if _norm_name(credit) in own:
                continue
            case.foreign.setdefault(d.doc_id, []).append(credit)
            targets = case.targets(credit) - {d.site}
            for t in targets:
                votes[t].add(d.doc_id)
                voter_names[t].add(credit)
            if not targets:
                case.external[credit] += 1
    case.votes, case.voter_names = dict(votes), dict(voter_names)
    return case


def credited_evidence(case: Case) -> list[Evidence]:
    """Other members' credit lines name this member's site."""
    out = []
    for d in case.candidates:
        n = len(case.votes.get(d.site, ()))
        if n:
            names = ", ".join(sorted(case.voter_names[d.site]))
            who = "another member credits" if n == 1 else f"{n} other members credit"
            out.append(Evidence(d.doc_id, "credited", W_CREDITED * min(n, 3), f"{who} {names}, which is this site"))
    return out


def canonical_evidence(case: Case) -> list[Evidence]:
    """Canonical links between members: to this page (+), from this page to another (-)."""
    out = []
    by_url = {_url_key(d.url): d for d in case.candidates if d.url}
    ids = {c.doc_id for c in case.candidates}
    for d in case.everyone:
        if d.canonical_url and _url_key(d.canonical_url) != _url_key(d.url or d.canonical_url):
            target = by_url.get(_url_key(d.canonical_url))
            if target is not None and target.doc_id != d.doc_id:
                out.append(Evidence(target.doc_id, "canonical", W_CANONICAL, f"{d.site} links to it as canonical"))
                if d.doc_id in ids:
                    out.append(
                        Evidence(d.doc_id, "points_away", W_POINTS_AWAY, f"its canonical link points to {target.site}")
                    )
    return out


def titled_evidence(case: Case) -> list[Evidence]:
    """原标题 lines: a retitled copy names the title the story had where it was first published."""
    by_title: dict[str, list[DocInfo]] = defaultdict(list)
    for d in case.candidates:
        if d.title:
            by_title[_title_key(d.title)].append(d)
    titled: dict[int, set[int]] = defaultdict(set)
    for d in case.everyone:
        if d.original_title:
            for target in by_title.get(_title_key(d.original_title), []):
                if target.doc_id != d.doc_id and _title_key(target.title) != _title_key(d.title):
                    titled[target.doc_id].add(d.doc_id)
    out = []
    for doc_id, who in titled.items():
        n = len(who)
        detail = "another member gives its title as 原标题" if n == 1 else f"{n} other members give its title as 原标题"
        out.append(Evidence(doc_id, "titled", W_TITLED * min(n, 2), detail))
    return out


def role_evidence(case: Case) -> list[Evidence]:
    """The kind of site: publishers write stories, platforms and farms copy them."""
    out = []
    for d in case.candidates:
        r = case.role(d)
        reason = case.profiles[d.site].role_reason if d.site in case.profiles else ""
        out.append(
            Evidence(d.doc_id, "site_role", W_ROLE.get(r, 1.0), f"{r} site ({reason})" if reason else f"{r} site")
        )
    return out


def copy_marks_evidence(case: Case) -> list[Evidence]:
    """What marks a page as a copy: it credits another source; it carries a platform's boilerplate."""
    out = []
    for d in case.candidates:
        if d.doc_id in case.foreign:
            out.append(
                Evidence(d.doc_id, "credits_other", W_CREDITS_OTHER, f"it credits {', '.join(case.foreign[d.doc_id])}")
            )
        copied_from = platform_of_boilerplate(d.boilerplate, case.platform_names) - {_base(d.site)}
        if copied_from and not any(_base(d.site).endswith(p) for p in copied_from):
            detail = f"it carries {', '.join(sorted(copied_from))} boilerplate"
            out.append(Evidence(d.doc_id, "foreign_boilerplate", W_FOREIGN_BOILERPLATE, detail))
    return out


def time_evidence(case: Case) -> list[Evidence]:
    """The earliest credible publish time (a crawl time as an upper bound); no time at all."""
    timed = sorted((d for d in case.candidates if d.published_at or d.fetched_at), key=_time_key)
    first_key = _time_key(timed[0])[:16] if timed else None
    out = []
    for d in case.candidates:
        if d.published_at:
            if d.time_confidence >= 0.7:
                detail = f"the earliest publish time of the cluster, {d.published_at[:16].replace('T', ' ')}"
            else:
                detail = f"the earliest publish date of the cluster, {d.published_at[:10]} (the page gives no time)"
            if _time_key(d)[:16] == first_key:
                out.append(Evidence(d.doc_id, "earliest", W_EARLIEST, detail))
        elif d.fetched_at and _time_key(d)[:16] == first_key:
            when = d.fetched_at[:16].replace("T", " ")
            out.append(
                Evidence(
                    d.doc_id, "earliest", W_EARLIEST, f"fetched by a crawler at {when}, before any other member's time"
                )
            )
        else:
            out.append(Evidence(d.doc_id, "no_time", W_NO_TIME, "no publish time on the page"))
    return out


def fullness_evidence(case: Case) -> list[Evidence]:
    """The member that holds the others' text, and the truncated copies inside it."""
    ids = {d.doc_id for d in case.candidates}
    inside: dict[int, int] = defaultdict(int)  # member -> members whose text lies inside it
    held_by: dict[int, int] = defaultdict(int)  # member -> members that hold its text
    # From the pairs with an overlap (the verified ones), not every pair of members: a cluster of
    # a few hundred copies has ~7 verified pairs a member, not hundreds.
    for (a, b), share in case.overlaps.items():
        if share >= 0.8 and a != b and a in ids and b in ids:
            inside[a] += 1
            held_by[b] += 1
    out = []
    for d in case.candidates:
        n_in, n_held = inside.get(d.doc_id, 0), held_by.get(d.doc_id, 0)
        if n_in and not n_held:
            out.append(
                Evidence(
                    d.doc_id, "fullest", W_FULLEST, f"holds the text of {n_in} shorter member{'s' if n_in > 1 else ''}"
                )
            )
        elif n_held and not n_in:
            out.append(
                Evidence(
                    d.doc_id,
                    "inside",
                    W_INSIDE,
                    f"its text lies inside {n_held} fuller member{'s' if n_held > 1 else ''}",
                )
            )
    return out


def twin_evidence(case: Case) -> list[Evidence]:
    """A mirror (a big5 gateway, a mobile host) of another member's page is that page, not its source."""
    out = []
    primary = {twin_key(d.site) for d in case.candidates if not is_mirror_host(d.site)}
    for d in case.candidates:
        if is_mirror_host(d.site) and twin_key(d.site) in primary:
            out.append(Evidence(d.doc_id, "mirror", W_MIRROR, f"{d.site} mirrors another member's site"))
    return out


EVIDENCE = (
    credited_evidence,
    canonical_evidence,
    titled_evidence,
    role_evidence,
    copy_marks_evidence,
    time_evidence,
    fullness_evidence,
    twin_evidence,
)
# Evidence that a member itself is where the story was first published; without any (no member
# credited or linked to, no publisher that credits no one else) the crawl does not hold the original.
POSITIVE_KINDS = frozenset({"credited", "canonical", "titled"})


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
    case = read_case(members, docs, profiles, overlaps, platform_names)
    evidence = [e for fn in EVIDENCE for e in fn(case)]
    score: dict[int, float] = defaultdict(float)
    for e in evidence:
        score[e.doc_id] += e.weight
    outside = external_verdict(case, evidence)
    if outside is not None:
        name, confidence, reasons = outside
        return Attribution(
            None, confidence, reasons, name, dict(members), {i: None for i in members}, evidence, dict(score)
        )
    return rank(case, evidence, dict(score))


def external_verdict(case: Case, evidence: list[Evidence]) -> tuple[str | None, float, list[str]] | None:
    """(source, confidence, reasons) when the original is not among the members, else None.

    No member is credited, linked to or named by 原标题, and none is a publisher that credits no
    one else: the members are all copies. Their credits name the source when they do.
    """
    if any(e.kind in POSITIVE_KINDS for e in evidence):
        return None
    if any(case.role(d) == "publisher" and d.doc_id not in case.foreign for d in case.candidates):
        return None
    if not case.external:
        reasons = [
            "no member is credited by the others or published on a known publisher's site, "
            "and none names its source: the original is probably outside the crawl"
        ]
        return None, 0.5, reasons
    name, count = case.external.most_common(1)[0]
    who = "1 copy credits" if count == 1 else f"{count} copies credit"
    # The credited source may be a site of the crawl that holds no copy of this story.
    crawled = sorted(credit_targets(name, set(case.profiles), case.profiles))
    where = f"a site of the crawl ({', '.join(crawled[:3])}) that holds no copy" if crawled else "not in the crawl"
    reasons = [f"{who} {name}, which is {where}", "no publisher among the members: the original is external"]
    # Its address, when the copies link to it (canonical/og:url on a site outside the crawl).
    links = Counter(
        d.canonical_url
        for d in case.everyone
        if d.canonical_url and (urlsplit(d.canonical_url).hostname or "") not in case.sites
    )
    if links:
        url = links.most_common(1)[0][0]
        reasons.append(f"the copies link to {url}")
        name = f"{name} ({url})"
    return name, min(0.9, 0.5 + 0.1 * (count + 1)), reasons


def rank(case: Case, evidence: list[Evidence], score: dict[int, float]) -> Attribution:
    """The highest score wins; a tie is said to be one; every copy gets a likely parent."""
    ranked = sorted(case.candidates, key=lambda d: (-score.get(d.doc_id, 0.0), _time_key(d), d.path))
    best = ranked[0]
    runner = ranked[1] if len(ranked) > 1 else None
    margin = score.get(best.doc_id, 0.0) - score.get(runner.doc_id, 0.0) if runner else 3.0
    # Confidence from the margin over the runner-up: 0 margin (a coin toss between two equals)
    # gives 0.5, a credited publisher over an uncredited platform copy (margin >= 4) about 0.95.
    confidence = round(min(0.99, 1.0 - 0.5 * math.exp(-0.6 * margin)), 2)
    reasons = [e.detail for e in evidence if e.doc_id == best.doc_id and e.weight > 0]
    reasons += [f"but {e.detail}" for e in evidence if e.doc_id == best.doc_id and e.weight < 0]
    timed = sorted((d for d in case.candidates if d.published_at or d.fetched_at), key=_time_key)
    if timed and timed[0].doc_id != best.doc_id and _time_key(timed[0])[:16] != _time_key(best)[:16]:
        first = timed[0]
        shown = (first.published_at or first.fetched_at or "")[:16].replace("T", " ")
        reasons.append(f"{first.site} shows an earlier time {shown} (taken as clock skew or a copy's date)")
    if runner is not None:
        mine, theirs = score.get(best.doc_id, 0.0), score.get(runner.doc_id, 0.0)
        if margin == 0:
            reasons.append(f"a tie with {runner.site} (both score {mine:.1f}): the earlier or first listed is shown")
        else:
            reasons.append(f"next best: {runner.site} (score {theirs:.1f} against {mine:.1f})")
    roles: dict[int, str] = {}
    parents: dict[int, int | None] = {}
    lineage = Lineage.of(case)
    for i, role_ in case.members.items():
        if i == best.doc_id:
            roles[i], parents[i] = ROLE_ORIGINAL, None
            continue
        roles[i] = role_ if role_ == ROLE_COMPILATION else ROLE_COPY
        parents[i] = _likely_parent(case.docs[i], best, lineage)
    return Attribution(best.doc_id, confidence, reasons, None, roles, parents, evidence, score)


MIRROR_PREFIXES = ("big5.", "m.", "wap.", "mobile.", "3g.")


def is_mirror_host(site: str) -> bool:
    """A host that serves another host's pages: a big5 gateway, a mobile edition."""
    return site.startswith(MIRROR_PREFIXES)


def twin_key(site: str) -> str:
    """The host a mirror serves: big5.www.gov.cn -> gov.cn, m.fx361.cc -> fx361.cc, www.x.cn -> x.cn."""
    host = site
    while True:
        for prefix in (*MIRROR_PREFIXES, "www."):
            if host.startswith(prefix) and host.count(".") >= 2:
                host = host[len(prefix) :]
                break
        else:
            return host


def _base(site: str) -> str:
    return site.removeprefix("www.")


class Lineage(NamedTuple):
    """What finding every copy's parent reads of a cluster, worked out once for all its members
    (per member it made attribution quadratic in the cluster's size: ~1.4 million time keys at
    100,000 documents)."""

    case: Case
    by_site: dict[str, list[DocInfo]]  # candidates on each member site
    by_url: dict[str, list[DocInfo]]  # candidates by the key of their URL, in candidate order
    time: dict[int, str]  # candidate -> its time key

    @classmethod
    def of(cls, case: Case) -> Lineage:
        by_site: dict[str, list[DocInfo]] = defaultdict(list)
        by_url: dict[str, list[DocInfo]] = defaultdict(list)
        for c in case.candidates:
            by_site[c.site].append(c)
            if c.url:
                by_url[_url_key(c.url)].append(c)
        return cls(case, by_site, by_url, {c.doc_id: _time_key(c) for c in case.candidates})

    def key(self, d: DocInfo) -> str:
        return self.time[d.doc_id] if d.doc_id in self.time else _time_key(d)


def _likely_parent(d: DocInfo, best: DocInfo, lineage: Lineage) -> int:
    """Where a copy was most likely copied from: its canonical link, its credit, the member its
    原标题 names, the platform whose boilerplate it carries, else the original.

    Not the latest earlier member whose text holds it: tried, that took fuller copies for
    parents and fell from 0.96 to 0.82 of the development corpus' labelled parents.
    """
    me, case, key = d.doc_id, lineage.case, lineage.key
    if d.canonical_url:
        linked = [c for c in lineage.by_url.get(_url_key(d.canonical_url), ()) if c.doc_id != me]
        if linked:
            return linked[-1].doc_id  # the last of one URL, as a dict of them kept it
    for credit in d.credits:
        # Sites in order, not in set order (string hashes differ between processes): of candidates
        # with equal times the first is taken, and two runs must take the same one.
        targets = sorted(case.targets(credit) - {d.site})
        cands = [x for t in targets for x in lineage.by_site.get(t, []) if x.doc_id != me]
        if cands:
            return min(cands, key=key).doc_id
    if d.original_title:
        title = _title_key(d.original_title)
        cands = [c for c in case.candidates if c.doc_id != me and _title_key(c.title) == title]
        if cands:
            return min(cands, key=key).doc_id
    platforms = sorted(platform_of_boilerplate(d.boilerplate, case.platform_names) - {_base(d.site)})
    if platforms:
        mine = key(d)
        before = [c for c in case.candidates if c.doc_id != me and key(c) <= mine]
        for platform in platforms:
            cands = [c for c in before if _base(c.site).endswith(platform)]
            if cands:
                return max(cands, key=key).doc_id
    return best.doc_id
