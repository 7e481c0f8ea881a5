"""Markdown for descriptions and comments: CommonMark made safe, with @mentions and WEB-12 links."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup

from app.models.project import KEY_PATTERN

# A mention is @ and a handle; a handle's characters are those accounts.unique_handle keeps.
MENTION = re.compile(r"@([A-Za-z0-9._-]{1,40})")
# An issue reference is a project key in capitals and a number without leading zeros.
REFERENCE = re.compile(rf"({KEY_PATTERN})-([1-9][0-9]{{0,8}})")
HANDLE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
# Before an @, these make it part of something else: an address (ann@example.com), a path
# (/@ann), or a word.
NOT_BEFORE_MENTION = frozenset("@/.+-")

# Headings in a description sit under the page's h1 (the title) and h2 (Activity).
HEADING_SHIFT = 2

ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a",
    "table", "thead", "tbody", "tr", "th", "td", "img",
}  # fmt: skip
# Never produced from Markdown with raw HTML off; if one ever is, drop its content with it.
DROPPED_WITH_CONTENT = {
    "script", "style", "template", "iframe", "noscript", "noembed", "noframes", "xmp",
    "object", "embed", "svg", "math", "textarea", "title", "select",
}  # fmt: skip

# Images are shown only from this tracker's own attachments (/attachments/12): others become
# links, so that reading a page fetches nothing from other sites.
OWN_IMAGE = re.compile(r"/attachments/[1-9][0-9]{0,9}(/thumbnail)?")


def _own_images_only(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not OWN_IMAGE.fullmatch(value):
        return None
    return value


_sanitiser = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    clean_content_tags=DROPPED_WITH_CONTENT,
    attributes={"a": {"href", "title"}, "ol": {"start"}, "img": {"src", "alt", "title"}},
    attribute_filter=_own_images_only,
    allowed_classes={"a": {"mention", "issue-ref"}},
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


@dataclass
class _Links:
    """What the linking rule is given (known names and their URLs) and what it finds."""

    mentions: Mapping[str, str] = field(default_factory=dict)
    references: Mapping[str, str] = field(default_factory=dict)
    found_mentions: set[str] = field(default_factory=set)
    found_references: set[str] = field(default_factory=set)


def _is_word_character(character: str) -> bool:
    return character.isalnum() or character == "_"


def _mentions_in(text: str, before: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, handle) of each @mention in a run of text; `before` is the character
    that precedes the run ("" at the start of a paragraph or after markup)."""
    for match in MENTION.finditer(text):
        start = match.start()
        previous = text[start - 1] if start else before
        if _is_word_character(previous) or previous in NOT_BEFORE_MENTION:
            continue
        following = text[match.end() : match.end() + 1]
        if following in HANDLE_CHARACTERS or following == "@":
            continue  # longer than a handle can be, or an address
        # A full stop after a handle ends the sentence: "thanks @ann."
        handle = match.group(1).rstrip(".")
        if handle:
            yield start, start + 1 + len(handle), handle.lower()


def _references_in(text: str, before: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, key) of each issue reference such as WEB-12 in a run of text."""
    for match in REFERENCE.finditer(text):
        start, end = match.span()
        previous = text[start - 1] if start else before
        if _is_word_character(previous) or previous == "-":
            continue
        following = text[end : end + 2]
        if following[:1] and (
            _is_word_character(following[0])
            or (following[0] in "-." and following[1:] and _is_word_character(following[1]))
        ):
            continue  # WEB-12a, WEB-12-3, WEB-1.5 name something else
        yield start, end, match.group(0)


def _link_tokens(href: str, css_class: str, text: str) -> list[Token]:
    opening = Token("link_open", "a", 1, attrs={"href": href, "class": css_class})
    return [opening, Token("text", "", 0, content=text), Token("link_close", "a", -1)]


def _linked_text(token: Token, before: str, links: _Links) -> list[Token]:
    """The text token split around the mentions and references in it that `links` knows."""
    text = token.content
    spans: list[tuple[int, int, str, str, str]] = []
    for start, end, handle in _mentions_in(text, before):
        links.found_mentions.add(handle)
        if handle in links.mentions:
            spans.append((start, end, "mention", links.mentions[handle], text[start:end]))
    for start, end, key in _references_in(text, before):
        links.found_references.add(key)
        overlaps = any(
            start < other_end and other_start < end for other_start, other_end, *_ in spans
        )
        if key in links.references and not overlaps:
            spans.append((start, end, "issue-ref", links.references[key], key))
    if not spans:
        return [token]
    tokens: list[Token] = []
    position = 0
    for start, end, css_class, href, label in sorted(spans):
        if start > position:
            tokens.append(Token("text", "", 0, content=text[position:start]))
        tokens.extend(_link_tokens(href, css_class, label))
        position = end
    if position < len(text):
        tokens.append(Token("text", "", 0, content=text[position:]))
    return tokens


def _image_as_link(state: StateCore, image: Token, inside_link: bool) -> list[Token]:
    """An image becomes a link to it, named by its alt text: nothing is fetched from other
    sites when a page is read (no tracking pixels), and the alt text is kept. An image of
    this tracker's own attachments is shown, linked to the file."""
    alt = state.md.renderer.renderInlineAsText(image.children or [], state.md.options, state.env)
    src = str(image.attrGet("src") or "")
    if OWN_IMAGE.fullmatch(src):
        if inside_link:
            return [image]
        return [
            Token("link_open", "a", 1, attrs={"href": src}),
            image,
            Token("link_close", "a", -1),
        ]
    label = Token("text", "", 0, content=alt or src)
    if inside_link:
        return [label]
    opening = Token("link_open", "a", 1, attrs={"href": src})
    if image.attrGet("title"):
        opening.attrSet("title", str(image.attrGet("title")))
    return [opening, label, Token("link_close", "a", -1)]


