from rest_framework.pagination import CursorPagination, PageNumberPagination


class CursorPage(CursorPagination):
    """Stable pages over append-heavy tables (heartbeats, alerts): no OFFSET scans."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500
    ordering = "-id"


class NumberedPage(PageNumberPagination):
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500
