# InstructNER serving. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-stamp
SERVE_STAMP := $(VENV)/.serve-stamp

.PHONY: help setup test unit integration lint protos engines serve engines-trtllm \
	evaluate-default fewshot-ablation fewshot-table setup-proxy proxy tokenizer train-default

# Serving: where `make engines` reads the checkpoint and writes the ready model repository,
# and where `make serve` listens (loopback unless HOST says otherwise).
MODEL_DIR ?= models/default
BUILD_OUT ?= build/out
COMPUTE_TYPE ?= int8
# Training: the task tokenizer (make tokenizer) the default model and the few-shot base use.
TOKENIZER_DIR ?= runs/tokenizer-8k
HOST ?= 127.0.0.1
HTTP_PORT ?= 8000
GRPC_PORT ?= 8001
METRICS_PORT ?= 8002
# Security of `make serve` (docs/reliability.md): ADMIN_KEY_HEADER puts the admin endpoints
# (model-repository, shared-memory, trace, logging) behind that header, whose value is read from
# the environment variable INSTRUCTNER_ADMIN_KEY (never a make variable: it would be logged);
# TLS_CERT + TLS_KEY turn on gRPC TLS, TLS_ROOT_CERT + TLS_MUTUAL=1 require client certificates.
ADMIN_KEY_HEADER ?=
TLS_CERT ?=
TLS_KEY ?=
TLS_ROOT_CERT ?=
TLS_MUTUAL ?=
SERVE_SECURITY := $(if $(ADMIN_KEY_HEADER),--admin-key-header $(ADMIN_KEY_HEADER)) \
	$(if $(TLS_CERT),--tls-cert $(TLS_CERT)) $(if $(TLS_KEY),--tls-key $(TLS_KEY)) \
	$(if $(TLS_ROOT_CERT),--tls-root-cert $(TLS_ROOT_CERT)) \
	$(if $(filter 1 yes true,$(TLS_MUTUAL)),--tls-mutual)
