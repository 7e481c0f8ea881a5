"""The search box's language: what each term means, and where and why a query is refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import Invalid
from app.services.search import (
    DEFAULT_SORT,
    QUERY_MAX_LENGTH,
    QUERY_MAX_TERMS,
    QUERY_MAX_WORDS,
    SORTS,
    Qualifier,
    Query,
    QueryError,
    Words,
    parse_query,
)


@pytest.mark.parametrize(
    ("text", "qualifier"),
    [
        ("is:open", Qualifier("is", "open")),
        ("IS:Closed", Qualifier("is", "closed")),
        ('status:"In review"', Qualifier("status", "In review")),
        ("status:Done", Qualifier("status", "Done")),
        ("assignee:me", Qualifier("assignee", "me")),
        ("assignee:none", Qualifier("assignee", "none")),
        ("assignee:@Ann", Qualifier("assignee", "ann")),
        ("reporter:Ann@Example.com", Qualifier("reporter", "ann@example.com")),
        ("label:bug", Qualifier("label", "bug")),
        ('label:"good first issue"', Qualifier("label", "good first issue")),
        ("priority:HIGH", Qualifier("priority", "high")),
        ("type:bug", Qualifier("type", "bug")),
        ("project:web", Qualifier("project", "WEB")),
        ("created:>2026-01-01", Qualifier("created", "2026-01-01", comparison=">")),
        ("created:>=2026-01-01", Qualifier("created", "2026-01-01", comparison=">=")),
        ("updated:<2026-01-01", Qualifier("updated", "2026-01-01", comparison="<")),
        ("updated:<=2026-01-01", Qualifier("updated", "2026-01-01", comparison="<=")),
        ("created:2026-01-01", Qualifier("created", "2026-01-01")),
        ("-label:wontfix", Qualifier("label", "wontfix", negated=True)),
        ("-assignee:me", Qualifier("assignee", "me", negated=True)),
        ("-created:<2026-01-01", Qualifier("created", "2026-01-01", True, "<")),
    ],
)
def test_each_qualifier_reads_as_one_filter(text: str, qualifier: Qualifier) -> None:
    assert parse_query(text) == Query(text=text, qualifiers=(qualifier,))


def test_a_query_mixes_qualifiers_words_and_phrases_in_any_order() -> None:
    query = parse_query(
        'is:open Login  -label:wontfix "slow  Page" label:bug -flaky sort:created-asc'
    )
    assert query.qualifiers == (
        Qualifier("is", "open"),
        Qualifier("label", "wontfix", negated=True),
        Qualifier("label", "bug"),
    )
    assert query.words == (
        Words(("login",)),
        Words(("slow", "page"), phrase=True),
        Words(("flaky",), negated=True),
    )
    assert query.sort == "created-asc"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("login-page", (Words(("login", "page")),)),
        ("what's up?", (Words(("what", "s")), Words(("up",)))),
        ("foo_bar", (Words(("foo", "bar")),)),
        ('"one"', (Words(("one",)),)),
        ('-"two words"', (Words(("two", "words"), phrase=True, negated=True),)),
        ("http://example.com/a", (Words(("http", "example", "com", "a")),)),
        ("10:30", (Words(("10", "30")),)),
        ("Ünïcödé ΣΊΣΥΦΟΣ", (Words(("ünïcödé",)), Words(("σίσυφος",)))),
        ("*&|!<-> ' \\ () - --", ()),
        ("", ()),
    ],
)
def test_free_words_keep_only_letters_and_digits(text: str, words: tuple[Words, ...]) -> None:
    assert parse_query(text).words == words


def test_the_default_sort_is_most_recently_updated_first() -> None:
    assert parse_query("is:open").sort == DEFAULT_SORT == "updated-desc"


@pytest.mark.parametrize("sort", SORTS)
def test_every_allowed_sort_is_accepted(sort: str) -> None:
    assert parse_query(f"sort:{sort.upper()}").sort == sort


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        (
            "colour:red",
            0,
            'Unknown qualifier "colour:" at column 1; known: assignee, blocks, created',
        ),
        ("is:open colour:red", 8, 'Unknown qualifier "colour:" at column 9'),
        ("-colour:red", 1, 'Unknown qualifier "colour:" at column 2'),
        ('label:bug "login page', 10, "Unclosed quote at column 11"),
        ('status:"In review', 7, "Unclosed quote at column 8"),
        ("created:soon", 8, '"soon" is not a date (use YYYY-MM-DD) at column 9'),
        ("created:>=soon", 10, '"soon" is not a date (use YYYY-MM-DD) at column 11'),
        ('created:" <soon"', 11, '"soon" is not a date (use YYYY-MM-DD) at column 12'),
        ("created:\u0662\u0660\u0662\u0666-01-01", 8, '"\u0662\u0660\u0662\u0666-01-01" is not'),
        ("updated:2026-02-30", 8, '"2026-02-30" is not a date'),
        ("updated:2026-1-1", 8, '"2026-1-1" is not a date'),
        ("sort:random", 5, 'Unknown sort "random" at column 6; use one of updated-desc,'),
        ("sort:created-asc sort:number-asc", 17, 'A second "sort:" at column 18'),
        ("-sort:created-asc", 1, '"sort:" cannot be negated'),
        ("is:maybe", 3, 'Unknown value "maybe" for "is:" at column 4; use one of open, closed'),
        ("priority:hgh", 9, 'Unknown value "hgh" for "priority:" at column 10; use one of urgent'),
        ("type:epic", 5, 'Unknown value "epic" for "type:" at column 6'),
        ("label:", 6, '"label:" needs a value at column 7'),
        ('label:"" bug', 7, '"label:" needs a value at column 8'),
        ("bug \x00", 4, "Unexpected control character at column 5"),
    ],
)
def test_a_query_that_does_not_parse_says_where_and_why(
    text: str, position: int, message: str
) -> None:
    with pytest.raises(QueryError) as refusal:
        parse_query(text)
    assert refusal.value.position == position
    assert refusal.value.message.startswith(message)


def test_a_query_error_is_an_invalid_search_box() -> None:
    with pytest.raises(Invalid) as refusal:
        parse_query("colour:red")
    assert refusal.value.field == "q"
    assert refusal.value.field_errors == {"q": refusal.value.message}


def test_a_query_is_bounded_in_length_and_terms() -> None:
    parse_query("x" * QUERY_MAX_LENGTH)
    with pytest.raises(QueryError, match="at most 500 characters"):
        parse_query("x" * (QUERY_MAX_LENGTH + 1))
    parse_query(" ".join(["word"] * QUERY_MAX_TERMS))
    with pytest.raises(QueryError, match="Too many terms at column 101") as refusal:
        parse_query(" ".join(["word"] * (QUERY_MAX_TERMS + 1)))
    assert refusal.value.position == 100


def test_free_words_are_bounded_after_splitting_at_punctuation() -> None:
    parse_query(" ".join(["a-b-c-d"] * (QUERY_MAX_WORDS // 4)))
    with pytest.raises(QueryError, match="Too many words at column 65") as refusal:
        parse_query(" ".join(["a-b-c-d"] * (QUERY_MAX_WORDS // 4 + 1)))
    assert refusal.value.position == 64


def test_tabs_and_newlines_separate_terms() -> None:
    query = parse_query("is:open\tlabel:bug\nlogin")
    assert query.qualifiers == (Qualifier("is", "open"), Qualifier("label", "bug"))
    assert query.words == (Words(("login",)),)


# Pieces of the language and of both full-text syntaxes, to build queries that come near to
# every rule; plain generated text fills the gaps.
FRAGMENTS = [
    *("is:", "status:", "assignee:", "reporter:", "label:", "priority:", "type:", "project:"),
    *("created:", "updated:", "sort:", "colour:", "http://", "-", '"', " ", ":", "\t"),
    *("open", "closed", "me", "none", "@ann", "high", "bug", "WEB", "updated-desc", "number-asc"),
    *(">", ">=", "<", "<=", "2026-01-01", "9999-12-31", "0001-01-01", "2026-13-45"),
    *("*", "'", "\\", "(", ")", "&", "|", "!", "<->", ":*", "NOT", "AND", "OR", "NEAR", "^"),
    *("\x00", "\ud800", "\u0301", "é", "İ", "ﬁ", "²", "_", "%", "login", "x" * 300),
]
QUERIES = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=10), st.characters()), max_size=40
).map("".join)


@settings(max_examples=200, deadline=None)
@given(QUERIES)
def test_any_text_either_parses_or_is_refused_with_a_position(text: str) -> None:
    try:
        query = parse_query(text)
    except QueryError as refusal:
        assert 0 <= refusal.position <= len(text)
        assert "column" in refusal.message or "characters" in refusal.message
        return
    assert query.sort in SORTS
    assert len(query.qualifiers) + len(query.words) <= QUERY_MAX_TERMS
    for words in query.words:
        assert words.tokens and all(token.isalnum() for token in words.tokens)
