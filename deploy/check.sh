#!/usr/bin/env bash
# Checks deploy/: the alerting rules (syntax and unit tests) and every PromQL expression of
# the Grafana dashboard (parsed by promtool, with Grafana's variables filled in).
#   deploy/check.sh        (needs promtool: Debian's prometheus package)
set -euo pipefail
cd "$(dirname "$0")"
promtool check rules prometheus/alerts.yml
promtool test rules prometheus/alerts.test.yml
rules="$(mktemp --suffix=.yml)"
trap 'rm -f "$rules"' EXIT
python3 - grafana/breakwater.json >"$rules" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
print("groups:\n  - name: dashboard\n    rules:")
for panel in dash["panels"]:
    for i, target in enumerate(panel["targets"]):
        expr = target["expr"].replace("$__rate_interval", "5m").replace("$instance", ".*")
        print(f"      - record: dashboard:panel{panel['id']}:{i}")
        print(f"        expr: {json.dumps(expr)}")
PY
promtool check rules "$rules"
echo "deploy/: rules and dashboard queries check out"
