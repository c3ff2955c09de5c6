"""The blocking client is written from the asyncio client's text: one source of both APIs."""

import importlib.util
import inspect
import sys
from pathlib import Path

import pytest
from instructner_client import AsyncInstructNERClient, InstructNERClient, InstructNERError

CLIENT = Path(__file__).resolve().parents[2] / "client"


def load_build_sync():
    spec = importlib.util.spec_from_file_location("build_sync", CLIENT / "build_sync.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_sync"] = module
    spec.loader.exec_module(module)
    return module


build_sync = load_build_sync()
PUBLIC = sorted(
    name
    for name, value in vars(AsyncInstructNERClient).items()
    if not name.startswith("_") and inspect.iscoroutinefunction(value)
)


def test_the_installed_blocking_client_is_what_the_asyncio_source_gives():
    assert build_sync.main(["--check"]) == 0


def test_both_clients_have_the_same_public_calls_with_the_same_signatures():
    assert len(PUBLIC) == 14  # ner, extract, type, analyze; four batch, four document; info, ready
    for name in PUBLIC:
        blocking = getattr(InstructNERClient, name)
        assert not inspect.iscoroutinefunction(blocking), name
        assert inspect.signature(blocking) == inspect.signature(
            getattr(AsyncInstructNERClient, name)
        ), name
        assert blocking.__doc__ == getattr(AsyncInstructNERClient, name).__doc__, name


def test_the_blocking_client_names_its_own_class_and_channel():
    assert InstructNERClient.__module__ == "instructner_client._sync"
    assert InstructNERClient.__doc__.startswith("Blocking gRPC client of the")
    assert "Thread-safe" in InstructNERClient.__doc__
    assert "event loop" not in InstructNERClient.__doc__


@pytest.mark.parametrize(
    ("line", "word"),
    [
        ("        async with self._lock:\n", "async"),
        ("        async for part in self._parts():\n", "async"),
        ("import asyncio\n", "asyncio"),
        ("        return AsyncTransport.close(self)\n", "AsyncTransport"),
    ],
)
def test_an_async_construct_without_a_blocking_form_fails_the_build(line, word):
    source = (CLIENT / "src/instructner_client/_async.py").read_text(encoding="utf-8")
    changed = source.replace("    async def model_info(", line + "\n    async def model_info(", 1)
    with pytest.raises(build_sync.SyncBuildError, match=f"'{word}' has no blocking form here"):
        build_sync.blocking_source(changed)


def test_a_rename_whose_text_left_the_source_fails_the_build():
    source = (CLIENT / "src/instructner_client/_async.py").read_text(encoding="utf-8")
    changed = source.replace("asyncio gRPC client of the", "gRPC client (asyncio) of the")
    with pytest.raises(build_sync.SyncBuildError, match="expected text not found"):
        build_sync.blocking_source(changed)


def test_entering_a_closed_client_raises():
    client = InstructNERClient("127.0.0.1:1")
    client.close()
    with pytest.raises(InstructNERError, match="is closed"), client:
        pass


def test_entering_a_closed_async_client_raises():
    import asyncio

    async def scenario():
        client = AsyncInstructNERClient("127.0.0.1:1")
        await client.close()
        async with client:
            pass

    with pytest.raises(InstructNERError, match="is closed"):
        asyncio.run(scenario())
