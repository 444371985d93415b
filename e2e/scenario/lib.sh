# Sourced by the e2e/scenario scripts: requests from the fraud model's reference rows, checks of
# answers against the outputs XGBoost gave, and waiting on the load driver's status file.

SLUICE_SCENARIO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SLUICE_REPO_ROOT="$(cd "$SLUICE_SCENARIO_ROOT/../.." && pwd)"

# fail MESSAGE: stops the scenario (exit 1) with MESSAGE, which failure_summary repeats after the
# state dumped at exit, so that the reason is the last thing a log shows.
scenario_failure=""
fail() {
  scenario_failure="$*"
  echo "FAIL: $*" >&2
  exit 1
}
failure_summary() {
  echo "FAIL: ${scenario_failure:-exited with status $1 (the message is above)}" >&2
}

# fraud_request REQUEST_OUT EXPECTED_OUT [ROWS]: a V2 request of ROWS (default 8) reference rows
# without missing values, and the probabilities XGBoost gave for them with its tolerance.
fraud_request() {
  python3 - "$SLUICE_REPO_ROOT/bench/fraud/model/fraud.reference.json" "$1" "$2" "${3:-8}" <<'PY'
import json, sys
ref = json.load(open(sys.argv[1]))
rows = [(i, o) for i, o in zip(ref["inputs"], ref["outputs"]) if None not in i][:int(sys.argv[4])]
req = {"inputs": [{"name": "input-0", "shape": [len(rows), len(rows[0][0])], "datatype": "FP32",
                   "data": [x for r, _ in rows for x in r]}]}
json.dump(req, open(sys.argv[2], "w"))
json.dump({"outputs": [o for _, o in rows], "tolerance": ref["tolerance"]}, open(sys.argv[3], "w"))
PY
}

# fraud_check EXPECTED ANSWER: the answer (a V2 response body, or a raw HTTP response whose body
# follows the headers) holds the expected predictions; prints how many and the model version.
fraud_check() {
  python3 - "$1" "$2" <<'PY'
import json, sys
exp = json.load(open(sys.argv[1]))
body = open(sys.argv[2]).read()
if "{" not in body:
    sys.exit(f"no JSON in the answer: {body[:300]!r}")
body = body[body.index("{"):]
ans = json.loads(body)
got = ans["outputs"][0]["data"]
want = [x for o in exp["outputs"] for x in (o if isinstance(o, list) else [o])]
if len(got) != len(want) or any(abs(a - b) > max(exp["tolerance"], 1e-5) for a, b in zip(got, want)):
    sys.exit(f"predictions differ: got {got} want {want}")
print(f"  {len(got)} predictions match the reference (model {ans.get('model_name')} version {ans.get('model_version')})")
PY
}

# load_field STATUS_FILE PYTHON_EXPR: evaluates PYTHON_EXPR over the load driver's status `s`.
load_field() {
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# wait_for_load STATUS_FILE PYTHON_CONDITION TIMEOUT_S WHAT: waits until the condition over the
# status `s` holds (re-read every 250 ms, as often as sluice-load writes it).
wait_for_load() {
  local file="$1" cond="$2" timeout="$3" what="$4" deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    if [[ -f "$file" ]] &&
      python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
        "$file" "$cond" 2>/dev/null; then
      return 0
    fi
    sleep 0.25
  done
  scenario_failure="$what: not within ${timeout}s; load status: $(cat "$file" 2>/dev/null)"
  echo "FAIL: $scenario_failure" >&2
  return 1
}
