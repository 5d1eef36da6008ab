#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript): prints the GPUs
# this executor may use as {"name": "gpu", "addresses": ["0", "1", ...]}.
# Honors CUDA_VISIBLE_DEVICES when the cluster manager already restricted the container.
set -euo pipefail
if [[ -n "${CUDA_VISIBLE_DEVICES:-}" ]]; then
  ids="$CUDA_VISIBLE_DEVICES"
else
  ids="$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | paste -sd, - || true)"
fi
addresses=""
IFS=',' read -ra parts <<< "$ids"
for id in "${parts[@]}"; do
  id="${id// /}"
  [[ -n "$id" ]] && addresses+="${addresses:+,}\"$id\""
done
echo "{\"name\": \"gpu\", \"addresses\": [$addresses]}"
