"""Memory backends that count the pages read, and one whose histories must be paged (reading
one whole fails): for the facade's and the dashboard's paged reads. Shared by
tests/test_history_pages.py and tests/test_ui_http.py (``pythonpath`` in pyproject)."""

from __future__ import annotations

from trackplug import MetricPoint, Resource, hookimpl
from trackplug.plugin import HistoryPage, MemoryBackend, page_after, page_of


class CountingPages(MemoryBackend):
    """Each page read: ``calls`` holds ``(cursor, limit)`` of ``history_page`` and
    ``(after, limit)`` of ``history_page_after``; ``points_read`` counts their points."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str | tuple[int, int, int] | None, int]] = []
        self.points_read = 0

    def _counted(self, page: HistoryPage) -> HistoryPage:
        self.points_read += len(page.points)
        return page

    @hookimpl
    def history_page(
        self, resource: Resource, key: str, cursor: str | None, limit: int
    ) -> HistoryPage:
        self.calls.append((cursor, limit))
        return self._counted(super().history_page(resource, key, cursor, limit))

    @hookimpl
    def history_page_after(
        self, resource: Resource, key: str, after: tuple[int, int, int], limit: int
    ) -> HistoryPage:
        self.calls.append((after, limit))
        return self._counted(super().history_page_after(resource, key, after, limit))


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
        stored = MemoryBackend.history(self, resource, key)
        return self._counted(page_of(stored, cursor, limit))

    @hookimpl
    def history_page_after(
        self, resource: Resource, key: str, after: tuple[int, int, int], limit: int
    ) -> HistoryPage:
        self.calls.append((after, limit))
        stored = MemoryBackend.history(self, resource, key)
        return self._counted(page_after(stored, after, limit))