PROTO_SRC := $(wildcard protos/instructner/v1/*.proto)
PROTO_STAMP := instructner/v1/.generated

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

# Serving needs no torch: the shipped model folder carries its CTranslate2 conversion
# (`instructner convert`), so `make serve` installs only the serve extra.
$(SERVE_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[serve]"
	touch $@

$(STAMP): pyproject.toml client/pyproject.toml $(SERVE_STAMP)
	# CPU torch from local disk first: an unpinned torch would pull a multi-GB CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[train,serve,dev]"
	# The client distribution, editable; its build compiles protos/ with the venv's grpcio-tools.
	$(PIP) install -q "setuptools>=77"
	$(PIP) install -q --no-build-isolation -e "./client[progress]"
	touch $@

setup: $(STAMP) ## create the virtualenv and install pinned dependencies

# Generated code is never committed: it lands in instructner/v1/ (git-ignored), importable as
# instructner.v1.extraction_pb2 by the package, the Triton python models and the tests.
$(PROTO_STAMP): $(PROTO_SRC) $(SERVE_STAMP)
	$(PY) -m grpc_tools.protoc -I protos --python_out=. --pyi_out=. $(PROTO_SRC)
	touch instructner/v1/__init__.py $@

# The client gets its own copy (package-relative imports, no import of `instructner`).
CLIENT_PROTO_STAMP := client/src/instructner_client/_proto/__init__.py
$(CLIENT_PROTO_STAMP): $(PROTO_SRC) client/build_protos.py $(STAMP)
	$(PY) client/build_protos.py

# The blocking client is written from the asyncio client's public methods (one text of both).
CLIENT_SYNC := client/src/instructner_client/_sync.py
$(CLIENT_SYNC): client/src/instructner_client/_async.py client/build_sync.py
	python3 client/build_sync.py

protos: $(PROTO_STAMP) $(CLIENT_PROTO_STAMP) $(CLIENT_SYNC) ## generate Python code for protos/ (into instructner/v1/ and client/src/instructner_client/_proto/) and the blocking client (_sync.py), git-ignored

engines: protos ## convert MODEL_DIR to CTranslate2 (COMPUTE_TYPE) and fill the model repository in BUILD_OUT
	$(PY) -m instructner.cli build --model $(MODEL_DIR) --out $(BUILD_OUT) --compute-type $(COMPUTE_TYPE) $(CONSTRAINED_FLAG)

# GPU with CTranslate2 on CUDA: the same conversion as the CPU engine, an engine model with
# KIND_GPU instances and instruction_ner calling it inline. Building needs no GPU (the compute
# type is resolved when the engine loads: GPU_COMPUTE_TYPE=auto picks by compute capability).
GPU_CT2_OUT ?= build/out/gpu-ctranslate2
GPU_COMPUTE_TYPE ?= auto
engines-gpu: protos ## MODEL_DIR -> CTranslate2-on-CUDA model repository in GPU_CT2_OUT (GPU_COMPUTE_TYPE=auto); needs no GPU to build
	$(PY) -m instructner.cli build --model $(MODEL_DIR) --out $(GPU_CT2_OUT) --device cuda \
		--compute-type $(GPU_COMPUTE_TYPE)

# GPU: `make engines-trtllm` runs inside the pinned Triton TensorRT-LLM container (deploy/docker/Dockerfile,
# which sets INSTRUCTNER_IN_CONTAINER and installs the package for the system python3).
# DRY_RUN=1 prints the commands and writes the filled repository without running TensorRT
# (works here too, with the virtualenv). See docs/gpu-deployment.md.
TRTLLM_OUT ?= build/out/trtllm
TRTLLM_DTYPE ?= bfloat16
TRTLLM_PY := $(if $(INSTRUCTNER_IN_CONTAINER),python3,$(PY))

engines-trtllm: $(if $(INSTRUCTNER_IN_CONTAINER),,setup) ## (GPU container) MODEL_DIR -> TensorRT-LLM engines + GPU model repository in TRTLLM_OUT; DRY_RUN=1 plans only
	$(TRTLLM_PY) -m instructner.cli build-trtllm --model $(MODEL_DIR) --out $(TRTLLM_OUT) \
		--dtype $(TRTLLM_DTYPE) $(if $(filter 1 yes true,$(DRY_RUN)),--dry-run)

# CONSTRAINED=1: NER and typing answers decoded under the answer grammar (transformers engine).
CONSTRAINED_FLAG := $(if $(filter 1 yes true,$(CONSTRAINED)),--constrained)

# First GPU: checks each GPU server given, GPU_URL (TensorRT-LLM) and GPU_CT2_URL (CTranslate2
# on CUDA), against the CPU engine's answers (REFERENCE_ANSWERS, recorded with --record, or a
# live REFERENCE_URL): parity, batching at 32, scores, tasks, perf_analyzer at 1/16/64; writes
# GPU_REPORT / GPU_CT2_REPORT (+ .md). DRY_RUN=1 prints both plans and contacts nothing.
GPU_URL ?=
GPU_CT2_URL ?=
REFERENCE_ANSWERS ?= cpu-answers.json
GPU_REPORT ?= gpu-acceptance.json
GPU_CT2_REPORT ?= gpu-acceptance-ctranslate2.json
ACCEPTANCE = $(PY) deploy/gpu_acceptance.py \
	$(if $(REFERENCE_URL),--reference-url $(REFERENCE_URL),--reference-answers $(REFERENCE_ANSWERS)) \
	$(if $(filter 1 yes true,$(DRY_RUN)),--dry-run)
gpu-acceptance: protos ## (GPU) acceptance of the GPU servers (GPU_URL: TensorRT-LLM, GPU_CT2_URL: CTranslate2 on CUDA) against the CPU engine; DRY_RUN=1 plans only
	@$(if $(or $(GPU_URL),$(GPU_CT2_URL),$(filter 1 yes true,$(DRY_RUN))),true,echo "give GPU_URL and/or GPU_CT2_URL (or DRY_RUN=1)" >&2; exit 2)
	$(if $(or $(GPU_URL),$(filter 1 yes true,$(DRY_RUN))),$(ACCEPTANCE) --engine tensorrt_llm --url $(or $(GPU_URL),GPU_HOST:8001) --out $(GPU_REPORT))
	$(if $(or $(GPU_CT2_URL),$(filter 1 yes true,$(DRY_RUN))),$(ACCEPTANCE) --engine ctranslate2 --url $(or $(GPU_CT2_URL),GPU_HOST:8001) --out $(GPU_CT2_REPORT))

serve: $(PROTO_STAMP) ## start tritonserver on HOST (HTTP_PORT/GRPC_PORT/METRICS_PORT); builds the engine if missing
	$(PY) -m instructner.cli serve --model $(MODEL_DIR) --out $(BUILD_OUT) $(CONSTRAINED_FLAG) \
		--compute-type $(COMPUTE_TYPE) --host $(HOST) --http-port $(HTTP_PORT) \
		--grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT) $(SERVE_SECURITY)

# Benchmarks are not tests: `make bench` takes minutes and the whole machine (run it alone).
# Both start their own tritonserver on free loopback ports and write bench/results/<time>-<profile>/.
.PHONY: bench bench-smoke
bench: protos ## load test (perf_analyzer) vs transformers / instruction-ner / in-process engine; scaling (document length, labels); GEMM peak
	$(PY) -m bench --profile full --model $(MODEL_DIR)

bench-smoke: protos ## the same benchmark with fewer points (< 4 minutes on a quiet machine); last line: the speedups
	$(PY) -m bench --profile smoke --model $(MODEL_DIR)

bench-steps: protos ## instruction_ner with the pipeline in each steps place (embedded, inline, models), same inputs, same run
	$(PY) -m bench.steps --model $(MODEL_DIR)

# Not a test and not in CI: a bounded soak (SOAK_MINUTES, default 10) against its own server,
# with the server's resident memory sampled; writes bench/results/<time>-soak/.
SOAK_MINUTES ?= 10
SOAK_CONCURRENCY ?= 8
.PHONY: soak
soak: protos ## bounded soak test (SOAK_MINUTES=10, SOAK_CONCURRENCY=8): memory, errors, answers
	$(PY) -m bench.soak --minutes $(SOAK_MINUTES) --concurrency $(SOAK_CONCURRENCY)

# Not a test and not in CI: kill -9 each kind of model process under load against the launcher
# of `make serve`; lost and wrong answers, time to serve again (docs/reliability.md#chaos).
CHAOS_RETRY_ATTEMPTS ?=
.PHONY: chaos
chaos: protos ## kill each model process kind under load: lost/wrong answers, recovery time (CHAOS_RETRY_ATTEMPTS=N)
	$(PY) -m bench.chaos --model $(MODEL_DIR) $(if $(CHAOS_RETRY_ATTEMPTS),--retry-attempts $(CHAOS_RETRY_ATTEMPTS))

# Not a test and not in CI: server memory after rounds of hostile requests sent straight to
# Triton (docs/reliability.md); writes bench/results/<time>-hostile/.
.PHONY: hostile
hostile: protos ## server memory after hostile rounds (gzip bombs, huge TEXT, abandoned documents)
	$(PY) -m bench.hostile

evaluate-default: setup ## evaluate MODEL_DIR on every corpus (test + dev) into MODEL_DIR/metrics.json (the model card's numbers)
	$(PY) -m instructner.cli evaluate-all --model $(MODEL_DIR)

fewshot-ablation: setup $(TOKENIZER_DIR)/tokenizer.json ## few-shot ablation, NER-only vs NER+aux (trains the copy stage and the ATIS-only base first if missing)
	test -f runs/cpu-d128-copy-stage/last/config.json || $(VENV)/bin/instructner train --config configs/cpu-d128-copy-stage.yaml
	test -f runs/fewshot-base-copy/last/config.json || $(VENV)/bin/instructner train --config configs/fewshot-base.yaml
	$(VENV)/bin/instructner ablate --config configs/fewshot-ablation.yaml

fewshot-table: setup $(TOKENIZER_DIR)/tokenizer.json ## K-shot table (K=5..50, 5 draws, NER vs NER+aux) on MIT Restaurant from the ATIS-only base and the shipped model; resumable
	test -f runs/cpu-d128-copy-stage/last/config.json || $(VENV)/bin/instructner train --config configs/cpu-d128-copy-stage.yaml
	test -f runs/fewshot-base-copy/last/config.json || $(VENV)/bin/instructner train --config configs/fewshot-base.yaml
	$(PY) -m bench.fewshot --base atis-base=runs/fewshot-base-copy/last --base shipped=$(MODEL_DIR) \
		--corpus mit_restaurant --steps 300 --learning-rate 1e-3 --out runs/fewshot-table

lint: setup protos ## ruff + mypy + the import rules between packages (lint-imports, pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check instructner tests client bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy instructner
	$(VENV)/bin/mypy client/src client/build_protos.py client/build_sync.py
	$(VENV)/bin/mypy bench
	# the Triton models one by one: each is a top-level module named model
	for model in model_repository/*/1/model.py; do $(VENV)/bin/mypy "$$model" || exit 1; done

unit: setup protos ## unit tests (no server, no network)
	$(PY) -m pytest tests/unit -q

integration: setup protos setup-proxy ## integration tests (real tritonserver and nginx on loopback)
	$(PY) -m pytest tests/integration -q -ra

test: setup protos lint setup-proxy ## everything CI runs: lint, unit and integration tests
	$(PY) -m pytest tests -q -ra

# The reference front proxy (deploy/nginx) runs Debian's nginx with its stream module (connections
# counted per caller at accept) and njs (HTTP inference bodies checked); the integration tests
# start it.
PROXY_PACKAGES := nginx-light libnginx-mod-stream libnginx-mod-http-js
PROXY_READY := { command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx; } && \
	test -f /usr/lib/nginx/modules/ngx_stream_module.so && \
	test -f /usr/lib/nginx/modules/ngx_http_js_module.so
setup-proxy: ## install nginx with its stream and njs modules (Debian packages) for the front proxy and its tests
	@$(PROXY_READY) || \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(PROXY_PACKAGES) \
		|| { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends $(PROXY_PACKAGES); }; } >/dev/null
	@$(PROXY_READY) || \
		{ echo "the front proxy needs the Debian packages $(PROXY_PACKAGES) (install needs root)"; exit 1; }

