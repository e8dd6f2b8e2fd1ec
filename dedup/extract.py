"""SourceFile -> Documents (or Skipped): the readers for .html, .txt, .json and .jsonl.

Each reader returns the main text as published plus the metadata attribution needs: title,
publish time (with where it came from and how sure it is), credit lines, canonical URL and the
names the page gives its own site. Nothing here compares documents.
"""

from __future__ import annotations

import codecs
import html
import json
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import lxml.etree

from dedup.containers import open_container
from dedup.credits import add_sources, is_credit_line, source_names
from dedup.dates import find_times, parse_time, year_from_path
from dedup.decode import DecodeFailure, decode_bytes
from dedup.models import Document, Skipped, SourceFile

TITLE_SEPARATORS = re.compile(r"\s*(?:_|\||｜|-{1,2}|–|—|::)\s*")

DROP_TAGS = {
    "script", "style", "noscript", "template", "iframe", "form", "textarea", "button", "select",
    "input", "header", "footer", "nav", "aside", "svg", "canvas", "video", "audio", "object", "head",
}  # fmt: skip
BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "tr", "blockquote", "pre", "dd", "dt", "dl", "figure", "figcaption", "center", "td",
}  # fmt: skip
BLOCK_OR_BR = frozenset(BLOCK_TAGS | {"br"})  # what opens a new line in block_text
# Class/id words of page furniture: comments, sharing, related-story lists, sidebars, footers.
FURNITURE = re.compile(
    r"(?:^|[-_ ])(?:comments?|cmt|discuss|share|relate[ds]?|related|recommend|sidebar|"
    r"nav|navigation|menu|crumbs?|breadcrumbs?|footer|foot|copyright|statement|disclaimer|"
    r"other-q|hot-q|prenext|pre-next|next-post|post_next_post|toolbar|login|search|"
    r"advert|banner|qrcode|gov-top|topbar|top-bar|weui-msg)(?:$|[-_ ])",
    re.I,
)
# Words that usually mean furniture but also name layout columns ("right", "side"): such an
# element is kept when it holds most of the page's paragraph text.
WEAK_FURNITURE = re.compile(r"(?:^|[-_ ])(?:side|hot|tags?|ad|ads|right|rightbar)(?:$|[-_ ])", re.I)
HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
TIME_META = (
    "article:published_time",
    "og:release_date",
    "datepublished",
    "pubdate",
    "publishdate",
    "publish_date",
    "publishtime",
    "publish_time",
    "apub:time",
    "ptime",
    "release_date",
    "dc.date.issued",
    "dc.date",
    "date",
)
URL_KEYS = ("url", "link", "href", "source_url", "canonical_url", "article_url")
TITLE_KEYS = ("title", "headline", "name")
TEXT_KEYS = ("content", "text", "body", "article", "article_text", "content_text", "contents", "content_html", "html")
TIME_KEYS = (
    "publish_time", "published_at", "published", "pub_time", "pubtime", "pub_date", "publish_date",
    "datePublished", "date_published", "pubDate", "date", "time", "created_at", "create_time", "ctime",
)  # fmt: skip
SOURCE_KEYS = ("source", "source_name", "media", "media_name", "site_name", "from", "author_source")


HOST = re.compile(r"^[a-z0-9-]+(?:\.[a-z0-9-]+)+(?::\d+)?$")


def site_of(path: str, url: str, kind: str = "") -> str:
    """The site a document belongs to.

    A mirror's top folder names the host the page was fetched from (wget, httrack); a page's own
    canonical link may point elsewhere (syndication), so it is not trusted for the site. A feed
    (.jsonl) mixes sites: each record's URL says where it is from.
    """
    top = path.split("/", 1)[0].lower()
    if kind != "jsonl" and "/" in path and HOST.match(top):
        return top
    host = urlsplit(url).hostname if url else None
    return host.lower() if host else ""


def split_title(title: str) -> tuple[str, list[str]]:
    """'Story_Site Name' -> ('Story', ['Site Name']): a page title usually ends with the site's name."""
    title = title.strip()
    names: list[str] = []
    while True:
        seps = list(TITLE_SEPARATORS.finditer(title))
        if not seps:
            break
        last = seps[-1]
        tail = title[last.end() :].strip()
        # The site name is short and last; a short piece like '1-4月' inside the title is not one.
        if not tail or len(tail) > 16 or last.start() < 4:
            break
        names.insert(0, tail)
        title = title[: last.start()].strip()
    return title, names


