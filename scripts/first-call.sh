#!/usr/bin/env bash
# From a fresh local stack to a passing `sfvapi-admin doctor`, with the commands alone, timed.
# Run through scripts/services.sh (DynamoDB Local and moto), after `cargo build -p sfvapi-local
# -p sfvapi-admin`:   make first-call
#
# "Fresh": the local stack (`sfvapi-local serve`: the sandbox's Salesforce, Vapi and Twilio, the
# table and secrets) with nothing set up in Vapi — the credential and assistants the sandbox
# seeds are deleted through Vapi's API, and the stack's assistant ids unset — and no Event Relay
# in Salesforce. Then exactly the operator's commands run, each timed; what `sam deploy
# --parameter-overrides …` does to a deployed stack (set the printed ids) is done here by
# exporting them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
python="$root/.tools/venv/bin/python"
state="$(mktemp -d "${TMPDIR:-/tmp}/sfvapi-first-call.XXXXXX")"
serve_pid=""
cleanup() {
  if [ -n "$serve_pid" ]; then
    kill "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  rm -rf "$state"
}
trap cleanup EXIT

SFVAPI_NO_METRICS=1 SFVAPI_LOCAL_ENV_FILE="$state/stack.env" "$bin/sfvapi-local" serve \
  >"$state/urls.json" 2>"$state/serve.log" &
serve_pid=$!
for _ in $(seq 1 600); do
  if [ -s "$state/urls.json" ]; then break; fi
  sleep 0.1
done
if [ ! -s "$state/urls.json" ]; then
  echo "error: the local stack did not start; its log:" >&2
  cat "$state/serve.log" >&2
  exit 1
fi
# The stack's variables, as a deployed stack's functions have them (what --stack reads).
while IFS= read -r line; do
  [ -n "$line" ] && export "$line"
done <"$state/stack.env"
export SFVAPI_NO_METRICS=1
url() { "$python" -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$state/urls.json" "$1"; }
webhook="$(url "d['vapi_webhook']")"
vapi="$(url "d['sandbox']['vapi']")"
# The sandbox's Vapi key (sandbox::Config's default; the stack's VAPI_SECRET_ARN holds it).
key="sandbox-vapi-key"
for path in "assistant/sandbox-assistant" "assistant/$VAPI_INBOUND_ASSISTANT_ID" "credential/sandbox-credential"; do
  curl -sf -X DELETE -H "authorization: Bearer $key" "$vapi/$path" >/dev/null
done
unset VAPI_ASSISTANT_ID VAPI_INBOUND_ASSISTANT_ID
echo "fresh local stack: Vapi has no credential and no assistant, Salesforce no event relay"
echo

ms() { echo $(( $(date +%s%N) / 1000000 )); }
total=0
run() {
  local t0 t1
  echo "\$ sfvapi-admin $*"
  t0="$(ms)"
  set +e
  "$bin/sfvapi-admin" "$@" | tee "$state/out"
  local rc="${PIPESTATUS[0]}"
  set -e
  t1="$(ms)"
  total=$(( total + t1 - t0 ))
  echo "  ($(( t1 - t0 )) ms, exit $rc)"
  echo
  return "$rc"
}

run setup vapi --webhook-url "$webhook"
# `sam deploy --parameter-overrides VapiAssistantId=… VapiInboundAssistantId=…`: the stack's ids.
line="$(grep '^sam deploy' "$state/out")"
VAPI_ASSISTANT_ID="$(sed -n 's/.*VapiAssistantId=\([^ ]*\).*/\1/p' <<<"$line")"
VAPI_INBOUND_ASSISTANT_ID="$(sed -n 's/.*VapiInboundAssistantId=\([^ ]*\).*/\1/p' <<<"$line")"
export VAPI_ASSISTANT_ID VAPI_INBOUND_ASSISTANT_ID
run setup event-relay --event Call_Request__e --event CaseChangeEvent --filter "CaseChangeEvent=Priority='High'"
run doctor --webhook-url "$webhook"
echo "commands: ${total} ms in all (sfvapi-admin setup vapi, setup event-relay, doctor)"
