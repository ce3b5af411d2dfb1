#!/usr/bin/env bash
# Runs Elle's list-append checker on a recorded Kafka history, beside the built-in checkers:
#   ci/elle.sh HISTORY.jsonl
# 1. `sluice-check --elle-export HISTORY.elle.edn HISTORY.jsonl` (the built-in checkers run too);
# 2. `$ELLE_CLI -m list-append --consistency-models serializable HISTORY.elle.edn`.
# Serializable, not strict: a poll may return a shorter prefix than the log already holds.
# ELLE_CLI: the elle-cli command (e.g. "java -jar elle-cli-0.1.9-standalone.jar"); when unset the
# Elle check is skipped (exit 0). SLUICE_CHECK: the sluice-check binary (default: on PATH, else
# build/ci/checkers/sluice-check). Exit 0: both valid; 1: an anomaly; 2: bad usage or input.
set -uo pipefail
history="${1:?usage: ci/elle.sh HISTORY.jsonl}"
if [ -z "${ELLE_CLI:-}" ]; then
  echo "elle.sh: ELLE_CLI is not set; skipping the Elle check of $history"
  exit 0
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
check="${SLUICE_CHECK:-$(command -v sluice-check || echo "$root/build/ci/checkers/sluice-check")}"
export_path="${history%.jsonl}.elle.edn"

"$check" --elle-export "$export_path" "$history"
builtin_status=$?
if [ "$builtin_status" -ge 2 ]; then
  echo "elle.sh: sluice-check could not read $history" >&2
  exit 2
fi

# ELLE_CLI may be a command with arguments, so it is split on spaces on purpose.
# shellcheck disable=SC2086
$ELLE_CLI -m list-append --consistency-models serializable "$export_path"
elle_status=$?
echo "elle.sh: built-in checkers exit $builtin_status, elle-cli exit $elle_status ($export_path)"
if [ "$builtin_status" -ne 0 ] || [ "$elle_status" -ne 0 ]; then exit 1; fi
exit 0