# --------------------------------------------------------------------------- html


# The tree is parsed with lxml.etree's HTML parser, which builds the same tree as lxml.html's
# (that one is the same parser with other element classes), without lxml.html's Python class
# lookup each time an element is touched from Python (~80 times a page; read_html went from 0.83
# to 0.48 ms a page). lxml.html's text_content and drop_tree, which that parser gave, are these two.
_HTML_PARSER = lxml.etree.HTMLParser()


def _text_content(el) -> str:
    """All the text inside an element (lxml.html's text_content, XPath string(): both are libxml2's
    xmlNodeGetContent, as is this serialisation, which costs half as much a call)."""
    return lxml.etree.tostring(el, method="text", encoding=str, with_tail=False)


def _drop_tree(el) -> None:
    """Remove an element (with its subtree) from its parent; its tail text stays, joined to what
    came before it (lxml.html's HtmlElement.drop_tree)."""
    parent = el.getparent()
    if el.tail:
        previous = el.getprevious()
        if previous is None:
            parent.text = (parent.text or "") + el.tail
        else:
            previous.tail = (previous.tail or "") + el.tail
    parent.remove(el)


def _class_id(el) -> str:
    return f"{el.get('class', '')} {el.get('id', '')}"


def _is_hidden(el) -> bool:
    if el.get("hidden") is not None or el.get("aria-hidden", "").lower() == "true":
        return True
    style = el.get("style")
    return bool(style and HIDDEN_STYLE.search(style))


def block_text(el) -> str:
    """The text of an element with a line break at every block boundary and <br>."""
    parts: list[str] = []
    append = parts.append
    # iterwalk rather than recursion (libxml2 already caps the nesting depth at 256). Each .tag,
    # .text and .tail makes a new str from libxml2's bytes: read once each.
    for event, node in lxml.etree.iterwalk(el, events=("start", "end")):
        tag = node.tag
        if not isinstance(tag, str):
            tag = ""
        if event == "start":
            if tag in BLOCK_OR_BR:
                append("\n")
            if tag and (text := node.text):
                append(text)
        else:
            if tag in BLOCK_TAGS:
                append("\n")
            if node is not el and (tail := node.tail):
                append(tail)
    return "\n".join(filter(None, map(str.strip, "".join(parts).splitlines())))


INLINE_TAGS = {"span", "font", "strong", "b", "em", "i", "u", "a", "sup", "sub", "small", "big", "img", "br"}
# The children whose text counts for their parent's paragraph score.
SCORED_TAGS = frozenset({"p", "section", "blockquote", "div", "span", "font"} | INLINE_TAGS)


def _is_leaf_block(el) -> bool:
    """A block whose descendants are all inline: a paragraph in all but name."""
    return all(not isinstance(d.tag, str) or d.tag in INLINE_TAGS for d in el.iterdescendants())


def _paragraph_score(el) -> int:
    """Text held directly by an element's paragraphs, links discounted (readability's idea).

    Only direct children count, so the innermost container of the paragraphs wins over the page
    wrappers around it (which hold the headline, the byline and the furniture as well).
    """
    score = 0
    if text := el.text:
        score += len(text.strip())
    for child in el:
        tag = child.tag
        if isinstance(tag, str) and tag in SCORED_TAGS:
            if tag != "p" and not _is_leaf_block(child):
                continue  # a container, judged on its own
            t = _text_content(child).strip()
            links = len(t) if tag == "a" else sum(len(_text_content(a)) for a in child.iter("a"))
            if len(t) - links > 10:
                score += len(t) - 2 * links
        if tail := child.tail:
            score += len(tail.strip())
    return score


def _meta_map(tree) -> dict[str, str]:
    meta: dict[str, str] = {}
    for m in tree.iter("meta"):
        key = (m.get("property") or m.get("name") or m.get("itemprop") or m.get("http-equiv") or "").strip()
        content = m.get("content")
        if key and content is not None and key.lower() not in meta:
            meta[key.lower()] = content.strip()
    return meta


