"""Markdown: what it renders, what it refuses, @mentions and WEB-12 references, the XSS corpus."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt
from markupsafe import Markup

from app.rendering.markdown import find_mentions, find_references, render_markdown
from tests.xss.checks import assert_no_executable_html, executable_html, load_payloads

PAYLOADS = load_payloads()
# Names the corpus uses, known, so that payloads go through the linking code too.
MENTIONS = {"ann": "/u/ann"}
REFERENCES = {"WEB-1": "/WEB-1", "WEB-12": "/WEB-12"}
REL = 'rel="noopener noreferrer nofollow"'


def render(text: str) -> str:
    return str(render_markdown(text, mentions=MENTIONS, references=REFERENCES))


def mention(label: str = "@ann", handle: str = "ann") -> str:
    return f'<a href="/u/{handle}" class="mention" {REL}>{label}</a>'


def reference(key: str = "WEB-12") -> str:
    return f'<a href="/{key}" class="issue-ref" {REL}>{key}</a>'


# --- Ordinary Markdown ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*em* and **strong**", "<p><em>em</em> and <strong>strong</strong></p>"),
        ("~~gone~~", "<p><s>gone</s></p>"),
        ("use `make run`", "<p>use <code>make run</code></p>"),
        ("- one\n- two", "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"),
        ("3. three\n4. four", '<ol start="3">\n<li>three</li>\n<li>four</li>\n</ol>'),
        ("> quoted", "<blockquote>\n<p>quoted</p>\n</blockquote>"),
        ("line  \nbreak", "<p>line<br>\nbreak</p>"),
        ("---", "<hr>"),
        # Headings sit below the page's own h1 and h2.
        ("# Steps", "<h3>Steps</h3>"),
        ("### Details", "<h5>Details</h5>"),
        ("###### Deepest", "<h6>Deepest</h6>"),
        # The language of a fence is dropped with the class attribute that would carry it.
        ("```python\nprint(1 < 2)\n```", "<pre><code>print(1 &lt; 2)\n</code></pre>"),
        ("    indented code", "<pre><code>indented code\n</code></pre>"),
    ],
)
def test_ordinary_markdown_renders(text: str, expected: str) -> None:
    assert render(text).strip() == expected


def test_tables_render_without_style_attributes() -> None:
    html = render("| Name | Count |\n|:-----|------:|\n| ann | 3 |")
    assert "<table>" in html and "<th>Name</th>" in html and "<td>3</td>" in html
    assert "style" not in html


def test_links_keep_their_address_and_title_and_get_a_safe_rel() -> None:
    html = render('[docs](https://example.com/a?b=1&c=2 "The docs")')
    assert html.strip() == (
        f'<p><a href="https://example.com/a?b=1&amp;c=2" title="The docs" {REL}>docs</a></p>'
    )


@pytest.mark.parametrize(
    ("text", "href"),
    [
        ("<https://example.com/x>", "https://example.com/x"),
        ("[mail](mailto:ann@example.com)", "mailto:ann@example.com"),
        ("<ann@example.com>", "mailto:ann@example.com"),
        ("[board](/p/WEB/board)", "/p/WEB/board"),
        ("[spec](#section-2)", "#section-2"),
    ],
)
def test_safe_link_targets_are_kept(text: str, href: str) -> None:
    assert f'href="{href}"' in render(text)


def test_images_become_links_to_the_picture_so_nothing_is_fetched() -> None:
    html = render('![the diagram](https://example.com/d.png "Flow")')
    assert "<img" not in html
    assert f'<a href="https://example.com/d.png" title="Flow" {REL}>the diagram</a>' in html
    # Without alt text the address names the link; inside a link only the alt text is kept.
    assert f'<a href="https://example.com/e.png" {REL}>https://example.com/e.png</a>' in render(
        "![](https://example.com/e.png)"
    )
    nested = render("[![logo](https://example.com/l.png)](https://example.com)")
    assert nested.count("<a ") == 1 and ">logo</a>" in nested


def test_raw_html_is_shown_as_text() -> None:
    html = render('<b>bold?</b> <script>alert("x")</script>\n\n<div onclick="x()">block</div>')
    assert "<b>" not in html and "<script" not in html and "<div" not in html
    assert '&lt;b&gt;bold?&lt;/b&gt; &lt;script&gt;alert("x")&lt;/script&gt;' in html
    assert '&lt;div onclick="x()"&gt;block&lt;/div&gt;' in html


@pytest.mark.parametrize(
    "target",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "&#106;avascript:alert(1)",
        "javascript&colon;alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html,<script>alert(1)</script>",
        "data:image/png;base64,iVBORw0KGgo=",
        "file:///etc/passwd",
    ],
)
def test_dangerous_link_targets_never_become_links(target: str) -> None:
    for text in (f"[x]({target})", f"![x]({target})", f"[x][r]\n\n[r]: {target}", f"<{target}>"):
        html = render(text)
        assert "href" not in html, text
        assert_no_executable_html(html, fragment=True)


@pytest.mark.parametrize("text", ["{{7*7}}", "{% raw %}{{ x }}{% endraw %}", "${7*7}", "{# c #}"])
def test_template_syntax_is_plain_text(text: str) -> None:
    assert render(text).strip() == f"<p>{text}</p>"


def test_the_result_is_markup_that_jinja_will_not_escape_again() -> None:
    html = render_markdown("a & b")
    assert isinstance(html, Markup)
    assert html.strip() == "<p>a &amp; b</p>"
    assert Markup("{}").format(html).strip() == "<p>a &amp; b</p>"


def test_empty_text_renders_nothing() -> None:
    assert render_markdown("") == ""


# --- The XSS corpus ---------------------------------------------------------------------------


def test_the_corpus_is_large_and_well_formed() -> None:
    assert len(PAYLOADS) >= 250
    assert len(set(PAYLOADS)) == len(PAYLOADS)
    assert all(payload.strip() for payload in PAYLOADS)
    # The escapes are decoded: line feeds and NULs are there, the escape sequences are not.
    assert any("\n" in payload for payload in PAYLOADS)
    assert any("\0" in payload for payload in PAYLOADS)
    assert not any("\\n" in payload for payload in PAYLOADS)
    calling = [p for p in PAYLOADS if "__xss__(" in p or "alert(" in p]
    assert len(calling) >= 0.8 * len(PAYLOADS)


@pytest.mark.parametrize(
    "payload", PAYLOADS, ids=[f"payload{n}" for n in range(1, len(PAYLOADS) + 1)]
)
def test_no_payload_survives_rendering(payload: str) -> None:
    assert_no_executable_html(render(payload), fragment=True)


def test_the_corpus_and_the_checker_catch_a_naive_renderer() -> None:
    """Markdown with raw HTML on and no link validation, run through the corpus, must fail the
    checker for most payloads: else the corpus or the checker would prove nothing."""
    naive = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    naive.validateLink = lambda url: True
    caught = [p for p in PAYLOADS if executable_html(naive.render(p), fragment=True)]
    assert len(caught) >= 0.7 * len(PAYLOADS)


# --- The checker itself -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "found"),
    [
        ("<script>__xss__(1)</script>", "<script>"),
        ("<SCRIPT SRC=//evil.example/x.js></SCRIPT>", "<script>"),
        ('<script src="/static/js/app.js">__xss__(1)</script>', "inline script"),
        ('<script src="/static/js/app.js" type="module"></script>', "<script>"),
        ("<script/>__xss__(1)</script>", "inline script"),
        ("<iframe src=https://example.com></iframe>", "<iframe>"),
        ("<object data=x></object>", "<object>"),
        ("<embed src=x>", "<embed>"),
        ("<svg><circle r=1 /></svg>", "<svg>"),
        ("<math><mi>x</mi></math>", "<math>"),
        ("<style>body{}</style>", "<style>"),
        ('<base href="https://evil.example/">', "<base>"),
        ("<form><input name=q></form>", "<form>"),
        ('<form method="post" action="https://evil.example/">', "<form>"),
        ('<form method="post" action="//evil.example/">', "<form>"),
        ('<form method="dialog" action="https://evil.example/">', "<form>"),
        ('<meta http-equiv="refresh" content="0;url=https://evil.example/">', "<meta>"),
        ('<link rel="stylesheet" href="https://evil.example/x.css">', "<link>"),
        ("<noscript><p>x</p></noscript>", "<noscript>"),
        ("<template><p>x</p></template>", "<template>"),
        ("<img src=x onerror=__xss__(1)>", "onerror"),
        ("<P ONCLICK='x()'>x</P>", "onclick"),
        ('<div style="color: red">x</div>', "style attribute"),
        ('<a href="javascript:x()">x</a>', "javascript:"),
        ('<a href=" JaVa&#x09;ScRiPt&colon;x()">x</a>', "javascript:"),
        ('<a href="&#106;avascript:x()">x</a>', "javascript:"),
        ('<a href="\x01java\nscript:x()">x</a>', "javascript:"),
        ('<a href="vbscript:x">x</a>', "vbscript:"),
        ('<a href="data:text/html,<script>x()</script>">x</a>', "data:"),
        ('<img src="DATA:image/svg+xml;base64,PHN2Zz4=">', "data:"),
        ('<form method="post" action="javascript:x()">', "javascript:"),
        ('<button formaction="javascript:x()">x</button>', "formaction"),
        ('<a xlink:href="javascript:x()">x</a>', "xlink:href"),
        ('<iframe srcdoc="<b>x</b>"></iframe>', "srcdoc"),
        ('<div hx-on:click="x()">x</div>', "htmx"),
        ("<a hx-vals='js:{a: x()}'>x</a>", "htmx"),
        # Where a browser and html.parser part ways, the browser's reading is checked.
        ("<!--><img src=x onerror=__xss__(1)>-->", "in a comment"),
        ("<!-- --!><img src=x onerror=__xss__(1)>-->", "in a comment"),
        ('<textarea><b title="</textarea><img src=x onerror=__xss__(1)>"></textarea>', "onerror"),
        ('<title>t</title x="</title><img src=x onerror=__xss__(1)>">', "onerror"),
    ],
)
def test_the_checker_catches(html: str, found: str) -> None:
    # On a whole page, the lenient reading; everything here must still be caught.
    with pytest.raises(AssertionError, match="executable HTML") as caught:
        assert_no_executable_html(html)
    assert found.lower() in str(caught.value).lower()


@pytest.mark.parametrize(
    "html",
    [
        '<script src="/static/js/app.js" defer></script>',
        '<form method="post" action="/auth/logout"><button>Log out</button></form>',
        '<form method="dialog"><button>Close</button></form>',
        '<link rel="stylesheet" href="/static/css/app.css">',
        '<meta name="viewport" content="width=device-width">',
        '<button hx-post="/auth/logout" hx-trigger="load">x</button>',
    ],
)
def test_what_a_page_may_hold_a_fragment_may_not(html: str) -> None:
    assert_no_executable_html(html)
    with pytest.raises(AssertionError, match="executable HTML"):
        assert_no_executable_html(html, fragment=True)


def test_the_checker_accepts_escaped_text_and_plain_markup() -> None:
    assert_no_executable_html(
        "<!doctype html><html><head><title>&lt;script&gt;</title>"
        '<link rel="icon" href="data:,"></head><body>'
        '<p title="&lt;img src=x onerror=alert(1)&gt;">&lt;script&gt;alert(1)&lt;/script&gt;</p>'
        '<textarea name="body">&lt;/textarea&gt;&lt;img src=x onerror=alert(1)&gt;</textarea>'
        '<a href="/WEB-1" class="issue-ref">WEB-1</a> <a href="https://example.com">x</a>'
        "<p>javascript:alert(1) onerror=alert(1)</p></body></html>"
    )


async def test_the_checker_accepts_our_own_pages(client) -> None:
    response = await client.get("/auth/login")
    assert response.status_code == 200
    assert_no_executable_html(await response.get_data(as_text=True))


# --- Mentions and references ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@ann", f"<p>{mention()}</p>"),
        ("hi @ann!", f"<p>hi {mention()}!</p>"),
        ("(@ann)", f"<p>({mention()})</p>"),
        ("thanks @ann.", f"<p>thanks {mention()}.</p>"),
        ("@ann, @ann", f"<p>{mention()}, {mention()}</p>"),
        ("first\n@ann\nlast @ann", f"<p>first\n{mention()}\nlast {mention()}</p>"),
        ("**@ann**", f"<p><strong>{mention()}</strong></p>"),
        ("@Ann's idea", f"<p>{mention('@Ann')}'s idea</p>"),
        ("> @ann", f"<blockquote>\n<p>{mention()}</p>\n</blockquote>"),
        ("WEB-12", f"<p>{reference()}</p>"),
        ("see WEB-12.", f"<p>see {reference()}.</p>"),
        ("(WEB-12), WEB-1:", f"<p>({reference()}), {reference('WEB-1')}:</p>"),
        ("*WEB-12*", f"<p><em>{reference()}</em></p>"),
        ("@ann fixed WEB-12", f"<p>{mention()} fixed {reference()}</p>"),
        ("- WEB-12\n- @ann", f"<ul>\n<li>{reference()}</li>\n<li>{mention()}</li>\n</ul>"),
    ],
)
def test_known_mentions_and_references_become_links(text: str, expected: str) -> None:
    assert render(text).strip() == expected


@pytest.mark.parametrize(
    "text",
    [
        "@bob",  # nobody the caller knows
        "@annie",  # not a prefix match
        "ann@example.com",
        "@ann@example.com",
        "mail <ann@example.com>",
        "x@ann",
        "/@ann",
        "\\@ann",
        "`@ann`",
        "```\n@ann\n```",
        "    @ann",
        "WEB-13",  # an issue the reader may not see, or that does not exist
        "web-12",
        "xWEB-12",
        "WEB-12a",
        "WEB-123",
        "WEB-012",
        "WEB-12-3",
        "WEB\\-12",
        "`WEB-12`",
        "~~~\nWEB-12\n~~~",
    ],
)
def test_other_names_stay_text(text: str) -> None:
    html = render(text)
    assert "mention" not in html and "issue-ref" not in html


@pytest.mark.parametrize("text", ["[@ann and WEB-12](https://example.com)", "<https://x/@ann>"])
def test_names_inside_links_are_not_linked_again(text: str) -> None:
    html = render(text)
    assert html.count("<a ") == 1 and "mention" not in html and "issue-ref" not in html


def test_link_targets_from_the_caller_are_escaped() -> None:
    html = str(render_markdown("@ann", mentions={"ann": '/u/ann"><script>x()</script>'}))
    assert "<script" not in html
    assert_no_executable_html(html, fragment=True)


def test_find_mentions_ignores_code_links_and_addresses() -> None:
    text = (
        "Hi @Ann and @bob.smith, cc @carol. `@dave` ann@example.com [@erin](https://x.test)\n\n"
        "```\n@frank\n```\n\n@zoe_q-1"
    )
    assert find_mentions(text) == {"ann", "bob.smith", "carol", "zoe_q-1"}
    assert find_mentions("") == set()


def test_find_references_ignores_code_links_and_lookalikes() -> None:
    text = "WEB-1 and API2-22; `WEB-3`, xWEB-4, [WEB-5](https://x.test), WEB-06, web-7\n\n    WEB-8"
    assert find_references(text) == {"WEB-1", "API2-22"}
    assert find_references("") == set()
