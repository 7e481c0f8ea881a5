r"""Load the XSS corpus, and find in HTML anything a browser could run.

payloads.txt holds one payload a line. Characters a line cannot hold are written as escapes that
load_payloads() decodes: \n (line feed), \r, \t, \xNN (the character with those two hex digits,
\x00 for NUL) and \\ (one backslash). Any other backslash is kept as it is, so JavaScript and CSS
escapes such as \u005f or \0075 need no doubling. Other characters (the right-to-left override,
a byte order mark) are written as themselves: the file is UTF-8.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

PAYLOADS = Path(__file__).with_name("payloads.txt")

_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[nrt\\])")
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}

# Elements that run code, load another document, or change how the rest of the page is parsed
# (the raw-text ones: a browser and html.parser would read what follows them differently).
FORBIDDEN_TAGS = frozenset(
    {
        "script", "iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math",
        "style", "base", "form", "meta", "link", "noscript", "noembed", "noframes", "xmp",
        "plaintext", "template", "portal", "isindex",
    }
)  # fmt: skip
URL_ATTRIBUTES = frozenset(
    {
        "href", "src", "action", "formaction", "xlink:href", "data", "poster", "background",
        "lowsrc", "dynsrc", "codebase", "cite", "longdesc", "ping", "manifest", "icon",
    }
)  # fmt: skip
# A browser reads everything up to </textarea> or </title> as text (raw text with entities);
# the html.parser of older Pythons reads tags in them, so their end is found as a browser does.
RCDATA_TAGS = frozenset({"textarea", "title"})
DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "data:", "livescript:")
# The one data: URL a page may carry: the empty one (base.html's favicon), which holds nothing.
EMPTY_DATA_URL = "data:,"
_INVISIBLE = re.compile(r"[\x00-\x20\x7f]+")


def _decode(line: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escape = match.group(1)
        if escape[0] == "x":
            return chr(int(escape[1:], 16))
        return _SIMPLE_ESCAPES[escape]

    return _ESCAPE.sub(replace, line)


def load_payloads() -> list[str]:
    """Every payload of the corpus, decoded, in file order."""
    lines = PAYLOADS.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [_decode(line) for line in lines]


def _url_problem(value: str) -> str | None:
    # html.parser has already decoded character references in the value, as a browser does.
    # A browser also drops tabs and line feeds anywhere in a URL and control characters and
    # spaces around it; dropping them everywhere is stricter still.
    url = _INVISIBLE.sub("", value).lower()
    if url == EMPTY_DATA_URL:
        return None
    for scheme in DANGEROUS_SCHEMES:
        if url.startswith(scheme):
            return f"a {scheme} URL"
    return None


def _is_htmx_script(value: str) -> bool:
    """hx-vals="js:..." is evaluated (where htmx allows eval)."""
    return _INVISIBLE.sub("", value).lower().startswith(("js:", "javascript:"))


def _is_site_path(value: str | None) -> bool:
    return value is not None and value.startswith("/") and value[1:2] not in ("/", "\\")


class _ExecutableFinder(HTMLParser):
    def __init__(self, *, fragment: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.fragment = fragment
        self.problems: list[str] = []
        self._in_script = False

    def _page_allows(self, tag: str, attributes: dict[str, str | None]) -> bool:
        """The elements our own templates write, in the shape they write them."""
        if self.fragment:
            return False
        if tag == "script":
            source = attributes.get("src") or ""
            others = set(attributes) - {"src", "defer", "async"}
            return source.startswith("/static/") and not others
        if tag == "form":
            method = (attributes.get("method") or "").lower()
            action = attributes.get("action")
            if method == "dialog":  # closes its <dialog>; sends nothing anywhere
                return action is None
            return method in ("get", "post") and (action is None or _is_site_path(action))
        if tag == "link":
            href = attributes.get("href") or ""
            return href.startswith("/static/") or href == EMPTY_DATA_URL
        if tag == "meta":
            return "http-equiv" not in attributes
        return False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        where = f"<{tag}>"
        if tag in FORBIDDEN_TAGS and not self._page_allows(tag, attributes):
            self.problems.append(f"a {where} element")
        if tag == "script":
            self._in_script = True
        elif tag in RCDATA_TAGS:
            self.set_cdata_mode(tag)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"an event handler {name}= on {where}")
            elif name.startswith(("hx-on", "data-hx-on")) or name in ("hx-vars", "data-hx-vars"):
                self.problems.append(f"htmx script {name}= on {where}")
            elif self.fragment and name.startswith(("hx-", "data-hx-")):
                # htmx on the page would act on it: a request made with the reader's session.
                self.problems.append(f"an htmx attribute {name}= on {where}")
            elif name == "style":
                self.problems.append(f"a style attribute on {where}")
            elif name in ("hx-vals", "data-hx-vals") and _is_htmx_script(value or ""):
                self.problems.append(f"htmx script in {name}= on {where}")
            elif name == "srcdoc":
                self.problems.append(f"a srcdoc attribute on {where}")
            elif name in URL_ATTRIBUTES and value is not None:
                problem = _url_problem(value)
                if problem:
                    self.problems.append(f"{problem} in {name}= on {where}: {value!r}")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # A browser ignores the slash of <script/> or <textarea/>: what follows is their body.
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self.set_cdata_mode(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append(f"an inline script: {data.strip()[:80]!r}")

    # A browser may end a comment or a bogus comment sooner than html.parser does (<!-->,
    # --!>), so what html.parser reads as inside one is checked as markup too.
    def _check_hidden(self, text: str) -> None:
        inner = _ExecutableFinder(fragment=True)
        inner.feed(text)
        inner.close()
        self.problems.extend(f"{problem} (in a comment)" for problem in inner.problems)

    def handle_comment(self, data: str) -> None:
        self._check_hidden(data)

    def handle_pi(self, data: str) -> None:
        self._check_hidden(data)

    def unknown_decl(self, data: str) -> None:
        self._check_hidden(data)

    def handle_decl(self, decl: str) -> None:
        self._check_hidden(decl)


def executable_html(html: str, *, fragment: bool = False) -> list[str]:
    """What in `html` a browser could run: a list of descriptions, empty when none."""
    finder = _ExecutableFinder(fragment=fragment)
    finder.feed(html)
    finder.close()
    return finder.problems


def assert_no_executable_html(html: str, *, fragment: bool = False) -> None:
    """Fail, naming what was found, if `html` holds a script, a frame or plugin, SVG or MathML,
    a style, a base, meta refresh or form element, an event handler, a style attribute, or a
    javascript:, vbscript: or data: URL.

    A whole page may hold what our templates write: <script src="/static/..."> with no body
    (defer and async allowed), <link> to /static/ or the empty data: URL, <meta> without
    http-equiv, <form method="get|post"> posting to a path of the site, <form method="dialog">
    and htmx attributes other than hx-on. With `fragment=True` (rendered Markdown, say) none
    of these is allowed.
    """
    problems = executable_html(html, fragment=fragment)
    assert not problems, "executable HTML: " + "; ".join(problems)