def _json_ld(tree) -> list[dict]:
    out = []
    for s in tree.iter("script"):
        if (s.get("type") or "").lower() == "application/ld+json" and s.text:
            try:
                data = json.loads(s.text)
            except ValueError:
                continue
            items = data if isinstance(data, list) else [data]
            out.extend(d for d in items if isinstance(d, dict))
    return out


SCRIPT_EPOCH = re.compile(r"""\b(?:ct|publish_time|pubtime|create_time|ptime)\s*[=:]\s*["']?(\d{10}|\d{13})["']?""")


def _html_time(tree, meta, ld, header_text, script_text, year_hint):
    """Best publish time: the visible header (it has the minutes), then metadata, then scripts."""
    candidates: list[tuple[str, float, str]] = []
    for key in TIME_META:
        if key in meta:
            got = parse_time(meta[key], year_hint)
            if got:
                candidates.append((got[0], got[1], f"meta {key}"))
                break
    for d in ld:
        for key in ("datePublished", "pubDate", "dateCreated"):
            if d.get(key):
                got = parse_time(d[key], year_hint)
                if got:
                    candidates.append((got[0], got[1], f"json-ld {key}"))
    for iso, conf in find_times(header_text, year_hint)[:1]:
        candidates.append((iso, conf, "page text"))
    m = SCRIPT_EPOCH.search(script_text)
    if m:
        got = parse_time(m.group(1))
        if got:
            candidates.append((got[0], 0.9, "page script timestamp"))
    if not candidates:
        return None, None, 0.0
    # The most precise statement wins; among equals, the first found (metadata before text).
    best = max(candidates, key=lambda c: c[1])
    # A date-only meta and a full visible time on the same day: the visible one is more precise.
    return best[0], best[2], best[1]


