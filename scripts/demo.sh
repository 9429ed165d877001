#!/usr/bin/env bash
# `make demo`: mock providers + Envoy with the filter (envoy/envoy.yaml), the
# seed's requests routed through it, then serving on :10000 until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
ENVOY=${ENVOY:-.venv/bin/envoy}
MOCK=${MOCK:-target/debug/mock-provider}
LIMITS=${LIMITS:-target/debug/llm-router-limits}

# Demo keys: the mocks accept exactly these; the filter swaps them in.
export LITELLM_MASTER_KEY=${LITELLM_MASTER_KEY:-sk-1234}
export OPENAI_API_KEY=sk-demo-openai ANTHROPIC_API_KEY=sk-ant-demo GROQ_API_KEY=gsk-demo-groq

logs=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$MOCK" >"$logs/mock.log" 2>&1 &
pids+=($!)
"$ENVOY" -c envoy/envoy.yaml --concurrency 1 -l warning >"$logs/envoy.log" 2>&1 &
pids+=($!)

for _ in $(seq 200); do
  curl -sf -o /dev/null http://127.0.0.1:9901/ready && break
  kill -0 "${pids[1]}" 2>/dev/null || { echo "Envoy did not start:"; cat "$logs/envoy.log"; exit 1; }
  sleep 0.05
done
curl -sf -o /dev/null http://127.0.0.1:9901/ready || { echo "Envoy not ready:"; cat "$logs/envoy.log"; exit 1; }

echo "llm-router demo: Envoy on http://localhost:10000, master key $LITELLM_MASTER_KEY"
echo
printf '%-38s %-7s %s\n' "request model" "status" "answer"
for model in anthropic/claude-3-sonnet-20240229 groq/llama3-8b-8192 fo::hi::static::hi openai/gpt-4o; do
  body=$(curl -s -w '\n%{http_code}' http://localhost:10000/v1/chat/completions \
    -H "Authorization: Bearer $LITELLM_MASTER_KEY" -H 'Content-Type: application/json' \
    -d "{\"model\": \"$model\", \"messages\": [{\"role\": \"user\", \"content\": \"what llm are you\"}]}")
  status=${body##*$'\n'}
  answer=$(printf '%s' "${body%$'\n'*}" | python3 -c '
import json, sys
r = json.load(sys.stdin)
if "error" in r:
    print("{code}: {message}".format(**r["error"]))
else:
    m = r["mock"]
    print("{} at {} got model {!r}".format(m["provider"], m["path"], r["model"]))
')
  printf '%-38s %-7s %s\n' "$model" "$status" "$answer"
done
echo
echo "The OpenAI, Anthropic and LiteLLM Python SDKs against it (tests/sdk/clients.py):"
ROUTER=http://localhost:10000 MASTER_KEY=$LITELLM_MASTER_KEY LITELLM_LOCAL_MODEL_COST_MAP=True \
  "${PYTHON:-.venv/bin/python}" tests/sdk/clients.py | sed 's/^/  /'

# Limits: a second Envoy (envoy/envoy.limits.yaml, from examples/limits.yaml)
# with Envoy's rate-limit filters asking llm-router-limits, which reads the
# same file. Its keys are sk-demo-team-a (3 requests a minute) and
# sk-demo-intern (a budget of $0.0003 a day).
"$LIMITS" --config examples/limits.yaml --listen 127.0.0.1:8081 >"$logs/limits.log" 2>&1 &
pids+=($!)
"$ENVOY" -c envoy/envoy.limits.yaml --concurrency 1 -l warning --use-dynamic-base-id >"$logs/envoy.limits.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do
  curl -sf -o /dev/null http://127.0.0.1:9902/ready && (exec 3<>/dev/tcp/127.0.0.1/8081) 2>/dev/null && break
  sleep 0.05
done
curl -sf -o /dev/null http://127.0.0.1:9902/ready || { echo "the limits Envoy did not start:"; cat "$logs/envoy.limits.log"; exit 1; }
limited() {
  curl -s -i http://localhost:10001/v1/chat/completions -H "Authorization: Bearer $1" \
    -H 'Content-Type: application/json' -d '{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}' \
    | python3 -c '
import json, sys
head, _, body = sys.stdin.read().partition("\r\n\r\n")
status = head.split()[1]
retry = [l.split(":", 1)[1].strip() for l in head.splitlines() if l.lower().startswith("retry-after:")]
r = json.loads(body)
said = "{code}: {message}".format(**r["error"]) if "error" in r else "answered"
print("  {}  {}{}".format(status, said, "  (retry-after: {} s)".format(retry[0]) if retry else ""))
'
}
echo
echo "Limits on :10001 (examples/limits.yaml): key team-a, 3 requests a minute:"
for _ in 1 2 3 4; do limited sk-demo-team-a; done
echo "key intern, a budget of \$0.0003 a day at gpt-4o's prices (charged when each answer ends):"
for _ in 1 2 3 4; do limited sk-demo-intern; sleep 0.2; done

echo
echo "Envoy's log: $logs/envoy.log. Try your own request, then Ctrl-C to stop:"
echo "  curl localhost:10000/v1/chat/completions -H 'Authorization: Bearer $LITELLM_MASTER_KEY' \\"
echo "    -H 'Content-Type: application/json' -d '{\"model\": \"groq/llama3-8b-8192\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}'"
[ -n "${DEMO_EXIT:-}" ] && exit 0
wait "${pids[1]}"
