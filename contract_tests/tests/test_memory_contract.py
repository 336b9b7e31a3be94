"""The whole contract suite on the in-memory reference backend, and on a persistent
variant of it (so that the persistence tests run here too)."""

from __future__ import annotations

from broken_backends import JournalBackend, reopen_journal
from trackplug_contract import BackendContract

from trackplug._memory import MemoryBackend


class TestMemoryBackend(BackendContract):
    def make_backend(self) -> MemoryBackend:
        return MemoryBackend()

    def make_backend_with_password(self, password: str) -> MemoryBackend:
        return MemoryBackend(f"memory://user:{password}@host")


class TestJournalBackend(BackendContract):
    """The reference, persistent: its store is a journal replayed on reopening."""

    def make_backend(self) -> JournalBackend:
        return JournalBackend()

    def reopen_backend(self, backend: object) -> JournalBackend:
        return reopen_journal(backend)
