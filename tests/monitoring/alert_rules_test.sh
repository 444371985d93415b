#!/usr/bin/env bash
# alert_rules_test.sh — the alert rules (charts/sluice/rules/sluice-alerts.yaml) with Debian's
# promtool: the file is valid (check rules), every alert fires on the series of
# sluice-alerts.test.yaml and stays silent on the others (test rules), and every alert has the
# summary, description and a runbook_url whose anchor docs/operations.md has.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rules="$root/charts/sluice/rules/sluice-alerts.yaml"
cd "$root/tests/monitoring"
promtool check rules "$rules"
promtool test rules sluice-alerts.test.yaml
python3 - "$rules" "$root/docs/operations.md" sluice-alerts.test.yaml <<'PY'
import re, sys, yaml
rules, doc, tests = sys.argv[1:]
alerts = [r for g in yaml.safe_load(open(rules))["groups"] for r in g["rules"] if "alert" in r]
text = open(doc).read()
anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
tested = yaml.safe_load(open(tests))
fired = {t["alertname"] for c in tested["tests"] for t in c.get("alert_rule_test", []) if t["exp_alerts"]}
silent = {t["alertname"] for c in tested["tests"] for t in c.get("alert_rule_test", []) if not t["exp_alerts"]}
bad = []
for a in alerts:
    name, ann = a["alert"], a.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        if not ann.get(key):
            bad.append(f"{name}: no {key}")
    anchor = "alert-" + name.lower()
    if not ann.get("runbook_url", "").endswith("docs/operations.md#" + anchor):
        bad.append(f"{name}: runbook_url should end in docs/operations.md#{anchor}")
    if anchor not in anchors:
        bad.append(f"{name}: docs/operations.md has no anchor {anchor}")
    if name not in fired:
        bad.append(f"{name}: no test where it fires")
    if name not in silent:
        bad.append(f"{name}: no test where it stays silent")
if bad:
    sys.exit("\n".join(bad))
print(f"{len(alerts)} alerts: annotated, runbook anchors present, each tested firing and silent")
PY
