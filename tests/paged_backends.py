"""Memory backends that count the pages read, and one whose histories must be paged (reading
one whole fails): for the facade's and the dashboard's paged reads. Shared by
tests/test_history_pages.py and tests/test_ui_http.py (``pythonpath`` in pyproject)."""

from __future__ import annotations

from trackplug import MetricPoint, Resource, hookimpl
from trackplug.plugin import HistoryPage, MemoryBackend, page_of


class CountingPages(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str | None, int]] = []

    @hookimpl
    def history_page(
        self, resource: Resource, key: str, cursor: str | None, limit: int
    ) -> HistoryPage:
        self.calls.append((cursor, limit))
        return super().history_page(resource, key, cursor, limit)


class PagesOnly(CountingPages):
    """A long history that a reader must page: reading it whole fails."""

    @hookimpl
    def history(self, resource: Resource, key: str) -> list[MetricPoint]:
        raise AssertionError("the whole history was read into one list")

    @hookimpl
    def history_page(
        self, resource: Resource, key: str, cursor: str | None, limit: int
    ) -> HistoryPage:
        """Cut from the stored points, as a database's pages would be."""
        self.calls.append((cursor, limit))
        return page_of(MemoryBackend.history(self, resource, key), cursor, limit)
