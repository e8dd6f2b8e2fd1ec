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

import re
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from dedup import DATA_DIR
from dedup.errors import ConfigError
from dedup.models import ROLE_COMPILATION, ROLE_COPY, ROLE_ORIGINAL

DEFAULT_SOURCES = DATA_DIR / "sources.toml"
ROLES = ("publisher", "platform", "farm", "unknown")
ROLE_RANK = {"publisher": 0, "unknown": 1, "platform": 2, "farm": 3}


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


@dataclass
class Attribution:
    original_id: int | None
    confidence: float
    reasons: list[str]
    external_source: str | None
    roles: dict[int, str]
    parents: dict[int, int | None]


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
    for site, docs in site_docs.items():
        p = SiteProfile(site=site, n_documents=len(docs))
        counts: Counter[str] = Counter()
        for names in site_names.get(site, []):
            counts.update(set(names))
        credit_counts: Counter[str] = Counter()
        for d in docs:
            credit_counts.update(set(d.credits))
        n = len(docs)
        for name, c in (counts + credit_counts).most_common():
            if c >= max(2, 0.5 * n) or (n == 1 and counts[name]):
                p.names.append(name)
        known = source_for_site(site, sources)
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


def _time_key(d: DocInfo) -> str:
    """Sortable time; a date without a time sorts at the end of its day (it cannot claim more)."""
    if not d.published_at:
        return "9999"
    if d.time_confidence < 0.7:
        return d.published_at[:10] + "T23:59:59"
    return d.published_at[:19]


def pick_original(members: dict[int, str], docs: dict[int, DocInfo], profiles: dict[str, SiteProfile]) -> Attribution:
    """Choose the probable original of a cluster and say why."""
    candidates = [docs[i] for i, r in members.items() if r != ROLE_COMPILATION]
    sites = {d.site for d in docs.values() if d.doc_id in members}
    reasons: list[str] = []

    # Credit votes: which member sites do the other members name as their source?
    votes: Counter[str] = Counter()
    voters: dict[str, list[str]] = defaultdict(list)
    foreign: dict[int, list[str]] = {}  # doc -> names it credits that are not its own site
    external: Counter[str] = Counter()
    for d in (docs[i] for i in members):
        own = profiles[d.site].names if d.site in profiles else []
        own_norm = {_norm_name(n) for n in own}
        for credit in d.credits:
            if _norm_name(credit) in own_norm:
                continue
            targets = credit_targets(credit, sites, profiles) - {d.site}
            foreign.setdefault(d.doc_id, []).append(credit)
            if targets:
                for t in targets:
                    votes[t] += 1
                    voters[t].append(credit)
            else:
                external[credit] += 1

    def role(d: DocInfo) -> str:
        return profiles[d.site].role if d.site in profiles else "unknown"

    def key(d: DocInfo):
        return (
            -votes.get(d.site, 0),
            ROLE_RANK.get(role(d), 1),
            d.doc_id in foreign,  # a member that credits someone else is a copy
            _time_key(d),
            d.path,
        )

    publishers = [d for d in candidates if role(d) == "publisher" and d.doc_id not in foreign]
    ext_name, ext_count = external.most_common(1)[0] if external else (None, 0)
    if not votes and not publishers and ext_name and ext_count >= 2:
        reasons.append(f"{ext_count} members credit {ext_name}, which is not in the crawl")
        reasons.append("no publisher among the members: the original is external")
        roles = {i: r for i, r in members.items()}
        return Attribution(None, min(0.9, 0.5 + 0.1 * ext_count), reasons, ext_name, roles, {i: None for i in members})

    ranked = sorted(candidates, key=key)
    best = ranked[0]
    confidence = 0.4
    if votes.get(best.site):
        n = votes[best.site]
        names = ", ".join(sorted(set(voters[best.site])))
        reasons.append(f"{n} member{'s' if n > 1 else ''} credit {names} = {best.site}")
        confidence += 0.3
    r = role(best)
    reasons.append(f"{r} site ({profiles[best.site].role_reason})" if best.site in profiles else f"{r} site")
    if r == "publisher":
        confidence += 0.15
    if best.doc_id in foreign:
        reasons.append(f"but it credits {', '.join(foreign[best.doc_id])}")
        confidence -= 0.2
    timed = sorted((d for d in candidates if d.published_at), key=_time_key)
    if best.published_at:
        how = "time" if best.time_confidence >= 0.7 else "date only"
        when = best.published_at[:16].replace("T", " ") if how == "time" else best.published_at[:10]
        if timed and timed[0].doc_id == best.doc_id:
            reasons.append(f"earliest credible time {when} ({how})")
            confidence += 0.15
        elif timed:
            first = timed[0]
            reasons.append(
                f"published {when}; {first.site} shows an earlier time "
                f"{first.published_at[:16].replace('T', ' ')} (taken as clock skew or a copy's date)"
            )
            confidence -= 0.1
    else:
        reasons.append("no publish time on the page")
        confidence -= 0.1
    if len(ranked) > 1 and key(ranked[1])[:3] == key(best)[:3]:
        confidence -= 0.1  # the runner-up has the same credit, role and standing: time alone decides
    confidence = max(0.05, min(0.99, confidence))

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
        parent = best.doc_id
        d = docs[i]
        # A copy that credits another member's site was most likely copied from that member.
        for credit in d.credits:
            targets = credit_targets(credit, sites, profiles) - {d.site}
            cands = [x for t in targets for x in by_site.get(t, []) if x.doc_id != i]
            if cands:
                parent = min(cands, key=_time_key).doc_id
                break
        parents[i] = parent
    return Attribution(best.doc_id, round(confidence, 2), reasons, None, roles, parents)
