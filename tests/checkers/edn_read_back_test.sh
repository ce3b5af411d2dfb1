#!/usr/bin/env bash
# Proves the EDN and Elle list-append exports are well-formed EDN by reading them back with a real
# EDN reader (Clojure's clojure.edn) and checking op counts, keywords and escaped strings.
# Usage: edn_read_back_test.sh PATH/TO/sluice-check. Exit 77 (skipped) when clojure is missing.
set -euo pipefail
check="${1:?usage: edn_read_back_test.sh PATH/TO/sluice-check}"
if ! command -v clojure >/dev/null 2>&1; then
  echo "clojure is not installed (Debian package 'clojure'); skipping"
  exit 77
fi
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT

# Two producers (one send spans two partitions, one times out), a group consumer, a commit, the
# final read. The first value holds a quote, a backslash, a newline, a control character, a
# non-ASCII letter and a byte that is not UTF-8 (\udc80 stands for the raw byte 0x80).
cat >"$dir/history.jsonl" <<'JSON'
{"index":0,"process":"producer-1","type":"invoke","f":"send","time":1,"value":[{"topic":"t","partition":0,"key":"k","value":"q\"uote\\back\nnl\u0001\u00e9\udc80","offset":null}]}
{"index":1,"process":"producer-1","type":"ok","f":"send","time":2,"value":[{"topic":"t","partition":0,"key":"k","value":"q\"uote\\back\nnl\u0001\u00e9\udc80","offset":0}]}
{"index":2,"process":"producer-1","type":"invoke","f":"send","time":3,"value":[{"topic":"t","partition":0,"key":"k","value":"v2","offset":null},{"topic":"t","partition":1,"key":"k","value":"v3","offset":null}]}
{"index":3,"process":"producer-1","type":"ok","f":"send","time":4,"value":[{"topic":"t","partition":0,"key":"k","value":"v2","offset":1},{"topic":"t","partition":1,"key":"k","value":"v3","offset":0}]}
{"index":4,"process":"consumer-1","type":"ok","f":"assign","time":5,"value":{"group":"g","generation":1,"partitions":[{"topic":"t","partition":0},{"topic":"t","partition":1}]}}
{"index":5,"process":"consumer-1","type":"invoke","f":"poll","time":6,"value":[]}
{"index":6,"process":"consumer-1","type":"ok","f":"poll","time":7,"value":[{"topic":"t","partition":0,"key":"k","value":"q\"uote\\back\nnl\u0001\u00e9\udc80","offset":0},{"topic":"t","partition":0,"key":"k","value":"v2","offset":1},{"topic":"t","partition":1,"key":"k","value":"v3","offset":0}]}
{"index":7,"process":"consumer-1","type":"invoke","f":"commit","time":8,"value":{"group":"g","generation":1,"offsets":[{"topic":"t","partition":0,"offset":2}]}}
{"index":8,"process":"consumer-1","type":"ok","f":"commit","time":9,"value":{}}
{"index":9,"process":"producer-2","type":"invoke","f":"send","time":10,"value":[{"topic":"t","partition":1,"key":"k2","value":"v4","offset":null}]}
{"index":10,"process":"producer-2","type":"info","f":"send","time":11,"value":[{"topic":"t","partition":1,"key":"k2","value":"v4","offset":null}],"error":"request timed out"}
{"index":11,"process":"final-reader","type":"invoke","f":"poll","time":12,"value":[]}
{"index":12,"process":"final-reader","type":"ok","f":"poll","time":13,"value":[{"topic":"t","partition":0,"key":"k","value":"q\"uote\\back\nnl\u0001\u00e9\udc80","offset":0},{"topic":"t","partition":0,"key":"k","value":"v2","offset":1},{"topic":"t","partition":1,"key":"k","value":"v3","offset":0}]}
{"index":13,"process":"final-reader","type":"ok","f":"group-state","time":14,"value":{"group":"g","state":"Stable"}}
JSON

"$check" --edn "$dir/history.edn" --elle-export "$dir/elle.edn" "$dir/history.jsonl"

cat >"$dir/read.clj" <<'CLJ'
(require '[clojure.edn :as edn])
(let [[history-path elle-path] *command-line-args*
      history (edn/read-string (slurp history-path :encoding "UTF-8"))
      elle (edn/read-string (slurp elle-path :encoding "UTF-8"))
      types #{:invoke :ok :fail :info}
      tricky "q\"uote\\back\nnl\u0001\u00e9\udc80"]
  (assert (vector? history) "the EDN history is one vector")
  (assert (= 14 (count history)) (str "history ops: " (count history)))
  (doseq [[i op] (map-indexed vector history)]
    (assert (= i (:index op)) (pr-str op))
    (assert (string? (:process op)) (pr-str op))
    (assert (contains? types (:type op)) (pr-str op))
    (assert (keyword? (:f op)) (pr-str op))
    (assert (integer? (:time op)) (pr-str op)))
  (assert (= tricky (-> history (nth 1) :value first :value)) "escaped value read back")
  (assert (nil? (-> history (nth 0) :value first :offset)))
  (assert (= :group-state (:f (nth history 13))))
  (assert (= "Stable" (-> history (nth 13) :value :state)))
  (assert (= "request timed out" (:error (nth history 10))))
  (assert (= [{:topic "t" :partition 0 :offset 2}] (-> history (nth 7) :value :offsets)))

  (assert (vector? elle) "the Elle export is one vector")
  ; sends: 1 + 2 partitions + 1 (info) = 4 transactions; polls from the log start: 2 + 2.
  (assert (= 16 (count elle)) (str "Elle ops: " (count elle)))
  (doseq [[i op] (map-indexed vector elle)]
    (assert (= i (:index op)) (pr-str op))
    (assert (integer? (:process op)) (pr-str op))
    (assert (contains? types (:type op)) (pr-str op))
    (assert (= :txn (:f op)) (pr-str op))
    (doseq [[f k v] (:value op)]
      (assert (contains? #{:append :r} f) (pr-str op))
      (assert (string? k) (pr-str op))
      (when (and (= f :r) (= :ok (:type op))) (assert (vector? v) (pr-str op)))))
  (assert (= [[:append "t/0" tricky]] (:value (nth elle 1))))
  (assert (some #(= [[:r "t/0" [tricky "v2"]]] (:value %)) elle) "a read of t/0 from the start")
  (assert (= 1 (count (filter #(= :info (:type %)) elle))) "the timed-out send is :info")
  (println "EDN read back: history" (count history) "ops, Elle" (count elle) "ops"))
CLJ
clojure "$dir/read.clj" "$dir/history.edn" "$dir/elle.edn"
