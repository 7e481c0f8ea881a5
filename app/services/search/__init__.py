"""Finding issues: the search language, full-text documents, pages, CSV and saved searches."""

from app.services.search.documents import DOCUMENT_MAX_BYTES, refresh_search_document
from app.services.search.export import EXPORT_COLUMNS, export_csv
from app.services.search.finder import (
    ISSUE_DETAILS,
    PAGE_MAX,
    PREFIX_MIN_LENGTH,
    PRIORITY_RANK,
    SearchPage,
    count_issues,
    search_issues,
)
from app.services.search.query_language import (
    DATE_QUALIFIERS,
    DEFAULT_SORT,
    QUALIFIERS,
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
from app.services.search.saved import (
    SAVED_SEARCH_NAME_MAX,
    SAVED_SEARCHES_MAX,
    delete_saved_search,
    list_saved_searches,
    save_search,
)

__all__ = [
    "DATE_QUALIFIERS",
    "DEFAULT_SORT",
    "DOCUMENT_MAX_BYTES",
    "EXPORT_COLUMNS",
    "ISSUE_DETAILS",
    "PAGE_MAX",
    "PREFIX_MIN_LENGTH",
    "PRIORITY_RANK",
    "QUALIFIERS",
    "QUERY_MAX_LENGTH",
    "QUERY_MAX_TERMS",
    "QUERY_MAX_WORDS",
    "SAVED_SEARCHES_MAX",
    "SAVED_SEARCH_NAME_MAX",
    "SORTS",
    "Qualifier",
    "Query",
    "QueryError",
    "SearchPage",
    "Words",
    "count_issues",
    "delete_saved_search",
    "export_csv",
    "list_saved_searches",
    "parse_query",
    "refresh_search_document",
    "save_search",
    "search_issues",
]
