#!/usr/bin/env bash
# Entry point of the InstructNER GPU image (build/Dockerfile).
#
#   entrypoint.sh build   build the TensorRT-LLM engines and the GPU model repository into
#                         $INSTRUCTNER_OUT from the checkpoint in $MODEL_DIR; skipped when the
#                         engines there were built from this checkpoint with these settings.
#                         Engines are specific to the GPU model and the TensorRT-LLM version, so
#                         build on the GPU that will serve (Kubernetes: the init container).
#   entrypoint.sh serve   build if needed, then run tritonserver: HTTP 8000, gRPC 8001,
#                         metrics 8002 (the default command).
#   anything else         run as a command (e.g. bash).
set -euo pipefail

MODEL_DIR="${MODEL_DIR:-/models/instructner}"
OUT="${INSTRUCTNER_OUT:-/engines}"
TRTLLM_DTYPE="${TRTLLM_DTYPE:-bfloat16}"

build() {
  python3 -m instructner.serving.build_trtllm --model "$MODEL_DIR" --out "$OUT" \
    --dtype "$TRTLLM_DTYPE" --reuse "$@"
}

serve() {
  build
  # The server flags of tensorrtllm_backend v0.17.0 scripts/launch_triton_server.py for world
  # size 1, which starts tritonserver under `mpirun -n 1`; USE_MPIRUN=0 starts it directly.
  local cmd=(
    tritonserver
    "--model-repository=$OUT/model_repository"
    --http-port=8000 --grpc-port=8001 --metrics-port=8002
    --disable-auto-complete-config
    "--backend-config=python,shm-region-prefix-name=prefix0_"
    "$@"
  )
  if [ "${USE_MPIRUN:-1}" = 1 ]; then
    exec mpirun --allow-run-as-root -n 1 "${cmd[@]}"
  fi
  exec "${cmd[@]}"
}

case "${1:-serve}" in
  build) shift; build "$@" ;;
  serve) shift; serve "$@" ;;
  *) exec "$@" ;;
esac
