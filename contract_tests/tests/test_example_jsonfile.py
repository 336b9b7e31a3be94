"""The plugin-author guide's test file: the whole contract on the JSON-file example."""

import uuid

import pytest
from example_jsonfile import JsonFileBackend
from trackplug_contract import BackendContract


class TestJsonFileBackend(BackendContract):
    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path):
        self.directory = tmp_path

    def make_backend(self):
        return JsonFileBackend(f"jsonfile://{self.directory / uuid.uuid4().hex}.json")

    def reopen_backend(self, backend):
        return JsonFileBackend(f"jsonfile://{backend.path}")
