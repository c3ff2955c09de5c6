"""Static checks of the CTranslate2-on-CUDA image, compose override, k8s overlay, entry point.

No container runtime and no GPU here: the files are checked against the project's pins and the
base files they extend, and the entry point's build step runs for real (it needs no GPU).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile.ctranslate2-cuda"
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"
COMPOSE = ROOT / "deploy" / "docker-compose.yaml"
COMPOSE_CT2 = ROOT / "deploy" / "docker-compose.ctranslate2.yaml"
OVERLAY = ROOT / "deploy" / "k8s" / "ctranslate2" / "kustomization.yaml"


def serve_pins() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return pyproject["project"]["optional-dependencies"]["serve"]


def test_the_image_installs_the_servers_own_ctranslate2_and_tokenizers_pins():
    text = DOCKERFILE.read_text(encoding="utf-8")
    for name in ("ctranslate2==", "tokenizers>=", "grpcio-tools=="):
        pin = next(p for p in serve_pins() if p.startswith(name))
        assert f'"{pin}"' in text or f"pip install --no-cache-dir {pin}" in text, pin


def test_the_image_runs_on_tritons_plain_python_image_with_cublas_12_registered():
    text = DOCKERFILE.read_text(encoding="utf-8")
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.MULTILINE))
    assert re.fullmatch(r"nvcr\.io/nvidia/tritonserver:\d\d\.\d\d-py3", args["TRITON_IMAGE"])
    assert re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)[-1] == "${TRITON_IMAGE}"
    assert '"nvidia-cublas-cu12>=12.8,<13"' in text
    assert "/etc/ld.so.conf.d/zz-cublas12.conf" in text and "&& ldconfig" in text
    assert 'grep -q "libcublas.so.12"' in text  # the image build fails without it
    assert "INSTRUCTNER_ENGINE=ctranslate2" in text
    assert 'ENTRYPOINT ["/opt/instructner/deploy/docker/entrypoint.sh"]' in text


def test_the_image_has_the_same_context_rules_as_the_tensorrt_llm_image():
    base = (ROOT / "deploy" / "docker" / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    own = DOCKERFILE.with_name(DOCKERFILE.name + ".dockerignore").read_text(encoding="utf-8")
    assert own == base


def test_the_compose_override_selects_the_ctranslate2_image_and_engine():
    base = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]["triton"]
    override = yaml.safe_load(COMPOSE_CT2.read_text(encoding="utf-8"))["services"]["triton"]
    build = {**base["build"], **override["build"]}
    assert (ROOT / "deploy" / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert override["image"].startswith("instructner-ctranslate2-cuda:")
    environment = {**base["environment"], **override["environment"]}
    assert environment["INSTRUCTNER_ENGINE"] == "ctranslate2"
    assert environment["CT2_COMPUTE_TYPE"] == "${CT2_COMPUTE_TYPE:-auto}"


def test_the_kubernetes_overlay_swaps_the_image_and_drops_the_ampere_only_rule():
    overlay = yaml.safe_load(OVERLAY.read_text(encoding="utf-8"))
    assert overlay["resources"] == [".."]
    base = yaml.safe_load((OVERLAY.parent.parent / "kustomization.yaml").read_text())
    base_images = {i["name"] for i in base["images"]}
    assert [(i["name"], i["newName"]) for i in overlay["images"]] == [
        ("instructner-trtllm", "instructner-ctranslate2-cuda")
    ]
    assert base_images == {"instructner-trtllm"}
    deployment = next(
        d
        for d in yaml.safe_load_all((OVERLAY.parent.parent / "deployment.yaml").read_text())
        if d and d["kind"] == "Deployment"
    )
    (patch,) = overlay["patches"]
    assert patch["target"] == {"kind": "Deployment", "name": deployment["metadata"]["name"]}
    (operation,) = yaml.safe_load(patch["patch"])
    assert operation == {"op": "remove", "path": "/spec/template/spec/affinity"}
    assert "affinity" in deployment["spec"]["template"]["spec"]  # the path exists to remove


def _entrypoint(*args: str, tmp_path: Path, **environment: str) -> subprocess.CompletedProcess:
    # the container's python3 is the system one with the repository on PYTHONPATH
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    python3 = bin_dir / "python3"
    # a wrapper, not a link: a linked venv interpreter would not find its pyvenv.cfg
    python3.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    python3.chmod(0o755)
    return subprocess.run(
        ["bash", str(ENTRYPOINT), *args],
        cwd=ROOT,
        env={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(ROOT),
            **environment,
        },
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_entry_point_builds_the_cuda_repository_without_a_gpu(tmp_path):
    out = tmp_path / "engines"
    done = _entrypoint(
        "build",
        tmp_path=tmp_path,
        INSTRUCTNER_ENGINE="ctranslate2",
        MODEL_DIR=str(ROOT / "models" / "default"),
        INSTRUCTNER_OUT=str(out),
        CT2_COMPUTE_TYPE="int8_bfloat16",
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    text = (out / "model_repository" / "engine" / "config.pbtxt").read_text(encoding="utf-8")
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    parameters = {k: v.string_value for k, v in config.parameters.items()}
    assert (parameters["device"], parameters["compute_type"]) == ("cuda", "int8_bfloat16")
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU


def test_the_entry_point_refuses_an_unknown_engine(tmp_path):
    done = _entrypoint("build", tmp_path=tmp_path, INSTRUCTNER_ENGINE="onnx")
    assert done.returncode == 2
    assert "INSTRUCTNER_ENGINE must be tensorrt_llm or ctranslate2, got 'onnx'" in done.stderr
