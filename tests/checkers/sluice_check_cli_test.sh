#!/usr/bin/env bash
# sluice-check exits 0 on a valid history, 1 on anomalies (and lists them), 2 on bad usage or
# unreadable input, and writes its exports; ci/elle.sh skips without ELLE_CLI and otherwise hands
# the list-append export to it.
# Usage: sluice_check_cli_test.sh PATH/TO/sluice-check PATH/TO/ci/elle.sh
set -uo pipefail
check="${1:?usage: sluice_check_cli_test.sh SLUICE_CHECK ELLE_SH}"
elle_sh="${2:?usage: sluice_check_cli_test.sh SLUICE_CHECK ELLE_SH}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
out="$dir/out"

expect() {
  local want="$1"
  shift
  "$@" >"$out" 2>&1
  local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "expected exit $want, got $got: $*"
    cat "$out"
    exit 1
  fi
}

cat >"$dir/valid.jsonl" <<'JSON'
{"index":0,"process":"producer-1","type":"invoke","f":"send","time":1,"value":[{"topic":"t","partition":0,"key":"k","value":"a","offset":null}]}
{"index":1,"process":"producer-1","type":"ok","f":"send","time":2,"value":[{"topic":"t","partition":0,"key":"k","value":"a","offset":0}]}
{"index":2,"process":"final-reader","type":"invoke","f":"poll","time":3,"value":[]}
{"index":3,"process":"final-reader","type":"ok","f":"poll","time":4,"value":[{"topic":"t","partition":0,"key":"k","value":"a","offset":0}]}
JSON
# The same, but the final read lost the acknowledged record at offset 0 (it holds offset 1).
head -n 3 "$dir/valid.jsonl" >"$dir/lost.jsonl"
cat >>"$dir/lost.jsonl" <<'JSON'
{"index":4,"process":"producer-2","type":"info","f":"send","time":5,"value":[{"topic":"t","partition":0,"key":"k","value":"b","offset":null}]}
{"index":5,"process":"final-reader","type":"ok","f":"poll","time":6,"value":[{"topic":"t","partition":0,"key":"k","value":"b","offset":1}]}
JSON

expect 0 "$check" "$dir/valid.jsonl" --edn "$dir/valid.edn" --elle-export "$dir/valid.elle.edn"
grep -q 'valid: sends ok=1' "$out" || { echo "no summary"; cat "$out"; exit 1; }
grep -q ':f :send' "$dir/valid.edn" || { echo "no EDN written"; exit 1; }
grep -q '\[:append, "t/0", "a"\]' "$dir/valid.elle.edn" || { echo "no Elle export written"; exit 1; }
expect 0 "$check" - <"$dir/valid.jsonl"

expect 1 "$check" "$dir/lost.jsonl"
grep -q '^anomaly lost-write: t/0 offset 0' "$out" || { echo "lost write not listed"; cat "$out"; exit 1; }
grep -q 'INVALID' "$out" || { echo "no INVALID summary"; cat "$out"; exit 1; }

echo '{"index":0,"process":"p","type":"ok","f":"send","value":[' >"$dir/broken.jsonl"
expect 2 "$check" "$dir/broken.jsonl"
grep -q 'line 1' "$out" || { echo "no line number"; cat "$out"; exit 1; }
expect 2 "$check" "$dir/no-such-file.jsonl"
expect 2 "$check"
expect 2 "$check" "$dir/valid.jsonl" --no-such-flag
expect 2 "$check" "$dir/valid.jsonl" --elle-export "$dir/no-such-dir/x.edn"

# ci/elle.sh: skipped without ELLE_CLI; with it, runs the export through elle-cli's arguments.
expect 0 env -u ELLE_CLI "$elle_sh" "$dir/valid.jsonl"
grep -q 'skipping' "$out" || { echo "elle.sh did not say it skipped"; cat "$out"; exit 1; }
cat >"$dir/fake-elle-cli" <<'SH'
#!/bin/sh
# Accepts `-m list-append --consistency-models serializable FILE` and a FILE with an append.
[ "$1 $2 $3 $4" = "-m list-append --consistency-models serializable" ] || exit 3
grep -q ':append' "$5" || exit 4
echo "$5 true"
SH
chmod +x "$dir/fake-elle-cli"
expect 0 env ELLE_CLI="$dir/fake-elle-cli" SLUICE_CHECK="$check" "$elle_sh" "$dir/valid.jsonl"
[ -f "$dir/valid.elle.edn" ] || { echo "elle.sh wrote no export"; exit 1; }
expect 1 env ELLE_CLI="$dir/fake-elle-cli" SLUICE_CHECK="$check" "$elle_sh" "$dir/lost.jsonl"
expect 1 env ELLE_CLI=false SLUICE_CHECK="$check" "$elle_sh" "$dir/valid.jsonl"
expect 2 env ELLE_CLI="$dir/fake-elle-cli" SLUICE_CHECK="$check" "$elle_sh" "$dir/broken.jsonl"
echo "sluice-check CLI and ci/elle.sh: ok"