def read_html(text: str, path: str, url_hint: str = "") -> Document:
    """Main text and metadata of an HTML page."""
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    try:
        tree = lxml.etree.fromstring(text, _HTML_PARSER)
        if tree is None:
            raise lxml.etree.ParserError("Document is empty")  # as lxml.html.document_fromstring says
    except (lxml.etree.ParserError, ValueError) as exc:
        raise ValueError(f"unparseable HTML: {exc}") from None
    meta = _meta_map(tree)
    ld = _json_ld(tree)
    script_text = " ".join(s.text or "" for s in tree.iter("script") if (s.get("type") or "") != "application/ld+json")
    # find(".//x") is lxml's Python ElementPath around iterdescendants("x"), find("x") around
    # iterchildren("x"): the iterators alone, ~5 us less each.
    title_tag = next(tree.iterdescendants("title"), None)
    page_title = _text_content(title_tag).strip() if title_tag is not None else ""
    story_title, site_names = split_title(page_title)
    for key in ("og:site_name", "sitename", "application-name"):
        if meta.get(key):
            site_names.insert(0, meta[key])
    canonical = ""
    for link in tree.iter("link"):
        if (link.get("rel") or "").lower() == "canonical" and link.get("href"):
            canonical = link.get("href").strip()
            break
    if not canonical:
        canonical = meta.get("og:url", "")
    for d in ld:
        if not canonical and isinstance(d.get("@id"), str) and d["@id"].startswith("http"):
            canonical = d["@id"]
    url = url_hint or canonical

    body = next(tree.iterchildren("body"), None)
    if body is None:
        body = tree
    # Remove what a reader never sees (comments, scripts, hidden elements), then the furniture.
    # A hidden element that holds most of the page's text is not a hidden copy: pages hide their
    # body or article until their scripts have run (WeChat's js_content is visibility:hidden).
    for el in list(body.iter()):
        tag = el.tag  # (the cheap tests first in these loops: getparent makes a Python object)
        if (not isinstance(tag, str) or tag in DROP_TAGS) and el.getparent() is not None:
            _drop_tree(el)
    total = len(_text_content(body)) or 1
    for el in list(body.iter()):
        hidden = el is not body and _is_hidden(el) and el.getparent() is not None
        if hidden and len(_text_content(el)) <= 0.5 * total:
            _drop_tree(el)
    h1 = next(body.iterdescendants("h1"), None)
    h1_text = _text_content(h1).strip() if h1 is not None else ""
    full_visible = block_text(body)

    for el in list(body.iter()):
        tag = el.tag
        if not isinstance(tag, str) or tag in ("body", "article"):
            continue
        if FURNITURE.search(_class_id(el)) and el.getparent() is not None:
            _drop_tree(el)
    total = sum(len(_text_content(p)) for p in body.iter("p")) or 1
    for el in list(body.iter()):
        tag = el.tag
        if not isinstance(tag, str) or tag in ("body", "article") or not WEAK_FURNITURE.search(_class_id(el)):
            continue
        if sum(len(_text_content(p)) for p in el.iter("p")) <= 0.5 * total and el.getparent() is not None:
            _drop_tree(el)
    scores: dict = {}  # element -> _paragraph_score: the descent below asks again for most of them

    def score_of(el) -> int:
        got = scores.get(el)
        if got is None:
            got = scores[el] = _paragraph_score(el)
        return got

    best, best_score = None, 0
    for el in body.iter():
        if not isinstance(el.tag, str) or el.tag in ("p", "a", "h1", "h2", "li"):
            continue
        score = score_of(el)
        if score >= best_score and score > 0:
            best, best_score = el, score
    # Descend while one child holds nearly all of it: the innermost container is the article.
    while best is not None:
        inner = max((c for c in best if isinstance(c.tag, str)), key=score_of, default=None)
        if inner is None or score_of(inner) < 0.9 * best_score:
            break
        best, best_score = inner, score_of(inner)
    main = block_text(best) if best is not None else ""

    # Title: the page's own headline, checked against the <title> and og:title.
    og_title = meta.get("og:title") or meta.get("articletitle") or ""
    title = h1_text or og_title or story_title
    if h1_text and og_title and h1_text != og_title and og_title in page_title:
        title = og_title

    # The header zone (between the headline and the body) carries the time and credit line.
    header = full_visible
    if main:
        first_line = main.split("\n", 1)[0][:30]
        cut = full_visible.find(first_line) if first_line else -1
        if cut > 0:
            header = full_visible[:cut]
    if h1_text and h1_text in header:
        # From a little above the headline (some layouts put the date line over it) to the body;
        # not the whole page top, whose navigation may show today's date.
        header = header[max(0, header.find(h1_text) - 120) :]
    year_hint = year_from_path(url, path)
    published, how, conf = _html_time(tree, meta, ld, header, script_text, year_hint)

    credits: list[str] = []
    for key in ("source", "contentsource", "article:source", "author_source"):
        value = meta.get(key, "")
        add_sources(credits, source_names(value) or [value])  # a bare name, or a "来源:X" line
    add_sources(credits, source_names(header) + source_names(main))
    return Document(
        path=path,
        file_path=path,
        kind="html",
        url=url,
        canonical_url=canonical,
        title=_one_line(title),
        published_at=published,
        time_source=how,
        time_confidence=conf,
        credits=credits,
        site_names=[_one_line(n) for n in site_names if n],
        text=main,
    )


