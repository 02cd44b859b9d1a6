#!/usr/bin/env bash
# Build the image and smoke-test a container the way deploy/README.md runs it: read-only root,
# data in a volume, basic auth, published on loopback. Checks health, a fit, a plan job to the
# end, the security headers, and that a rebinding Host is refused. Needs a running Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=llmplan:smoke-$$
name=llmplan-smoke-$$
port=${LLMPLAN_SMOKE_PORT:-18765}
auth=(-u architect:smoke-passphrase)
cleanup() { docker rm -f "$name" > /dev/null 2>&1 || true; docker volume rm "$name" > /dev/null 2>&1 || true; }
trap cleanup EXIT
docker build -f deploy/Dockerfile -t "$tag" .
docker run -d --name "$name" --read-only --tmpfs /tmp -v "$name":/data -p "127.0.0.1:$port:8000" \
  -e LLMPLAN_AUTH_BASIC=architect:smoke-passphrase "$tag" > /dev/null
for _ in $(seq 1 120); do curl -fs "http://127.0.0.1:$port/api/health" > /dev/null && break; sleep 1; done
curl -fsS "http://127.0.0.1:$port/api/health" | grep -q '"status":"ok"'
curl -fsS "${auth[@]}" -H 'content-type: application/json' -d '{"model":"llama-3.1-8b","gpu":"h100-sxm"}' \
  "http://127.0.0.1:$port/api/fit" | grep -q '"fits":true'
job=$(curl -fsS "${auth[@]}" -H 'content-type: application/json' -H "origin: http://127.0.0.1:$port" \
  -d '{"scenario":{"models":["llama-3.1-8b"],"hardware":["h100-sxm"],"workload":{"preset":"chat","requests_per_day":20000}}}' \
  "http://127.0.0.1:$port/api/jobs/plan" | sed -n 's/.*"status_url":"\([^"]*\)".*/\1/p')
for _ in $(seq 1 120); do
  st=$(curl -fsS "${auth[@]}" "http://127.0.0.1:$port$job")
  case "$st" in *'"status":"done"'*) break ;; *'"status":"failed"'*) echo "$st"; exit 1 ;; esac
  sleep 1
done
case "$st" in *'"status":"done"'*) ;; *) echo "plan job did not finish: $st"; exit 1 ;; esac
curl -fsSI "${auth[@]}" "http://127.0.0.1:$port/" | grep -qi "content-security-policy: default-src 'self'"
code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" -H 'host: rebind.evil.example' "http://127.0.0.1:$port/api/health")
[ "$code" = 421 ] || { echo "rebinding Host answered $code"; exit 1; }
echo "docker smoke test passed ($tag)"