def _inline_children(state: StateCore, children: list[Token], links: _Links) -> list[Token]:
    result: list[Token] = []
    link_depth = 0
    before = ""
    for token in children:
        if token.type == "link_open":
            link_depth += 1
        elif token.type == "link_close":
            link_depth -= 1
        if token.type == "image":
            result.extend(_image_as_link(state, token, link_depth > 0))
        elif token.type == "text" and link_depth == 0:
            result.extend(_linked_text(token, before, links))
        else:
            result.append(token)
        # Escapes (\@ann) and entities are separate text_special tokens until text_join, so
        # an escaped @ or - never starts a mention or a reference.
        before = token.content[-1:] if token.type in ("text", "text_special") else ""
    return result


def _tracker_rule(state: StateCore) -> None:
    """Core rule: link known mentions and references, images as links, headings demoted,
    table alignment (a style attribute) dropped."""
    links: _Links = state.env["links"]
    for token in state.tokens:
        if token.type == "inline" and token.children:
            token.children = _inline_children(state, token.children, links)
        elif token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + HEADING_SHIFT, 6)}"
        elif token.type in ("th_open", "td_open") and token.attrs:
            token.attrs.pop("style", None)


def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    parser.core.ruler.before("text_join", "tracker_links", _tracker_rule)
    return parser


_markdown = _parser()


# Pages show the same comments again and again, and parsing dominates an issue page's cost:
# short texts are remembered (parsed names; rendered HTML per set of links that apply to them).
CACHED_TEXT_LIMIT = 4000
CACHE_ENTRIES = 2048


def render_markdown(
    text: str,
    *,
    mentions: Mapping[str, str] | None = None,
    references: Mapping[str, str] | None = None,
) -> Markup:
    """Markdown as safe HTML. `mentions` (handle -> URL) and `references` (issue key -> URL)
    name what may become links; any other @handle or KEY-12 stays plain text, so pass only
    what the reader may see. Raw HTML in `text` is shown as text."""
    if len(text) > CACHED_TEXT_LIMIT:
        return _render(text, tuple((mentions or {}).items()), tuple((references or {}).items()))
    # Only the links this text names matter: the rest of the page's must not split the cache.
    handles, keys = names_in(text)
    mentions, references = mentions or {}, references or {}
    return _remembered_render(
        text,
        tuple(sorted((h, mentions[h]) for h in handles if h in mentions)),
        tuple(sorted((k, references[k]) for k in keys if k in references)),
    )


def _render(
    text: str, mentions: tuple[tuple[str, str], ...], references: tuple[tuple[str, str], ...]
) -> Markup:
    links = _Links(mentions=dict(mentions), references=dict(references))
    rendered = _markdown.render(text, {"links": links})
    # Safe to mark: whatever markdown-it made, nh3 has kept only the allowlist of it.
    return Markup(_sanitiser.clean(rendered))  # noqa: S704


_remembered_render = functools.lru_cache(maxsize=CACHE_ENTRIES)(_render)


def _parse_names(text: str) -> tuple[frozenset[str], frozenset[str]]:
    links = _Links()
    _markdown.parse(text, {"links": links})
    return frozenset(links.found_mentions), frozenset(links.found_references)


_remembered_names = functools.lru_cache(maxsize=CACHE_ENTRIES)(_parse_names)


def names_in(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The handles and issue keys a text names (parsed once per text, for short texts)."""
    return (_remembered_names if len(text) <= CACHED_TEXT_LIMIT else _parse_names)(text)


def find_mentions(text: str) -> set[str]:
    """The handles (lower-case) @mentioned in a Markdown text, outside code and links."""
    return set(names_in(text)[0])


def find_references(text: str) -> set[str]:
    """The issue keys (WEB-12) a Markdown text names, outside code and links."""
    return set(names_in(text)[1])
