"""`make serve` installs no torch: the model folder carries its CTranslate2 conversion."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from instructner.deploy import build
from instructner.serving.engine import CONVERSION_SOURCE, SHIPPED_CT2_DIR, shipped_conversion
from tests.harness import REPO_ROOT

SHIPPED = REPO_ROOT / "models" / "default"


def test_a_fresh_make_serve_installs_the_serve_extra_and_no_torch(tmp_path: Path):
    printed = subprocess.run(
        ["make", "-n", "--no-print-directory", "serve", f"VENV={tmp_path / 'venv'}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installs = [line for line in printed.splitlines() if " install " in line]
    assert any('-e ".[serve]"' in line for line in installs), printed
    assert not any("torch" in line or "[train" in line for line in installs), installs


def test_the_shipped_model_carries_the_conversion_of_its_own_weights():
    assert shipped_conversion(SHIPPED) == SHIPPED / SHIPPED_CT2_DIR


def test_the_build_uses_a_matching_conversion_and_converts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def no_conversion(*args: object) -> Path:
        raise AssertionError("converted although a matching conversion is shipped")

    monkeypatch.setattr(build, "convert_to_ctranslate2", no_conversion)
    target = build.place_ctranslate2(SHIPPED, tmp_path / "ct2")
    assert (target / "model.bin").read_bytes() == (
        SHIPPED / SHIPPED_CT2_DIR / "model.bin"
    ).read_bytes()


def test_a_conversion_of_other_weights_is_ignored_and_without_torch_the_error_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    model = tmp_path / "model"
    shutil.copytree(SHIPPED, model, ignore=shutil.ignore_patterns("*.png", "*.jsonl"))
    source = model / SHIPPED_CT2_DIR / CONVERSION_SOURCE
    record = json.loads(source.read_text())
    record["converted_from"]["model.safetensors"] = "0" * 64  # converted from other weights
    source.write_text(json.dumps(record))
    assert shipped_conversion(model) is None
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="converting needs torch.*instructner convert"):
        build.place_ctranslate2(model, tmp_path / "ct2")
