"""The launcher's supervision of tritonserver and its python-backend processes (no server)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from instructner.deploy.probe import missing_processes
from instructner.deploy.server import ServerError
from instructner.deploy.supervise import (
    RestartPolicy,
    Supervisor,
    declared_instances,
    mapped_shared_memory,
    process_alive,
    python_stubs,
    remove_regions,
    watch_command,
)

STUB = "/srv/backends/python/triton_python_backend_stub"


def _process(
    proc: Path, pid: int, parent: int, argv: list[str], state: str = "S", maps: str = ""
) -> None:
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    name = Path(argv[0]).name[:15]
    (folder / "stat").write_text(f"{pid} ({name}) {state} {parent} 1 1 0 -1\n")
    (folder / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (folder / "maps").write_text(maps)


def _stub_argv(model: str, instance: str, region: str) -> list[str]:
    return [STUB, f"/repo/{model}/1/model.py", region, "1048576", "1048576", "10", "/b", "336"] + [
        instance,
        "DEFAULT",
    ]


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    """A fake /proc: tritonserver 10 with stubs 11 (engine), 12 (dead engine), 13 (ner)."""
    root = tmp_path / "proc"
    maps = (
        "7f00-7f10 rw-s 00000000 00:1a 5 /dev/shm/triton_python_backend_shm_region_a\n"
        "7f10-7f20 r-xp 00000000 00:1a 6 /usr/lib/libc.so.6\n"
        "7f20-7f30 rw-s 00000000 00:1a 7 /dev/shm/triton_python_backend_shm_region_b (deleted)\n"
    )
    _process(root, 10, 1, ["/opt/tritonserver", "--model-repository=/repo"], maps=maps)
    _process(root, 11, 10, _stub_argv("engine", "engine_0_0", "triton_python_backend_shm_region_a"))
    _process(root, 12, 10, _stub_argv("engine", "engine_0_1", "prefix0_region_c"), state="Z")
    _process(
        root,
        13,
        10,
        _stub_argv("instruction_ner", "instruction_ner_0_0", "triton_python_backend_shm_region_d"),
    )
    _process(root, 20, 1, ["/usr/bin/python3", "unrelated"])
    return root


def test_python_stubs_are_read_from_the_command_lines_below_the_server(proc: Path):
    stubs = python_stubs(10, proc)
    assert sorted((s.pid, s.instance, s.region) for s in stubs) == [
        (11, "engine_0_0", "triton_python_backend_shm_region_a"),
        (12, "engine_0_1", "prefix0_region_c"),  # a configured region prefix counts too
        (13, "instruction_ner_0_0", "triton_python_backend_shm_region_d"),
    ]
    assert python_stubs(20, proc) == []


def test_a_zombie_or_missing_process_is_not_alive(proc: Path):
    assert process_alive(11, proc)
    assert not process_alive(12, proc)  # killed, not yet reaped
    assert not process_alive(99, proc)


def test_the_servers_mapped_regions_are_found_deleted_or_not(proc: Path):
    assert mapped_shared_memory(10, proc) == {
        "triton_python_backend_shm_region_a",
        "triton_python_backend_shm_region_b",
    }


def test_only_file_names_in_the_shm_folder_are_removed(tmp_path: Path):
    shm = tmp_path / "shm"
    shm.mkdir()
    (shm / "region_a").write_text("")
    outside = tmp_path / "keep"
    outside.write_text("")
    removed = remove_regions({"region_a", "../keep", "/etc/passwd", "..", "", "gone"}, shm)
    assert removed == [shm / "region_a"]
    assert outside.exists()


class _FakeProcess:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def kill(self) -> None:
        self.returncode = -9

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode or 0


class _FakeServer:
    """Start/stop/wait_ready of a TritonServer, counted; its pid points at the fake /proc."""

    def __init__(self) -> None:
        self.process: _FakeProcess | None = None
        self.events: list[str] = []

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        self.events.append("start")
        self.process = _FakeProcess(10)

    config = type("Config", (), {"repository": Path("/repo")})()

    def wait_ready(self, timeout_s: float, models: object, should_stop: object = None) -> float:
        self.events.append("ready")
        return 0.1

    def stop(self, timeout_s: float = 45.0) -> int | None:
        self.events.append(f"stop {timeout_s:.0f}")
        self.process = None
        return 0

    def log_tail(self) -> str:
        return "(log)"


def _supervisor(
    monkeypatch: pytest.MonkeyPatch,
    proc: Path,
    policy: RestartPolicy,
    declared: dict[str, int] | None = None,
) -> Supervisor:
    declared = declared if declared is not None else {"engine": 2, "instruction_ner": 1}
    import instructner.deploy.supervise as supervise

    monkeypatch.setattr(supervise, "python_stubs", lambda pid: python_stubs(pid, proc))
    monkeypatch.setattr(
        supervise, "process_alive", lambda pid, started=0: process_alive(pid, proc, started)
    )
    monkeypatch.setattr(supervise, "declared_instances", lambda repository: declared)
    monkeypatch.setattr(supervise, "mapped_shared_memory", lambda pid: set())
    monkeypatch.setattr(supervise, "remove_regions", lambda names: [])
    monkeypatch.setattr(supervise.os, "kill", lambda pid, sig: None)
    server = _FakeServer()
    return Supervisor(server, policy=policy, grace_s=0.0)  # type: ignore[arg-type]


def test_a_dead_model_process_is_reported_with_its_instance(
    monkeypatch: pytest.MonkeyPatch, proc: Path
):
    supervisor = _supervisor(monkeypatch, proc, RestartPolicy())
    supervisor.start()
    assert supervisor.failure() == "model process engine_0_1 (pid 12) died"


def test_a_dead_model_process_restarts_the_server_at_once(
    monkeypatch: pytest.MonkeyPatch, proc: Path
):
    supervisor = _supervisor(monkeypatch, proc, RestartPolicy())
    supervisor.start()
    assert supervisor.check() == "model process engine_0_1 (pid 12) died"
    # killed (not a graceful stop, which waits for the dead stub), then started again
    assert supervisor.server.events == ["start", "ready", "start", "ready"]  # type: ignore[attr-defined]
    assert [reason for reason, _ in supervisor.restarts] == [
        "model process engine_0_1 (pid 12) died"
    ]


def test_past_the_restart_limit_the_supervisor_gives_up_loudly(
    monkeypatch: pytest.MonkeyPatch, proc: Path
):
    supervisor = _supervisor(monkeypatch, proc, RestartPolicy(max_restarts=2, window_s=600))
    supervisor.start()
    supervisor.check()
    supervisor.check()
    with pytest.raises(ServerError, match="not restarting: 2 restarts in the last 600 s"):
        supervisor.check()


def test_no_restarts_allowed_gives_up_at_the_first_death(
    monkeypatch: pytest.MonkeyPatch, proc: Path
):
    supervisor = _supervisor(monkeypatch, proc, RestartPolicy(max_restarts=0))
    supervisor.start()
    with pytest.raises(ServerError, match="engine_0_1 .* died; not restarting"):
        supervisor.check()


def test_a_whole_server_is_stopped_gracefully(monkeypatch: pytest.MonkeyPatch, proc: Path):
    (proc / "12" / "stat").write_text("12 (triton_python_) S 10 1 1 0 -1\n")  # alive again
    supervisor = _supervisor(monkeypatch, proc, RestartPolicy())
    supervisor.start()
    assert supervisor.failure() is None
    supervisor.stop()
    assert supervisor.server.events[-1] == "stop 45"  # type: ignore[attr-defined]


def test_a_model_process_missing_since_the_start_is_a_failure(
    monkeypatch: pytest.MonkeyPatch, proc: Path
):
    (proc / "12" / "stat").write_text("12 (triton_python_) S 10 1 1 0 -1\n")  # alive again
    supervisor = _supervisor(monkeypatch, proc, RestartPolicy(), {"engine": 3, "ner": 1})
    supervisor.start()
    assert supervisor.failure() == (
        "3 model processes run, the repository declares 4: one died while the server started"
    )


def test_a_pid_taken_by_a_later_process_is_not_the_stub_that_had_it(proc: Path):
    fields = " ".join(["S", "10", *["0"] * 17, "12345", "0"])  # starttime is field 22
    (proc / "11" / "stat").write_text(f"11 (stub) {fields}\n")
    assert process_alive(11, proc, started=12345)
    assert not process_alive(11, proc, started=999)  # the stub that started at 999 is gone


def test_the_watch_reports_a_signal_death_as_a_shell_does():
    code = watch_command([sys.executable, "-c", "import os; os.kill(os.getpid(), 15)"], 0.05)
    assert code == 128 + 15


def test_restart_policy_rejects_negative_limits():
    with pytest.raises(ValueError, match="max_restarts must be >= 0"):
        RestartPolicy(max_restarts=-1)


def test_the_watch_passes_on_the_commands_exit_code():
    assert watch_command([sys.executable, "-c", "raise SystemExit(3)"], poll_s=0.05) == 3


def test_the_watch_cli_needs_a_command():
    done = subprocess.run(
        [sys.executable, "-m", "instructner.deploy.supervise", "--"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "give the server command after --" in done.stderr


# --- the probe ------------------------------------------------------------------------------


def _repository(tmp_path: Path) -> Path:
    repository = tmp_path / "repo"
    configs = {
        "engine": 'backend: "python"\ninstance_group [ { count: 2 kind: KIND_CPU } ]\n',
        "instruction_ner": 'backend: "python"\ninstance_group [ { count: 1 kind: KIND_CPU } ]\n',
        "tensorrt_llm": 'backend: "tensorrtllm"\ninstance_group [ { count: 1 } ]\n',
    }
    for name, text in configs.items():
        (repository / name).mkdir(parents=True)
        (repository / name / "config.pbtxt").write_text(text)
    return repository


def test_the_probe_counts_the_python_instances_the_repository_declares(tmp_path: Path):
    assert declared_instances(_repository(tmp_path)) == {"engine": 2, "instruction_ner": 1}


def test_the_probe_names_a_model_whose_process_died(tmp_path: Path, proc: Path):
    (proc / "10" / "cmdline").write_bytes(b"/opt/tritonserver/bin/tritonserver\0")
    assert missing_processes(_repository(tmp_path), proc) == [
        "engine: 1 of 2 triton_python_backend_stub processes alive"
    ]


def test_the_probe_fails_without_a_running_server(tmp_path: Path, proc: Path):
    (proc / "10" / "stat").write_text("10 (tritonserver) Z 1 1 1 0 -1\n")  # exited
    assert missing_processes(_repository(tmp_path), proc) == ["no tritonserver process is running"]