def _one_line(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


# --------------------------------------------------------------------------- txt

TIME_LINE = re.compile(
    r"^\s*(?:发布时间|發布時間|发布日期|發布日期|时间|時間|日期|发表于|發表於)?\s*[:：]?\s*(?:19|20)\d{2}\s*[-/.年]"
)


def read_txt(text: str, path: str) -> Document:
    """A text page: credit and timestamp lines and the title, in either order, then the body."""
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    credits: list[str] = []
    published = how = None
    conf = 0.0
    title = ""
    i = 0
    year_hint = year_from_path(path)
    header_lines = 0  # non-empty lines read as the header
    while i < len(lines) and header_lines < 6:
        ln = lines[i]
        if not ln:
            i += 1
            continue
        if is_credit_line(ln, kinds=("source",)):
            add_sources(credits, source_names(ln))
        elif TIME_LINE.match(ln) and published is None and len(ln) < 40 and (got := parse_time(ln, year_hint)):
            published, conf, how = got[0], got[1], "text header line"
        elif not title and len(ln) <= 80 and header_lines < 3:
            title = ln
        else:
            break
        i += 1
        header_lines += 1
    body = "\n".join(ln for ln in lines[i:] if ln)
    add_sources(credits, source_names(body))
    return Document(
        path=path,
        file_path=path,
        kind="txt",
        title=title,
        published_at=published,
        time_source=how,
        time_confidence=conf,
        credits=credits,
        text=body,
    )


# --------------------------------------------------------------------------- json


def _first(obj: dict, keys) -> object:
    for k in keys:
        v = obj.get(k)
        if v not in (None, ""):
            return v
    return None


def read_record(obj: dict, path: str, file_path: str, kind: str) -> Document:
    """One article object from a .json file or a .jsonl line."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    url = str(_first(obj, URL_KEYS) or "")
    title = str(_first(obj, TITLE_KEYS) or "")
    raw = _first(obj, TEXT_KEYS)
    if isinstance(raw, list):
        raw = "\n".join(str(p) for p in raw)
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("no article text (none of content/text/body)")
    if re.search(r"<(?:p|div|br|span)\b", raw[:2000], re.I):
        doc = read_html(f"<html><body><div>{raw}</div></body></html>", path, url)
        text = doc.text
    else:
        text = "\n".join(ln.strip() for ln in raw.splitlines() if ln.strip())
    year_hint = year_from_path(url, file_path)
    published = how = None
    conf = 0.0
    for key in TIME_KEYS:
        if obj.get(key) not in (None, ""):
            got = parse_time(obj[key], year_hint)
            if got:
                published, conf, how = got[0], got[1], f"json {key}"
                break
    credits: list[str] = []
    src = _first(obj, SOURCE_KEYS)
    if isinstance(src, str):
        add_sources(credits, source_names(src) or [src])  # a bare name, or a "来源:X" line
    add_sources(credits, source_names(text))
    return Document(
        path=path,
        file_path=file_path,
        kind=kind,
        url=url,
        canonical_url=url,
        title=_one_line(title),
        published_at=published,
        time_source=how,
        time_confidence=conf,
        credits=credits,
        text=text,
    )


# --------------------------------------------------------------------------- entry point


def extract_documents(sf: SourceFile) -> list[Document | Skipped]:
    """Read one file into its documents; every failure is a Skipped with a one-line reason.

    A container (WARC, .gz) yields the documents of every page inside it. Every string that leaves
    here is valid Unicode (see clean_strings): the store encodes them as UTF-8.
    """
    if sf.kind in ("warc", "gzip"):
        entries, skips = open_container(sf.path, sf.data)
        out: list[Document | Skipped] = [Skipped(p, reason) for p, reason in skips]
        for e in entries:
            docs = _extract_page(e.path, sf.path, e.kind, e.data, e.url, e.http_charset)
            for d in docs:
                if isinstance(d, Document) and sf.kind == "warc":
                    d.kind = f"warc-{d.kind}"
                    d.fetched_at = e.fetched_at
            out.extend(docs)
    else:
        out = _extract_page(sf.path, sf.path, sf.kind, sf.data)
    for item in out:
        clean_strings(item)
    return out


# A lone surrogate (U+D800-U+DFFF not in a pair): json.loads accepts "\ud800" escapes, UTF-8 cannot encode it.
SURROGATE = re.compile("[\ud800-\udfff]")


def clean_str(s: str) -> str:
    """s with every lone surrogate replaced by U+FFFD (s itself, uncopied, when it has none)."""
    return SURROGATE.sub("\ufffd", s) if SURROGATE.search(s) else s


def clean_strings(item: Document | Skipped) -> None:
    """Replace lone surrogates in every str and list-of-str field of a Document or Skipped, in place."""
    # str.isascii() is O(1): most fields (paths, URLs, times) need no search.
    for name, value in vars(item).items():
        if isinstance(value, str):
            if not value.isascii() and SURROGATE.search(value):
                setattr(item, name, clean_str(value))
        elif isinstance(value, list) and any(
            isinstance(v, str) and not v.isascii() and SURROGATE.search(v) for v in value
        ):
            setattr(item, name, [clean_str(v) if isinstance(v, str) else v for v in value])


CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")

# What a malformed page or record can raise while it is read: bad JSON or HTML (ValueError), nesting too
# deep for the parser (RecursionError), Infinity where a time is expected (OverflowError in int()).
RECORD_ERRORS = (ValueError, OverflowError, RecursionError)


def _jsonl_lines(path: str, data: bytes, http_charset: str | None) -> Iterator[tuple[int, str, str] | Skipped]:
    """(line index, text, encoding) of each non-blank line of a .jsonl file, or a Skipped for a line or the file.

    The whole file is decoded first, as any page. When that fails, each line is decoded on its own
    (strict UTF-8, else the layered decoder, whose result must then hold Chinese), so one line of another
    codec or of binary junk costs that record only. Line indexes are those of the bytes split on LF, the
    same as of the decoded text split on LF: the store keys the records on them (`file#n`).
    """
    try:
        decoded = decode_bytes(data, http_charset)
    except DecodeFailure as exc:
        whole_failure = str(exc)
    else:
        for n, line in enumerate(decoded.text.split("\n")):
            if line.strip():
                yield n, line, decoded.encoding
        return
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)) or (
        len(data) >= 2 and (data[0] == 0) != (data[1] == 0)  # '{' as UTF-16 without a byte-order mark
    ):
        yield Skipped(path, whole_failure)  # UTF-16/32: an LF byte is not a line end there
        return
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    learned: str | None = None  # the codec of the last line that needed the decoder: tried first next time
    for n, raw in enumerate(data.split(b"\n")):
        if not raw.strip():
            continue
        try:
            yield n, raw.decode("utf-8"), "utf-8"
            continue
        except UnicodeDecodeError:
            pass
        try:
            got = decode_bytes(raw, http_charset or learned)
        except DecodeFailure as exc:
            yield Skipped(f"{path}#{n}", f"line {n + 1}: {_short(exc)}")
            continue
        if not CJK.search(got.text):
            # Not UTF-8 and no Chinese in any codec the detector tried: junk bytes (a short run of them
            # decodes as some single-byte codec's letters), not a record.
            yield Skipped(f"{path}#{n}", f"line {n + 1}: not UTF-8, and as {got.encoding} it holds no Chinese text")
            continue
        if got.how in ("declared", "detected"):
            learned = got.encoding
        yield n, got.text, got.encoding


def _extract_page(
    path: str, file_path: str, kind: str, data: bytes, url: str = "", http_charset: str | None = None
) -> list[Document | Skipped]:
    out: list[Document | Skipped] = []
    if kind == "jsonl":
        for line in _jsonl_lines(path, data, http_charset):
            if isinstance(line, Skipped):
                out.append(line)
                continue
            n, text, encoding = line
            rec_path = f"{path}#{n}"
            try:
                doc = read_record(json.loads(text), rec_path, file_path, "jsonl")
            except RECORD_ERRORS as exc:
                out.append(Skipped(rec_path, f"line {n + 1}: {_short(exc)}"))
                continue
            doc.encoding = encoding
            out.append(doc)
    else:
        try:
            decoded = decode_bytes(data, http_charset)
        except DecodeFailure as exc:
            return [Skipped(path, str(exc))]
        text = decoded.text
        try:
            if kind == "html":
                doc = read_html(text, path, url)
            elif kind == "txt":
                doc = read_txt(text, path)
            else:
                doc = read_record(json.loads(text), path, path, "json")
        except RECORD_ERRORS as exc:
            return [Skipped(path, _short(exc))]
        doc.file_path = file_path
        doc.encoding = decoded.encoding
        out.append(doc)
    for i, d in enumerate(out):
        if isinstance(d, Document):
            d.url, d.canonical_url = clean_url(d.url), clean_url(d.canonical_url)
            # A WARC record knows its URL: that names the site, not the archive's folder.
            d.site = site_of(d.file_path, d.url, "jsonl" if (d.kind == "jsonl" or url) else d.kind)
            if d.url and urlsplit(d.url).hostname != d.site:
                d.url = ""  # a canonical link to another site is evidence, not this page's address
            if not d.text.strip():
                out[i] = Skipped(d.path, "no article text found")
    return out


def clean_url(url: str) -> str:
    """A URL as a browser would follow it: scrapers that store a link from a page's HTML source or
    a feed often keep its escaping (`&amp;` between parameters of a Baijiahao link)."""
    url = (url or "").strip()
    return html.unescape(url) if "&" in url and ";" in url else url


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
