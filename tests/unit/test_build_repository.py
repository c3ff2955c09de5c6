import json
import os
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from instructner.deploy.build import (
    MANIFEST,
    BuildSettings,
    EngineVariant,
    build_repository,
    ensure_repository,
    usable_cores,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    settings = BuildSettings(model_dir=out / "missing", out_dir=out, untrained_size="tiny")
    return settings, build_repository(settings)


def test_build_without_a_checkpoint_serves_a_random_model_and_says_so(built):
    settings, result = built
    assert not result.trained
    assert result.checkpoint == settings.out_dir / "untrained-tiny"
    assert "THE SERVED MODEL IS UNTRAINED" in result.warning
    assert str(settings.model_dir) in result.warning
    manifest = json.loads((settings.out_dir / MANIFEST).read_text())
    assert manifest["trained"] is False


def test_build_writes_configs_whose_folders_are_relative_to_the_repository_and_exist(built):
    _, result = built
    names = sorted(p.name for p in result.repository.iterdir())
    assert names == ["engine", "instruction_ner"]
    for name in names:
        text = (result.repository / name / "config.pbtxt").read_text()
        config = text_format.Parse(text, model_config_pb2.ModelConfig())
        assert (result.repository / name / "1" / "model.py").is_file()
        for key in ("engine_dir", "tokenizer_dir"):
            if key in config.parameters:
                value = config.parameters[key].string_value
                assert not Path(value).is_absolute(), value
                assert (result.repository / value).resolve().is_dir()


def test_ensure_repository_reuses_a_current_build(built):
    settings, result = built
    manifest = settings.out_dir / MANIFEST
    before = manifest.stat().st_mtime_ns
    again = ensure_repository(settings)
    assert again.repository == result.repository
    assert manifest.stat().st_mtime_ns == before


def test_ensure_repository_rebuilds_when_the_settings_change(built):
    settings, _ = built
    changed = BuildSettings(
        model_dir=settings.model_dir,
        out_dir=settings.out_dir,
        untrained_size="tiny",
        engines=(EngineVariant(compute_type="float32"),),
    )
    ensure_repository(changed)
    config = (settings.out_dir / "model_repository" / "engine" / "config.pbtxt").read_text()
    assert 'key: "compute_type" value: { string_value: "float32" }' in config
    ensure_repository(settings)  # back to the module's settings for the other tests


def test_build_uses_a_real_checkpoint_and_marks_it_trained(built, tmp_path):
    settings, result = built
    trained = BuildSettings(model_dir=result.checkpoint, out_dir=tmp_path, untrained_size="tiny")
    out = build_repository(trained)
    assert out.trained and out.warning is None
    assert out.checkpoint == result.checkpoint


def test_ensure_repository_reuses_a_build_whose_checkpoint_was_given_by_a_relative_path(
    built, tmp_path, monkeypatch
):
    # `make serve` and the benchmark pass models/default: the up-to-date check must read the
    # checkpoint's fingerprint as the build wrote it, or every start rebuilds
    _, result = built
    monkeypatch.chdir(result.checkpoint.parent)
    relative = BuildSettings(
        model_dir=Path(result.checkpoint.name),
        out_dir=tmp_path / "out",
        templates=Path(__file__).resolve().parents[2] / "model_repository",
    )
    first = ensure_repository(relative)
    manifest = relative.out_dir / MANIFEST
    before = manifest.stat().st_mtime_ns
    again = ensure_repository(relative)
    assert first.trained and again.repository == first.repository
    assert manifest.stat().st_mtime_ns == before


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000\n", "affinity"),
        ("150000 100000\n", 1),
        ("100000 100000\n", 1),
        ("garbage\n", "affinity"),
        (None, "affinity"),
    ],
)
def test_usable_cores_is_the_affinity_capped_by_the_cgroup_quota(tmp_path, cpu_max, expected):
    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    want = affinity if expected == "affinity" else min(affinity, expected)
    assert usable_cores(path) == want


def test_engine_threads_default_to_the_cores_shared_by_the_engine_instances(tmp_path):
    settings = BuildSettings(model_dir=tmp_path, out_dir=tmp_path)
    assert settings.engine_instances == 2
    assert settings.inter_threads == max(1, usable_cores() // 2)
