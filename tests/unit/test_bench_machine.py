"""The quiet gate and the CPU accounting of the benchmark (fake /proc, no sleeping)."""

import pytest

from bench.machine import CpuMonitor, QuietGate, machine_info, speed_probe


class FakeMonitor:
    """Reports a scripted share of the machine taken by other processes, one per sample."""

    def __init__(self, shares):
        self.shares = list(shares)
        self.phases = {}

    def start(self, phase, probe=True):
        assert not probe, "the quiet gate's samples must not run the speed probe"

    def stop(self, phase):
        self.phases[phase] = {"others": self.shares.pop(0), "wall_s": 2.0}
        return self.phases[phase]


def test_gate_waits_until_other_processes_calm_down():
    monitor = FakeMonitor([0.9, 0.5, 0.1, 0.9])
    gate = QuietGate(monitor, budget_s=60, busy_share=0.2, sample_s=0)
    assert gate.wait("x") == 0.1
    assert monitor.shares == [0.9]  # stopped sampling once it was quiet
    assert monitor.phases == {}  # its samples are not phases of the run


def test_gate_gives_up_when_its_budget_is_spent_and_reports_the_load():
    monitor = FakeMonitor([0.9] * 10)
    gate = QuietGate(monitor, budget_s=4, busy_share=0.2, sample_s=0)
    assert gate.wait("x") == 0.9
    assert gate.waited_s == 4.0  # two samples of 2 s waited, the third one gave up
    assert len(monitor.shares) == 7
    assert gate.wait("y") == 0.9  # the budget is for the whole run: no more waiting
    assert len(monitor.shares) == 6


def test_gate_with_a_speed_probe_waits_while_the_host_runs_slower_than_its_fastest_seen():
    monitor = FakeMonitor([0.0] * 10)
    speeds = iter([30.0, 17.0, 18.0, 29.0, 25.0])
    gate = QuietGate(
        monitor, budget_s=0, sample_s=0, speed_probe=lambda: next(speeds), speed_budget_s=60
    )
    assert gate.wait("a") == 0.0  # 30: the fastest seen so far
    assert gate.wait("b") == 0.0  # 17, 18: slower by more than 20%, waited; 29 is near 30
    assert gate.speed_waited_s == 4.0 and gate.waited_s == 0.0
    assert gate.wait("c") == 0.0  # 25 is within 20% of 30
    assert gate.fastest_speed == 30.0


def test_gate_stops_waiting_for_a_slow_host_when_its_speed_budget_is_spent():
    monitor = FakeMonitor([0.0] * 10)
    gate = QuietGate(
        monitor,
        budget_s=60,
        sample_s=0,
        speed_probe=iter([30.0] + [15.0] * 9).__next__,
        speed_budget_s=4,
    )
    gate.wait("a")
    gate.wait("b")  # two samples of 2 s waited at 15, the third gives up
    assert gate.speed_waited_s == 4.0 and gate.waited_s == 0.0
    assert len(monitor.shares) == 6
    gate.wait("c")  # no budget left: no probe, no wait
    assert len(monitor.shares) == 5


def _write_proc(root, busy, idle, processes):
    (root / "stat").write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0\n")
    (root / "loadavg").write_text("1.50 1.00 0.50 1/100 123\n")
    for pid, (parent, own, waited) in processes.items():
        folder = root / str(pid)
        folder.mkdir(exist_ok=True)
        fields = ["S", str(parent)] + ["0"] * 9 + [str(own), "0", str(waited), "0"]
        (folder / "stat").write_text(f"{pid} (p) " + " ".join(fields) + "\n")


def test_monitor_splits_busy_time_between_this_process_tree_and_others(tmp_path, monkeypatch):
    monkeypatch.setattr("os.getpid", lambda: 10)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    _write_proc(tmp_path, busy=100, idle=100, processes={10: (1, 0, 0), 11: (10, 0, 0)})
    monitor = CpuMonitor(proc=tmp_path)
    monitor.start("phase")
    # 200 ticks passed: 150 busy, of which ours 30 (self) + 20 (child) + 10 (waited children)
    _write_proc(tmp_path, busy=250, idle=150, processes={10: (1, 30, 10), 11: (10, 20, 0)})
    record = monitor.stop("phase")
    assert record["machine_busy"] == pytest.approx(0.75)
    assert record["ours"] == pytest.approx(0.3)
    assert record["others"] == pytest.approx(0.45)
    assert record["loadavg_1min_end"] == 1.5


def test_monitor_records_the_speed_probe_before_a_phase_but_not_for_a_quiet_check(
    tmp_path, monkeypatch
):
    monkeypatch.setattr("os.getpid", lambda: 10)
    _write_proc(tmp_path, busy=100, idle=100, processes={10: (1, 0, 0)})
    speeds = iter([41.234, 17.0, 18.0, 36.0])
    monitor = CpuMonitor(proc=tmp_path, probe=lambda: next(speeds))
    monitor.start("measured")
    monitor.start("quiet_check_x", probe=False)
    record = monitor.stop("quiet_check_x")
    assert "speed_probe" not in record and "speed_probe_end" not in record
    record = monitor.stop("measured")
    assert (record["speed_probe"], record["speed_probe_end"]) == (41.23, 17.0)
    monitor.start("next")
    record = monitor.stop("next")
    assert (record["speed_probe"], record["speed_probe_end"]) == (18.0, 36.0)


def test_speed_probe_returns_a_positive_rate_within_its_time():
    assert speed_probe(0.01, tries=2, settle_s=0.0) > 0


def test_machine_info_counts_the_cores_a_cgroup_quota_leaves(tmp_path, monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    (tmp_path / "cpuinfo").write_text("model name\t: Test CPU\nflags\t\t: fpu avx2\n")
    (tmp_path / "meminfo").write_text("MemTotal:       2097152 kB\n")
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")  # docker --cpus=1.5
    info = machine_info(proc=tmp_path, cpu_max=cpu_max)
    assert (info["usable_cpus"], info["affinity_cpus"]) == (1, 4)
    assert (info["cpu_model"], info["simd"], info["memory_gib"]) == ("Test CPU", ["avx2"], 2.0)
    cpu_max.write_text("max 100000\n")
    assert machine_info(proc=tmp_path, cpu_max=cpu_max)["usable_cpus"] == 4
