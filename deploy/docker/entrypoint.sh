#!/usr/bin/env bash
# Entry point of the InstructNER GPU image (deploy/docker/Dockerfile).
#
#   entrypoint.sh build   build the GPU model repository into $INSTRUCTNER_OUT from the
#                         checkpoint in $MODEL_DIR, for the engine $INSTRUCTNER_ENGINE:
#                         tensorrt_llm (the TensorRT-LLM image's default) builds the TensorRT-LLM
#                         engines, skipped when the engines there were built from this
#                         checkpoint with these settings; engines are specific to the GPU model
#                         and the TensorRT-LLM version, so build on the GPU that will serve
#                         (Kubernetes: the init container). ctranslate2 (the CTranslate2 image's
#                         default, Dockerfile.ctranslate2-cuda) places the checkpoint's CTranslate2
#                         conversion, no GPU needed; CT2_COMPUTE_TYPE (default auto) picks the
#                         compute type when the engine loads on its GPU.
#   entrypoint.sh serve   build if needed, then run tritonserver: HTTP 8000, gRPC 8001,
#                         metrics 8002 (the default command).
#   entrypoint.sh command print the tritonserver command `serve` runs (the admin key redacted).
#   anything else         run as a command (e.g. bash).
#
# Security (docs/reliability.md), the same as `make serve`: the admin protocols (model
# repository, shared memory incl. CUDA, trace, logging, statistics) answer only calls carrying
# the header $INSTRUCTNER_ADMIN_KEY_HEADER (default instructner-admin-key) with the key in
# $INSTRUCTNER_ADMIN_KEY; without a key they are closed by a random one that is never shown.
# Models are never loaded or unloaded remotely (model control mode none). gRPC over TLS, as
# the launcher's --tls-* options: INSTRUCTNER_TLS_CERT and INSTRUCTNER_TLS_KEY (PEM files),
# INSTRUCTNER_TLS_ROOT_CERT (CA of client certificates), INSTRUCTNER_TLS_MUTUAL=1 (require
# client certificates signed by it).
set -euo pipefail

MODEL_DIR="${MODEL_DIR:-/models/instructner}"
OUT="${INSTRUCTNER_OUT:-/engines}"
TRTLLM_DTYPE="${TRTLLM_DTYPE:-bfloat16}"
ENGINE="${INSTRUCTNER_ENGINE:-tensorrt_llm}"

build() {
  case "$ENGINE" in
    tensorrt_llm)
      python3 -m instructner.cli build-trtllm --model "$MODEL_DIR" --out "$OUT" \
        --dtype "$TRTLLM_DTYPE" --reuse "$@" ;;
    ctranslate2)
      python3 -m instructner.cli build --model "$MODEL_DIR" --out "$OUT" --device cuda \
        --compute-type "${CT2_COMPUTE_TYPE:-auto}" "$@" ;;
    *) echo "INSTRUCTNER_ENGINE must be tensorrt_llm or ctranslate2, got '$ENGINE'" >&2
      exit 2 ;;
  esac
}

ADMIN_PROTOCOLS="model-repository,shared-memory,trace,logging,statistics"

tls_flags() {
  tls=()
  local cert="${INSTRUCTNER_TLS_CERT:-}" key="${INSTRUCTNER_TLS_KEY:-}"
  local root="${INSTRUCTNER_TLS_ROOT_CERT:-}" mutual="${INSTRUCTNER_TLS_MUTUAL:-0}"
  if [ -z "$cert$key$root" ] && [ "$mutual" != 1 ]; then
    return 0
  fi
  if [ -z "$cert" ] || [ -z "$key" ]; then
    echo "INSTRUCTNER_TLS_CERT and INSTRUCTNER_TLS_KEY go together" >&2
    exit 2
  fi
  if [ "$mutual" = 1 ] && [ -z "$root" ]; then
    echo "INSTRUCTNER_TLS_MUTUAL=1 needs INSTRUCTNER_TLS_ROOT_CERT" >&2
    exit 2
  fi
  if [ "$mutual" = 1 ]; then tls+=(--grpc-use-ssl-mutual=true); else tls+=(--grpc-use-ssl=true); fi
  tls+=("--grpc-server-cert=$cert" "--grpc-server-key=$key")
  if [ -n "$root" ]; then tls+=("--grpc-root-cert=$root"); fi
}

random_key() {
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'  # 256 random bits, never shown
}

admin_key() {
  if [ -n "${INSTRUCTNER_ADMIN_KEY:-}" ]; then
    case "$INSTRUCTNER_ADMIN_KEY" in
      *[[:space:],:=]*) echo "INSTRUCTNER_ADMIN_KEY must not hold whitespace, ',', ':' or '='" >&2
        exit 2 ;;
    esac
    printf '%s' "$INSTRUCTNER_ADMIN_KEY"
  else
    random_key
  fi
}

server_command() {
  # The server flags of TensorRT-LLM's triton_backend/scripts/launch_triton_server.py for world
  # size 1 (unchanged since tensorrtllm_backend v0.17.0), plus the admin restriction.
  local header="${INSTRUCTNER_ADMIN_KEY_HEADER:-instructner-admin-key}"
  local key
  key="$(admin_key)"
  tls_flags
  cmd=(
    tritonserver
    "--model-repository=$OUT/model_repository"
    --http-port=8000 --grpc-port=8001 --metrics-port=8002
    --disable-auto-complete-config
    --model-control-mode=none
    "--grpc-restricted-protocol=$ADMIN_PROTOCOLS:$header=$key"
    "--http-restricted-api=$ADMIN_PROTOCOLS:$header=$key"
    "--backend-config=python,shm-region-prefix-name=prefix0_"
    "${tls[@]}"
    "$@"
  )
}

serve() {
  build
  server_command "$@"
  # The internal engine model answers only instruction_ner, which sends it this key; it lives in the server's environment only.
  INSTRUCTNER_INTERNAL_KEY="$(random_key)"
  export INSTRUCTNER_INTERNAL_KEY
  # launch_triton_server.py starts the TensorRT-LLM backend under `mpirun -n 1`; USE_MPIRUN=0
  # starts it directly. CTranslate2 needs no MPI.
  # A python model process that dies leaves Triton serving errors with /v2/health still 200:
  # instructner.deploy.supervise kills the server and exits 1 then, so that the container is
  # restarted (compose restart policy, Kubernetes); signals reach the server through it.
  local watch=(python3 -m instructner.deploy.supervise --)
  local mpi=1
  if [ "$ENGINE" = ctranslate2 ]; then mpi=0; fi
  if [ "${USE_MPIRUN:-$mpi}" = 1 ]; then
    exec "${watch[@]}" mpirun --allow-run-as-root -n 1 "${cmd[@]}"
  fi
  exec "${watch[@]}" "${cmd[@]}"
}

case "${1:-serve}" in
  build) shift; build "$@" ;;
  serve) shift; serve "$@" ;;
  command) shift; server_command "$@"; printf '%s\n' "${cmd[@]}" | sed -E 's/(restricted-(protocol|api)=.*=).*/\1***/' ;;
  *) exec "$@" ;;
esac
