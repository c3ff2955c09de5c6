"""Static checks of the GPU deployment files: Dockerfile, entry point, compose, Kubernetes.

Nothing is built or deployed here: the files are parsed, the Kubernetes manifests are checked
against the Kubernetes JSON schemas (kubernetes-validate, offline) and cross-checked with each
other (ports, probes, selectors, metric names) and with the pinned versions.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from instructner.deploy.build_trtllm import DEFAULT_CONVERT_SCRIPT, PIN

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"
COMPOSE = ROOT / "deploy" / "docker-compose.yaml"
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"  # schemas checked against; the manifests use only GA APIs


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_all(path):
            if doc.get("kind") != "Kustomization":
                found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def dockerfile_args() -> dict[str, str]:
    text = DOCKERFILE.read_text(encoding="utf-8")
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.MULTILINE))


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    spec = deployment["spec"]["template"]["spec"]
    every = spec["containers"] + spec.get("initContainers", [])
    return next(c for c in every if c["name"] == name)


def env(c: dict[str, Any]) -> dict[str, str]:
    """The container's plain environment values (those taken from Secrets left out)."""
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}


def test_deployment_reads_the_admin_key_from_an_optional_secret():
    triton = container(manifests()[("Deployment", "instructner-triton")], "triton")
    (entry,) = [e for e in triton["env"] if e["name"] == "INSTRUCTNER_ADMIN_KEY"]
    assert entry["valueFrom"]["secretKeyRef"] == {
        "name": "instructner-admin",
        "key": "admin-key",
        "optional": True,
    }


# --- Dockerfile and entry point ------------------------------------------------------------


def test_dockerfile_serves_from_the_pinned_triton_trtllm_image():
    text = DOCKERFILE.read_text(encoding="utf-8")
    args = dockerfile_args()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert stages[-1] == "${TRITON_TRTLLM_IMAGE}"  # the image that runs
    assert args["TRITON_TRTLLM_IMAGE"] == PIN.image
    assert PIN.image.endswith("-trtllm-python-py3")
    assert args["TENSORRT_LLM_TAG"] == PIN.source_ref


def test_dockerfile_puts_the_convert_script_where_the_build_looks_for_it():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert f"TRTLLM_CONVERT_SCRIPT={DEFAULT_CONVERT_SCRIPT}" in text
    assert f"test -f {DEFAULT_CONVERT_SCRIPT}" in text
    assert "sparse-checkout set examples/models/core/enc_dec" in text
    assert "INSTRUCTNER_IN_CONTAINER=1" in text


def test_dockerfile_compiles_protos_with_the_projects_grpcio_tools():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    serve = pyproject["project"]["optional-dependencies"]["serve"]
    pinned = next(d for d in serve if d.startswith("grpcio-tools=="))
    assert f"pip install --no-cache-dir {pinned}" in DOCKERFILE.read_text(encoding="utf-8")


def test_dockerfile_exposes_the_triton_ports_and_runs_the_entrypoint():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^EXPOSE 8000 8001 8002$", text, flags=re.MULTILINE)
    assert 'ENTRYPOINT ["/opt/instructner/deploy/docker/entrypoint.sh"]' in text
    assert 'CMD ["serve"]' in text


def test_docker_context_keeps_what_the_image_needs():
    ignore_file = ROOT / "deploy" / "docker" / "Dockerfile.dockerignore"
    lines = ignore_file.read_text(encoding="utf-8").splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for needed in ("instructner", "model_repository", "deploy", "protos"):
        assert needed not in ignored, needed
    assert {".venv", ".git", "build/out", "instructner/v1"} <= set(ignored)


def test_entrypoint_is_valid_bash_and_starts_triton_on_the_served_ports():
    assert ENTRYPOINT.stat().st_mode & stat.S_IXUSR
    subprocess.run(["bash", "-n", str(ENTRYPOINT)], check=True)
    text = ENTRYPOINT.read_text(encoding="utf-8")
    for flag in (
        "--http-port=8000",
        "--grpc-port=8001",
        "--metrics-port=8002",
        "--disable-auto-complete-config",
        '"--model-repository=$OUT/model_repository"',
    ):
        assert flag in text, flag
    assert "python3 -m instructner.cli build-trtllm" in text
    assert "--reuse" in text


