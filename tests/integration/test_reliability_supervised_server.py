"""The launcher (``make serve``'s ``python -m instructner.deploy.server``) heals its server.

Each kind of python-backend model process is killed with SIGKILL under load (as the kernel's
OOM killer would); the launcher notices, restarts tritonserver and serves again. The lost
calls are counted in the test report (``record_property``); no answer may change. The tests
run in file order on one module-scoped launcher; the last stops it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.chaos import Launcher, Load, kill_under_load

pytestmark = pytest.mark.integration

KINDS = ("engine", "instruction_ner")


@pytest.fixture(scope="module")
def launcher(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    running = Launcher(checkpoint, tmp_path_factory.mktemp("supervised") / "out")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_the_launcher_watches_every_kind_of_model_process(launcher: Launcher):
    assert set(launcher.stubs()) == set(KINDS)
    assert "watching tritonserver" in launcher.log()


@pytest.mark.parametrize("kind", KINDS)
def test_a_killed_model_process_under_load_is_healed_within_15_s(
    launcher: Launcher, kind: str, record_property: pytest.RecordProperty
):
    with Load(launcher.url, threads=4, retry_attempts=None) as load:
        time.sleep(1)
        result = kill_under_load(launcher, load, kind, settle_s=18)
    record_property("lost_calls", result.failed)
    record_property("recovery_s", result.launcher_recovery_s)
    assert result.wrong == 0, result
    assert result.launcher_recovery_s is not None and result.launcher_recovery_s < 15, (
        launcher.log()[-3000:]
    )
    assert f"model process {kind}_" in launcher.log()
    # every call started 15 s after the kill or later was answered
    assert result.all_answered_after_s is not None and result.all_answered_after_s < 15, result
    assert result.calls_after_kill > sum(result.failed.values())
    assert set(result.failed) <= {"ServerUnavailableError", "InstructNERError"}, result


def test_stopping_after_the_kills_is_prompt_and_leaves_no_shared_memory(launcher: Launcher):
    started = time.monotonic()
    assert launcher.stop() == 0
    assert time.monotonic() - started < 60
    assert launcher.regions, "the launcher's regions were never seen"
    assert launcher.regions_left() == []


def test_with_no_restarts_allowed_a_dead_model_process_stops_the_launcher_loudly(
    checkpoint: Path, tmp_path: Path
):
    launcher = Launcher(checkpoint, tmp_path / "out", max_restarts=0)
    launcher.start()
    try:
        pid = launcher.stubs()["engine"][0]
        os.kill(pid, signal.SIGKILL)
        assert launcher.process is not None
        code = launcher.process.wait(timeout=30)
    finally:
        launcher.stop()
    assert code == 1
    assert "not restarting: 0 restarts in the last 600 s" in launcher.log()
    assert launcher.regions_left() == []
