from rest_framework.pagination import CursorPagination, PageNumberPagination

from medic.errors import InvalidParameter
from medic.ids import parse_id


class StrictLimit:
    """``limit`` must be a whole number from 1 to ``max_page_size``; anything else is a 400
    (DRF's paginators fall back to the default page size silently)."""

    page_size: int
    max_page_size: int
    page_size_query_param = "limit"

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        value = parse_id(raw)
        if value is None or not 1 <= value <= self.max_page_size:
            raise InvalidParameter(
                fields={"limit": [f"A whole number from 1 to {self.max_page_size}."]}
            )
        return value


class CursorPage(StrictLimit, CursorPagination):
    """Stable pages over append-heavy tables (heartbeats, alerts): no OFFSET scans."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500
    ordering = "-id"


class NumberedPage(StrictLimit, PageNumberPagination):
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500