def _entrypoint_command(**env: str) -> list[str]:
    done = subprocess.run(
        ["bash", str(ENTRYPOINT), "command"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def test_entrypoint_closes_the_admin_protocols_with_a_random_key_it_never_shows():
    command = _entrypoint_command()
    protocols = "model-repository,shared-memory,trace,logging,statistics"
    assert f"--grpc-restricted-protocol={protocols}:instructner-admin-key=***" in command
    assert f"--http-restricted-api={protocols}:instructner-admin-key=***" in command
    assert "--model-control-mode=none" in command


def test_entrypoint_serves_under_the_watch_that_exits_when_a_model_process_dies():
    text = ENTRYPOINT.read_text(encoding="utf-8")
    serve = text[text.index("serve() {") :]
    assert "local watch=(python3 -m instructner.deploy.supervise --)" in serve
    assert 'exec "${watch[@]}" mpirun' in serve
    assert 'exec "${watch[@]}" "${cmd[@]}"' in serve


def test_entrypoint_gives_the_internal_steps_a_random_key_in_the_environment():
    text = ENTRYPOINT.read_text(encoding="utf-8")
    serve = text[text.index("serve() {") :]
    assert "export INSTRUCTNER_INTERNAL_KEY" in serve
    assert 'INSTRUCTNER_INTERNAL_KEY="$(random_key)"' in serve
    random_key = text[text.index("random_key() {") : text.index("admin_key() {")]
    assert "/dev/urandom" in random_key


def test_compose_publishes_on_loopback_unless_told_otherwise():
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert all(
        p.startswith("${BIND_ADDRESS:-127.0.0.1}:") for p in compose["services"]["triton"]["ports"]
    )


def test_entrypoint_uses_the_operators_key_and_header_and_refuses_a_misparsed_key():
    command = _entrypoint_command(
        INSTRUCTNER_ADMIN_KEY="s3cret-key", INSTRUCTNER_ADMIN_KEY_HEADER="x-admin"
    )
    assert any(arg.endswith(":x-admin=***") for arg in command)
    assert "s3cret-key" not in " ".join(command)
    done = subprocess.run(
        ["bash", str(ENTRYPOINT), "command"],
        env={"PATH": os.environ["PATH"], "INSTRUCTNER_ADMIN_KEY": "a,b"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "INSTRUCTNER_ADMIN_KEY must not hold whitespace" in done.stderr


def test_entrypoint_serves_grpc_over_tls_like_the_launcher():
    command = _entrypoint_command(
        INSTRUCTNER_TLS_CERT="/tls/server.pem",
        INSTRUCTNER_TLS_KEY="/tls/server.key",
        INSTRUCTNER_TLS_ROOT_CERT="/tls/ca.pem",
        INSTRUCTNER_TLS_MUTUAL="1",
    )
    assert command[-4:] == [
        "--grpc-use-ssl-mutual=true",
        "--grpc-server-cert=/tls/server.pem",
        "--grpc-server-key=/tls/server.key",
        "--grpc-root-cert=/tls/ca.pem",
    ]
    plain = _entrypoint_command(
        INSTRUCTNER_TLS_CERT="/tls/server.pem", INSTRUCTNER_TLS_KEY="/tls/server.key"
    )
    assert "--grpc-use-ssl=true" in plain and not any("ssl-mutual" in a for a in plain)
    assert not any("ssl" in arg for arg in _entrypoint_command())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INSTRUCTNER_TLS_CERT": "/c.pem"}, "INSTRUCTNER_TLS_CERT and INSTRUCTNER_TLS_KEY go"),
        (
            {
                "INSTRUCTNER_TLS_CERT": "/c",
                "INSTRUCTNER_TLS_KEY": "/k",
                "INSTRUCTNER_TLS_MUTUAL": "1",
            },
            "INSTRUCTNER_TLS_MUTUAL=1 needs INSTRUCTNER_TLS_ROOT_CERT",
        ),
    ],
)
def test_entrypoint_refuses_incomplete_tls_settings(env, message):
    done = subprocess.run(
        ["bash", str(ENTRYPOINT), "command"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and message in done.stderr


# --- docker compose --------------------------------------------------------------------------


def test_compose_runs_one_gpu_container_with_health_check_and_ports():
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    triton = compose["services"]["triton"]
    assert triton["build"] == {"context": "..", "dockerfile": "deploy/docker/Dockerfile"}
    assert (ROOT / "deploy" / triton["build"]["context"] / triton["build"]["dockerfile"]).is_file()
    devices = triton["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    published = {int(p.rsplit(":", 1)[1]) for p in triton["ports"]}
    assert published == {8000, 8001, 8002}
    assert triton["healthcheck"]["test"][1:5] == [
        "python3",
        "-m",
        "instructner.deploy.probe",
        "--repository",
    ]
    assert triton["shm_size"]
    # source:target[:mode]; the source may hold ${VAR:-default}, so match from the right.
    mounts = {re.fullmatch(r".+:(/[^:]*)(:ro|:rw)?", v).group(1) for v in triton["volumes"]}
    assert {triton["environment"]["MODEL_DIR"], triton["environment"]["INSTRUCTNER_OUT"]} <= mounts
    assert "engines" in compose["volumes"]


# --- Kubernetes --------------------------------------------------------------------------------


def test_kustomization_lists_every_core_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize("key", sorted(manifests()), ids=lambda k: f"{k[0]}/{k[1]}")
def test_manifest_passes_the_kubernetes_schema(key):
    kubernetes_validate.validate(manifests()[key], KUBERNETES_VERSION, strict=True)


def test_schema_check_rejects_a_misspelled_field():
    deployment = manifests()[("Deployment", "instructner-triton")]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["execc"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_deployment_requests_a_gpu_and_probes_triton_health():
    deployment = manifests()[("Deployment", "instructner-triton")]
    triton = container(deployment, "triton")
    ports = {p["name"]: p["containerPort"] for p in triton["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    # /v2/health stays 200 with a dead model process: the probes run a real inference and
    # check every model instance's process (instructner.deploy.probe)
    probe = ["python3", "-m", "instructner.deploy.probe", "--repository"]
    for kind in ("readinessProbe", "livenessProbe"):
        command = triton[kind]["exec"]["command"]
        assert command[:4] == probe, kind
        assert command[4] == "/engines/model_repository"
    assert triton["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    for name in ("triton", "build-engines"):
        resources = container(deployment, name)["resources"]
        assert resources["limits"]["nvidia.com/gpu"] == 1, name
        assert resources["requests"]["nvidia.com/gpu"] == 1, name
    assert container(deployment, "build-engines")["args"] == ["build"]
    assert triton["args"] == ["serve"]


def test_deployment_mounts_model_engines_and_shared_memory_where_the_image_looks():
    deployment = manifests()[("Deployment", "instructner-triton")]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    claim = volumes["model"]["persistentVolumeClaim"]["claimName"]
    assert ("PersistentVolumeClaim", claim) in manifests()
    for name in ("triton", "build-engines"):
        c = container(deployment, name)
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        assert mounts["model"] == env(c)["MODEL_DIR"], name
        assert mounts["engines"] == env(c)["INSTRUCTNER_OUT"], name
        assert env(c)["TRTLLM_DTYPE"] in ("bfloat16", "float32"), name
        assert c["image"] == container(deployment, "triton")["image"], name
    triton_mounts = {
        m["name"]: m["mountPath"] for m in container(deployment, "triton")["volumeMounts"]
    }
    assert triton_mounts["dshm"] == "/dev/shm"  # the python backend's shared memory


def test_pods_are_annotated_for_prometheus_on_the_metrics_port():
    deployment = manifests()[("Deployment", "instructner-triton")]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8002"
    assert annotations["prometheus.io/path"] == "/metrics"


def test_services_expose_grpc_8001_of_the_deployments_pods():
    deployment = manifests()[("Deployment", "instructner-triton")]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    container_ports = {p["name"] for p in container(deployment, "triton")["ports"]}
    for name in ("instructner-triton", "instructner-triton-headless"):
        service = manifests()[("Service", name)]["spec"]
        assert service["selector"].items() <= pod_labels.items(), name
        ports = {p["name"]: p for p in service["ports"]}
        assert ports["grpc"]["port"] == 8001, name
        assert all(p["targetPort"] in container_ports for p in service["ports"]), name
    assert manifests()[("Service", "instructner-triton-headless")]["spec"]["clusterIP"] == "None"


def test_autoscaler_targets_the_deployment_with_metrics_the_adapter_defines():
    hpa = manifests()[("HorizontalPodAutoscaler", "instructner-triton")]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "instructner-triton",
    }
    assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]
    wanted = {m["pods"]["metric"]["name"] for m in hpa["metrics"]}
    adapter = yaml.safe_load((K8S / "optional/prometheus-adapter-values.yaml").read_text())
    rules = adapter["rules"]["custom"]
    assert wanted == {rule["name"]["as"] for rule in rules}
    sources = {re.match(r"(\w+)\{", rule["seriesQuery"]).group(1) for rule in rules}
    assert sources == {"nv_inference_pending_request_count", "nv_trt_llm_request_metrics"}


def test_service_monitor_scrapes_the_services_metrics_port():
    monitor = load_all(K8S / "optional/servicemonitor.yaml")[0]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = manifests()[("Service", "instructner-triton")]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    endpoint = monitor["spec"]["endpoints"][0]
    assert ports[endpoint["port"]] == 8002
    assert endpoint["path"] == "/metrics"


def test_pods_run_as_non_root_with_a_read_only_root_filesystem():
    spec = manifests()[("Deployment", "instructner-triton")]["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 1000 == spec["securityContext"]["fsGroup"]
    for container in spec["initContainers"] + spec["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, container["name"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert "chown 1000:1000 /engines" in DOCKERFILE.read_text(encoding="utf-8")


def test_bfloat16_pods_land_only_on_ampere_or_newer_and_rollouts_need_no_spare_gpu():
    deployment = manifests()[("Deployment", "instructner-triton")]
    spec = deployment["spec"]["template"]["spec"]
    (term,) = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term["matchExpressions"] == [
        {"key": "nvidia.com/gpu.compute.major", "operator": "Gt", "values": ["7"]}
    ]
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