PROXY_HTTP_PORT ?= 8080
PROXY_GRPC_PORT ?= 8081
proxy: setup setup-proxy ## front proxy on HOST:PROXY_HTTP_PORT/PROXY_GRPC_PORT for a running `make serve`
	$(PY) -m instructner.cli proxy --host $(HOST) --http-port $(PROXY_HTTP_PORT) \
		--grpc-port $(PROXY_GRPC_PORT) --upstream-http-port $(HTTP_PORT) \
		--upstream-grpc-port $(GRPC_PORT)

# Training the default model (docs/training.md): the task tokenizer, then the resumable runs:
# the copy stage, then the tasks from its weights (each resumes where it stopped; a finished
# stage returns at once).
TRAIN_STAGES ?= configs/cpu-d128-copy-stage.yaml configs/cpu-d128-copy.yaml
$(TOKENIZER_DIR)/tokenizer.json: | $(STAMP)
	$(VENV)/bin/instructner tokenizer --out $(TOKENIZER_DIR)

tokenizer: $(TOKENIZER_DIR)/tokenizer.json ## train the 8k task tokenizer into TOKENIZER_DIR

train-default: setup tokenizer ## train (or resume) the default model's runs (TRAIN_STAGES, in order); Ctrl-C saves
	for config in $(TRAIN_STAGES); do \
		out=$$($(PY) -c "import yaml; print(yaml.safe_load(open('$$config'))['output_dir'])"); \
		$(VENV)/bin/instructner train --config $$config \
			$$(test -f $$out/last/trainer_state.pt && echo --resume) || exit 1; \
	done
