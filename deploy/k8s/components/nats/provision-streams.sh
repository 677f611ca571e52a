#!/bin/sh
# Creates or updates every stream described in /streams/*.json (nats CLI stream config JSON).
# The same configuration as services/common/bus.py's ensure_streams (a test keeps them equal),
# so the services' own ensure_streams at start-up finds nothing to change.
set -eu
until nats --server "$NATS_URL" stream ls >/dev/null 2>&1; do
  echo "waiting for JetStream at $NATS_URL"
  sleep 2
done
for file in /streams/*.json; do
  name=$(sed -n 's/^ *"name": *"\([^"]*\)".*/\1/p' "$file")
  if nats --server "$NATS_URL" stream info "$name" >/dev/null 2>&1; then
    nats --server "$NATS_URL" stream edit "$name" --config "$file" --force
  else
    nats --server "$NATS_URL" stream add "$name" --config "$file"
  fi
done
nats --server "$NATS_URL" stream report
