"""Static checks of the Pakaura chart without a cluster; run by helm/check.sh with its pinned tools.

For every values combination that matters: `helm lint --strict` and `helm template`; the rendered
core objects against the Kubernetes OpenAPI schemas (kubernetes-validate, strict, at the chart's
oldest and the newest Kubernetes version); the monitoring.coreos.com objects structurally and,
when the npm models are installed, against the Prometheus Operator's schemas; every alert's
labels, annotations and runbook anchor; every PromQL expression of the rules and the dashboard
parsed, with its metric names, label names and label values checked against the host's metric
table below; the Dapr Kafka component's metadata against scripts/kafka/component.json, the list
of the component's keys that the local Kafka stand-in also reads (known names, allowed values,
none that breaks the delivery guarantees). Values that must be refused, or flagged, are tried
too. Exit 1 on any failure.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import kubernetes_validate
import promql_parser
import yaml

# The host's metrics (issue 11): name -> (type, labels, {label: allowed values}). The alerts and
# the dashboard may use these names only, plus the histograms' _bucket/_sum/_count series.
METRICS = {
    "pakaura_http_requests_total": ("counter", {"method", "route", "status"}, {}),
    "pakaura_http_request_duration_seconds": ("histogram", {"method", "route", "status"}, {}),
    "pakaura_outbox_pending": ("gauge", set(), {}),
    "pakaura_envelopes_pending": ("gauge", set(), {}),
    "pakaura_relay_lag_seconds": ("gauge", set(), {}),
    "pakaura_dead_letters_open": ("gauge", set(), {}),
    "pakaura_relay_holds": ("gauge", set(), {}),
    "pakaura_relay_held_events": ("gauge", set(), {}),
    "pakaura_relay_oldest_hold_seconds": ("gauge", set(), {}),
    "pakaura_relay_up": ("gauge", set(), {}),
    "pakaura_relay_restarts_total": ("counter", set(), {}),
    "pakaura_sidecar_ready": ("gauge", set(), {}),
    "pakaura_publish_total": (
        "counter",
        {"topic", "outcome"},
        {"outcome": {"published", "retry", "refused", "expired"}},
    ),
    "pakaura_publish_duration_seconds": ("histogram", {"topic"}, {}),
    "pakaura_publish_in_flight": ("gauge", set(), {}),
    "pakaura_publish_waiting_for_store": ("gauge", set(), {}),
    "pakaura_publish_store_pause_seconds": ("histogram", set(), {}),
    "pakaura_store_duration_seconds": (
        "histogram",
        {"call"},
        {
            "call": {
                "create_tasks",
                "claim_mutations",
                "record_mappings",
                "claim_tasks",
                "load_envelopes",
                "record_deliveries",
                "vacuum_queue",
            }
        },
    ),
    "pakaura_sqlite_writer_idle_seconds": ("histogram", set(), {}),
    "pakaura_dead_letters_total": ("counter", {"kind"}, {"kind": {"mapping", "publish"}}),
    "pakaura_mapper_calls_total": ("counter", {"mapper"}, {}),
    "pakaura_mapper_failures_total": (
        "counter",
        {"mapper", "kind"},
        {
            "kind": {
                "trap",
                "deadline",
                "memory_limit",
                "rejected",
                "invalid_output",
                "too_many_events",
                "event_too_large",
                "schema_violation",
            }
        },
    ),
    "pakaura_mapper_schema_violations_total": (
        "counter",
        {"mapper", "event_type", "mode"},
        {"mode": {"warn", "enforce"}},
    ),
    "pakaura_mapper_call_duration_seconds": ("histogram", {"mapper"}, {}),
    "pakaura_mapper_instances": ("gauge", {"mapper", "state"}, {"state": {"idle", "busy"}}),
    "pakaura_mappers_loaded": ("gauge", set(), {}),
    "pakaura_mapper_reloads_total": ("counter", {"outcome"}, {"outcome": {"applied", "refused"}}),
    "pakaura_mapper_releases_total": ("counter", {"action"}, {"action": {"promote", "rollback"}}),
    "pakaura_shadow_mutations_total": (
        "counter",
        {"result"},
        {"result": {"identical", "changed", "failed"}},
    ),
    "pakaura_shadow_events_total": (
        "counter",
        {"result"},
        {"result": {"same", "changed", "added", "removed"}},
    ),
    "pakaura_shadow_dropped_total": ("counter", set(), {}),
    "pakaura_mapper_chain_duration_seconds": ("histogram", set(), {}),
    "pakaura_envelopes_built_total": ("counter", set(), {}),
    "pakaura_jwks_refreshes_total": (
        "counter",
        {"outcome", "trigger"},
        {"outcome": {"success", "failure"}, "trigger": {"startup", "periodic", "unknown_kid"}},
    ),
    "pakaura_jwks_keys": ("gauge", set(), {}),
    "pakaura_jwks_last_success_timestamp_seconds": ("gauge", set(), {}),
}
# Prometheus's own per-target series (not the host's): PakauraRelayDown uses `up` to tell "no
# replica reports pakaura_relay_up" from "no pods at all".
PROMETHEUS_BUILTIN = {"up": set()}
# Labels Prometheus (and the Prometheus Operator's ServiceMonitor) put on every scraped series.
TARGET_LABELS = {"namespace", "job", "pod", "service", "instance", "container", "endpoint"}

SERIES = {}
for _name, (_type, _labels, _values) in METRICS.items():
    if _type == "histogram":
        SERIES[_name + "_bucket"] = (_labels | {"le"}, _values)
        SERIES[_name + "_sum"] = (_labels, _values)
        SERIES[_name + "_count"] = (_labels, _values)
    else:
        SERIES[_name] = (_labels, _values)
for _name, _labels in PROMETHEUS_BUILTIN.items():
    SERIES[_name] = (_labels, {})
ALL_LABELS = TARGET_LABELS | {"le"} | {label for labels, _ in SERIES.values() for label in labels}

# The alerts the chart defines (values.yaml prometheusRule.alerts), by rule name.
ALERTS = {
    "PakauraRelayLagHigh",
    "PakauraDeadLettersOpen",
    "PakauraTaskHeld",
    "PakauraPublishFailureRateHigh",
    "PakauraPublishRefused",
    "PakauraRelayDown",
    "PakauraRelayRestarting",
    "PakauraSidecarNotReady",
    "PakauraMapperFailures",
    "PakauraMapperReloadRefused",
    "PakauraHttpErrorRateHigh",
    "PakauraJwksRefreshFailing",
}
RULE_KEYS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
SEVERITIES = {"critical", "warning", "info"}

# Kubernetes versions the core objects are validated against: the chart's kubeVersion floor
# (Chart.yaml) and the newest schema kubernetes-validate ships.
KUBE_VERSIONS = ["1.30.0", "1.37.0"]
NAMESPACE = "pakaura-check"


class Checker:
    def __init__(self, args):
        self.helm = args.helm
        self.chart = Path(args.chart)
        self.readme = Path(args.readme)
        self.node_dir = args.node_modules
        self.failures = 0
        self.monitoring = []  # {"source", "object"} for the schema validator
        self.seen_alerts = set()
        self.kafka = json.loads(Path(args.kafka_component).read_text())

    # ------------------------------------------------------------------ reporting
    def ok(self, message):
        print(f"ok   {message}")

    def fail(self, message):
        print(f"FAIL {message}")
        self.failures += 1

    # ------------------------------------------------------------------ helm
    def run_helm(self, *args):
        return subprocess.run([self.helm, *args], capture_output=True, text=True)

    def lint_and_render(self, case, values):
        lint = self.run_helm("lint", "--strict", str(self.chart), *values)
        if lint.returncode != 0:
            self.fail(f"{case}: helm lint --strict\n{lint.stdout}{lint.stderr}")
        else:
            self.ok(f"{case}: helm lint --strict")
        rendered = self.run_helm(
            "template", "pakaura", str(self.chart), "--namespace", NAMESPACE, *values
        )
        if rendered.returncode != 0:
            self.fail(f"{case}: helm template\n{rendered.stderr}")
            return []
        docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
        self.ok(f"{case}: helm template ({len(docs)} objects)")
        return docs

    def expect_refused(self, case, values, message):
        rendered = self.run_helm("template", "pakaura", str(self.chart), *values)
        if rendered.returncode == 0:
            self.fail(f"{case}: helm template accepted values it must refuse")
        elif not re.search(message, rendered.stderr):
            self.fail(f"{case}: refused, but not with /{message}/:\n{rendered.stderr}")
        else:
            self.ok(f"{case}: refused ({message})")

    # ------------------------------------------------------------------ objects
    def validate_objects(self, case, docs):
        for doc in docs:
            kind, api = doc.get("kind"), doc.get("apiVersion")
            name = f"{case}: {kind}/{doc.get('metadata', {}).get('name')}"
            if api == "monitoring.coreos.com/v1":
                self.check_monitoring(name, doc)
                self.monitoring.append({"source": case, "object": doc})
            elif api == "dapr.io/v1alpha1" and kind == "Component":
                self.check_dapr_component(name, doc)
            else:
                for version in KUBE_VERSIONS:
                    try:
                        kubernetes_validate.validate(doc, version, strict=True)
                    except kubernetes_validate.SchemaNotFoundError:
                        self.fail(f"{name}: no Kubernetes {version} schema for {api} {kind}")
                    except kubernetes_validate.ValidationError as error:
                        path = "/".join(str(p) for p in error.path)
                        self.fail(f"{name}: Kubernetes {version}: {path}: {error.message}")
                    else:
                        continue
                    break
                else:
                    self.ok(f"{name} valid for Kubernetes {', '.join(KUBE_VERSIONS)} (strict)")

    def check_dapr_component(self, name, doc):
        # No Dapr CRD schema is packaged in a reachable registry: check its shape by hand.
        spec = doc.get("spec", {})
        problems = []
        if not doc.get("metadata", {}).get("name"):
            problems.append("metadata.name missing")
        if not re.fullmatch(r"pubsub\.[a-z0-9.-]+", str(spec.get("type", ""))):
            problems.append(f"spec.type {spec.get('type')!r} is not a pub/sub component type")
        if spec.get("version") != "v1":
            problems.append("spec.version must be v1")
        for item in spec.get("metadata", []):
            if not isinstance(item, dict) or not item.get("name"):
                problems.append(f"metadata entry without a name: {item!r}")
            elif ("value" in item) == ("secretKeyRef" in item):
                problems.append(f"metadata {item['name']}: needs exactly one of value, secretKeyRef")
            elif "value" in item and not isinstance(item["value"], str):
                problems.append(f"metadata {item['name']}: value must be a string")
        if set(doc) - {"apiVersion", "kind", "metadata", "spec", "scopes", "auth"}:
            problems.append(f"unknown top-level fields {sorted(set(doc) - {'apiVersion', 'kind', 'metadata', 'spec', 'scopes', 'auth'})}")
        for problem in problems:
            self.fail(f"{name}: {problem}")
        if not problems:
            self.ok(f"{name}: Dapr Component shape (structural; no Dapr schema offline)")
        kafka = kafka_metadata_problems(doc, self.kafka)
        for problem in kafka:
            self.fail(f"{name}: {problem}")
        if not kafka:
            self.ok(f"{name}: metadata names and values known to scripts/kafka/component.json")

    def expect_kafka_flagged(self, case, values, message):
        """A values combination the Kafka metadata check must fail."""
        rendered = self.run_helm("template", "pakaura", str(self.chart), *values)
        docs = [d for d in yaml.safe_load_all(rendered.stdout) if d] if rendered.returncode == 0 else []
        components = [d for d in docs if d.get("kind") == "Component"]
        if len(components) != 1:
            self.fail(f"{case}: expected one Dapr Component, got {len(components)}: {rendered.stderr}")
            return
        problems = kafka_metadata_problems(components[0], self.kafka)
        if not any(re.search(message, p) for p in problems):
            self.fail(f"{case}: the Kafka metadata check did not flag /{message}/: {problems}")
        else:
            self.ok(f"{case}: flagged ({message})")

    def check_monitoring(self, name, doc):
        kind, meta, spec = doc.get("kind"), doc.get("metadata", {}), doc.get("spec", {})
        problems = []
        if not meta.get("name") or not meta.get("namespace"):
            problems.append("metadata.name and metadata.namespace are required")
        if kind == "ServiceMonitor":
            if not spec.get("selector", {}).get("matchLabels"):
                problems.append("spec.selector.matchLabels is empty: it would select every Service")
            endpoints = spec.get("endpoints") or []
            if not endpoints:
                problems.append("spec.endpoints is empty")
            for endpoint in endpoints:
                if endpoint.get("port") != "http" or endpoint.get("path") != "/metrics":
                    problems.append("an endpoint does not scrape port http, path /metrics")
        elif kind == "PrometheusRule":
            groups = spec.get("groups") or []
            if not groups:
                problems.append("spec.groups is empty")
            for group in groups:
                for rule in group.get("rules") or []:
                    problems += self.check_rule(rule)
        else:
            problems.append(f"unexpected kind {kind}")
        for problem in problems:
            self.fail(f"{name}: {problem}")
        if not problems and kind == "PrometheusRule":
            self.ok(f"{name}: fields, alert labels and annotations, runbook anchors, PromQL")
        elif not problems:
            self.ok(f"{name}: selector and /metrics endpoint")

    def check_rule(self, rule):
        alert = rule.get("alert", "<no alert name>")
        problems = [f"{alert}: unknown rule field {key}" for key in set(rule) - RULE_KEYS]
        if alert not in ALERTS:
            problems.append(f"{alert}: not one of the chart's alerts (update ALERTS in check.py)")
        self.seen_alerts.add(alert)
        if rule.get("labels", {}).get("severity") not in SEVERITIES:
            problems.append(f"{alert}: labels.severity must be one of {sorted(SEVERITIES)}")
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not str(annotations.get(key, "")).strip():
                problems.append(f"{alert}: annotation {key} missing")
        anchor = alert.lower()
        if not str(annotations.get("runbook_url", "")).endswith(f"README.md#{anchor}"):
            problems.append(f"{alert}: runbook_url does not end in README.md#{anchor}")
        if anchor not in self.readme_anchors():
            problems.append(f"{alert}: helm/README.md has no heading '{alert}' (anchor #{anchor})")
        for key in ("for", "keep_firing_for"):
            if key in rule and not re.fullmatch(r"0+(ms|s|m|h|d|w|y)?", str(rule[key])):
                try:
                    promql_parser.parse_duration(str(rule[key]))
                except ValueError as error:
                    problems.append(f"{alert}: {key} {rule[key]!r}: {error}")
        if not isinstance(rule.get("expr"), str):
            problems.append(f"{alert}: expr must be a PromQL string")
        else:
            problems += [f"{alert}: {p}" for p in check_promql(rule["expr"])]
        return problems

    def readme_anchors(self):
        if not hasattr(self, "_anchors"):
            headings = re.findall(r"^#+\s+(.+?)\s*$", self.readme.read_text(), re.MULTILINE)
            self._anchors = {github_anchor(h) for h in headings}
        return self._anchors

    # ------------------------------------------------------------------ dashboard
    def check_dashboard(self, docs):
        path = self.chart / "dashboards" / "pakaura.json"
        try:
            dashboard = json.loads(path.read_text())
        except ValueError as error:
            self.fail(f"{path}: not JSON: {error}")
            return
        configmaps = [d for d in docs if d.get("kind") == "ConfigMap" and "pakaura.json" in d.get("data", {})]
        if len(configmaps) != 1:
            self.fail(f"all-on: expected one dashboard ConfigMap, found {len(configmaps)}")
        elif json.loads(configmaps[0]["data"]["pakaura.json"]) != dashboard:
            self.fail("all-on: the dashboard ConfigMap does not hold dashboards/pakaura.json")
        elif configmaps[0]["metadata"]["labels"].get("grafana_dashboard") != "1":
            self.fail("all-on: the dashboard ConfigMap lacks the grafana_dashboard: \"1\" label")
        problems = []
        variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
        source = variables.get("datasource", {})
        if source.get("type") != "datasource" or source.get("query") != "prometheus":
            problems.append("no `datasource` variable of type datasource (prometheus)")
        for name, variable in variables.items():
            if variable.get("type") == "query":
                query = variable["query"]["query"] if isinstance(variable.get("query"), dict) else variable.get("query", "")
                match = re.fullmatch(r"label_values\((.+),\s*([a-zA-Z_]\w*)\)", query.strip())
                if not match:
                    problems.append(f"variable {name}: not label_values(<selector>, <label>): {query}")
                else:
                    problems += [f"variable {name}: {p}" for p in check_promql(grafana_to_promql(match.group(1)))]
                    if match.group(2) not in ALL_LABELS:
                        problems.append(f"variable {name}: unknown label {match.group(2)}")
            if variable.get("type") in ("query", "datasource") and variable.get("datasource") not in (None, {"type": "prometheus", "uid": "${datasource}"}):
                problems.append(f"variable {name}: hard-coded datasource {variable.get('datasource')}")
        ids, exprs = set(), 0
        for panel in walk_panels(dashboard.get("panels", [])):
            title = panel.get("title", "?")
            if panel.get("id") in ids:
                problems.append(f"panel {title}: duplicate id {panel.get('id')}")
            ids.add(panel.get("id"))
            if panel.get("type") == "row":
                continue
            if panel.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}:
                problems.append(f"panel {title}: datasource is not the ${{datasource}} variable")
            if not panel.get("targets"):
                problems.append(f"panel {title}: no queries")
            for target in panel.get("targets", []):
                if target.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}:
                    problems.append(f"panel {title}: a query's datasource is not ${{datasource}}")
                exprs += 1
                problems += [f"panel {title}: {p}" for p in check_promql(grafana_to_promql(target.get("expr", "")))]
        problems += [f"grep: {p}" for p in grep_metric_names(path.read_text())]
        for problem in problems:
            self.fail(f"dashboard: {problem}")
        if not problems:
            self.ok(f"dashboard: JSON, datasource variable, {exprs} PromQL queries and their metric names")

    # ------------------------------------------------------------------ CRD schemas
    def validate_crd_schemas(self):
        if not self.monitoring:
            self.fail("no ServiceMonitor or PrometheusRule was rendered")
            return
        if not self.node_dir:
            print("SKIP ====> monitoring.coreos.com schema validation: the npm models could not be "
                  "installed; the ServiceMonitor and PrometheusRule were checked structurally only")
            return
        with tempfile.NamedTemporaryFile("w", suffix=".json") as objects:
            json.dump(self.monitoring, objects)
            objects.flush()
            script = Path(__file__).with_name("validate-monitoring.mjs")
            result = subprocess.run(["node", str(script), self.node_dir, objects.name], capture_output=True, text=True)
        print(result.stdout, end="")
        if result.returncode != 0:
            self.fail(f"monitoring.coreos.com schema validation\n{result.stderr}")


# ---------------------------------------------------------------------- Dapr Kafka component
def kafka_metadata_problems(doc, known):
    """A pubsub.kafka Component's metadata against component.json: every name one Dapr's Kafka
    component reads (spelled as in its metadata.yaml), every plain value allowed, none unsafe."""
    spec = doc.get("spec", {})
    if spec.get("type") != known["type"]:
        return []
    problems = []
    if spec.get("version") != known["version"]:
        problems.append(f"spec.version {spec.get('version')!r}: {known['type']} is {known['version']}")
    for item in spec.get("metadata", []):
        name, rule = item.get("name"), known["metadata"].get(item.get("name"))
        if rule is None:
            problems.append(f"metadata {name!r} is not a {known['type']} key (scripts/kafka/component.json)")
            continue
        if "value" not in item:
            continue  # a secretKeyRef: resolved by Dapr
        value = item["value"]
        if "values" in rule and value not in rule["values"]:
            problems.append(f"metadata {name}={value!r}: not one of {rule['values']}")
        if "pattern" in rule and not re.fullmatch(rule["pattern"], str(value)):
            problems.append(f"metadata {name}={value!r}: does not match {rule['pattern']}")
        if value in rule.get("unsafe", {}):
            problems.append(f"metadata {name}={value!r} is unsafe: {rule['unsafe'][value]}")
    return problems


# ---------------------------------------------------------------------- PromQL
def grafana_to_promql(expr):
    """Grafana's interval variables become durations; $var inside label values stays a string."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    return re.sub(r"\$\{__(rate_interval|interval|range)\}", "5m", expr)


def check_promql(expr):
    """Parses one expression and checks every selector against the metric table."""
    try:
        tree = promql_parser.parse(expr)
    except ValueError as error:
        return [f"PromQL does not parse ({error}): {expr}"]
    problems = []

    def visit(node):
        if isinstance(node, promql_parser.MatrixSelector):
            node = node.vector_selector
        if isinstance(node, promql_parser.VectorSelector):
            problems.extend(check_selector(node))
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier:
            unknown = set(node.modifier.labels) - ALL_LABELS
            if unknown:
                problems.append(f"aggregation by unknown labels {sorted(unknown)}")
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier and node.modifier.matching:
            unknown = set(node.modifier.matching.labels) - ALL_LABELS
            if unknown:
                problems.append(f"vector matching on unknown labels {sorted(unknown)}")

    promql_parser.walk(tree, visit)
    problems += grep_metric_names(expr)
    return problems


def check_selector(selector):
    name = selector.name
    matchers = list(selector.matchers.matchers)
    if name is None:
        names = [m.value for m in matchers if m.name == "__name__"]
        name = names[0] if names else None
    if name not in SERIES:
        return [f"unknown metric {name!r} (not in the host's metric table)"]
    labels, values = SERIES[name]
    problems = []
    for matcher in matchers:
        if matcher.name == "__name__":
            continue
        if matcher.name not in labels | TARGET_LABELS:
            problems.append(f"{name} has no label {matcher.name!r}")
        allowed = values.get(matcher.name)
        if allowed and matcher.op in (promql_parser.MatchOp.Equal, promql_parser.MatchOp.NotEqual):
            if matcher.value not in allowed:
                problems.append(f"{name}{{{matcher.name}={matcher.value!r}}}: not one of {sorted(allowed)}")
    return problems


def grep_metric_names(text):
    """A plain text check besides the parser: every pakaura_* word must be a known series."""
    return [
        f"unknown metric name {word}"
        for word in sorted(set(re.findall(r"\bpakaura_[a-z0-9_]+", text)))
        if word not in SERIES
    ]


def check_host_metrics(checker, instruments):
    """METRICS above must name exactly the metrics the host declares in instruments.rs."""
    declared = set(re.findall(r'pub const [A-Z_]+: &str = "(pakaura_[a-z0-9_]+)";', instruments.read_text()))
    if declared == set(METRICS):
        checker.ok(f"metric names: the {len(declared)} the host declares ({instruments.name})")
    else:
        checker.fail(
            f"metric names differ from {instruments}: only in the host {sorted(declared - set(METRICS))}, "
            f"only in check.py {sorted(set(METRICS) - declared)}"
        )


def walk_panels(panels):
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels", []))


def github_anchor(heading):
    heading = re.sub(r"`", "", heading.strip().lower())
    heading = re.sub(r"[^\w\- ]", "", heading)
    return heading.replace(" ", "-")


# ---------------------------------------------------------------------- main
def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--helm", required=True)
    parser.add_argument("--chart", required=True)
    parser.add_argument("--readme", required=True)
    parser.add_argument("--node-modules", default="", help="the npm folder of the check tools, or empty")
    parser.add_argument("--kafka-component", required=True, help="scripts/kafka/component.json")
    args = parser.parse_args()
    checker = Checker(args)
    chart = Path(args.chart)
    check_values = Path(__file__).with_name("values")
    local = ["-f", str(chart / "values-local.yaml")]
    all_on = ["-f", str(check_values / "all-on.yaml")]

    cases = {
        "defaults": [],
        "values-local": local,
        "all-on": all_on,
        "values-local+all-on": local + all_on,
        "all-on, dapr and cache off": all_on + ["--set", "dapr.enabled=false", "--set", "mapperCache.enabled=false"],
        "provider keys only, two replicas": [
            "--set", "secrets.existingSecret=",
            "--set", "secrets.databaseUrl=postgres://pakaura@postgres:5432/pakaura",
            "--set", "auth.jwksUrl=https://acme.eu.auth0.com/.well-known/jwks.json",
        ],
    }
    rendered = {}
    for case, values in cases.items():
        docs = checker.lint_and_render(case, values)
        rendered[case] = docs
        checker.validate_objects(case, docs)

    check_defaults(checker, rendered)
    check_auth(checker, rendered)
    check_host_metrics(checker, Path(args.chart).parents[1] / "host" / "src" / "instruments.rs")
    checker.check_dashboard(rendered["all-on"])
    if checker.seen_alerts != ALERTS:
        checker.fail(f"all-on: alerts missing from the PrometheusRule: {sorted(ALERTS - checker.seen_alerts)}")
    checker.validate_crd_schemas()

    refused = {
        "tracing without endpoint": (["--set", "tracing.enabled=true"], "tracing.endpoint"),
        "env.MAPPER_CACHE_DIR": (["--set", "env.MAPPER_CACHE_DIR=/x"], "env.MAPPER_CACHE_DIR is set by the chart"),
        "env.OTEL_SERVICE_NAME with tracing": (
            all_on + ["--set", "env.OTEL_SERVICE_NAME=x"],
            "env.OTEL_SERVICE_NAME is set by the chart",
        ),
        "alert `for` not a duration": (
            ["--set", "prometheusRule.alerts.relayLagHigh.for=ten minutes"],
            "/prometheusRule/alerts/relayLagHigh/for': 'ten minutes' does not match pattern",
        ),
        "unknown prometheusRule value": (["--set", "prometheusRule.bogus=1"], "additional properties 'bogus' not allowed"),
        "ratio threshold above 1": (
            ["--set", "prometheusRule.alerts.publishFailureRateHigh.threshold=5"],
            "publishFailureRateHigh/threshold': maximum",
        ),
        "auth.jwksUrl over plain http": (
            ["--set", "auth.jwksUrl=http://keycloak.example.com/realms/acme/protocol/openid-connect/certs"],
            "auth.jwksUrl must be an https:// URL",
        ),
        "env.JWT_AUDIENCE": (["--set", "env.JWT_AUDIENCE=x"], "env.JWT_AUDIENCE is set by the chart"),
        "two replicas without shared keys": (
            ["--set", "secrets.existingSecret=", "--set", "secrets.databaseUrl=postgres://pakaura@postgres/pakaura"],
            "more than one replica needs keys every replica shares",
        ),
        "CA without a provider": (
            ["--set", "auth.jwks.caConfigMap.name=keycloak-ca"],
            "auth.jwks.caConfigMap is set but auth.jwksUrl is not",
        ),
    }
    for case, (values, message) in refused.items():
        checker.expect_refused(case, values, message)

    extra = "dapr.pubsub.extraMetadata[0]"
    flagged = {
        "an unknown Kafka metadata key": (
            ["--set", f"{extra}.name=partitionKey", "--set", f"{extra}.value=x"],
            "'partitionKey' is not a pubsub.kafka key",
        ),
        "fire-and-forget producer": (
            ["--set", f"{extra}.name=producerRequiredAcks", "--set", f"{extra}.value=none"],
            "producerRequiredAcks='none' is unsafe",
        ),
        "a compression Dapr does not know": (
            ["--set", f"{extra}.name=compression", "--set", f"{extra}.value=brotli"],
            "compression='brotli': not one of",
        ),
    }
    for case, (values, message) in flagged.items():
        checker.expect_kafka_flagged(case, values, message)

    print()
    if checker.failures:
        print(f"helm/check: {checker.failures} failed")
        return 1
    print("helm/check: all checks passed")
    return 0


def check_defaults(checker, rendered):
    """What each combination must (not) contain: off by default, on when asked."""
    kinds = lambda case: {d["kind"] for d in rendered[case]}  # noqa: E731
    for case in ("defaults", "values-local"):
        extra = kinds(case) & {"ServiceMonitor", "PrometheusRule"}
        dashboards = [d for d in rendered[case] if d["kind"] == "ConfigMap" and "pakaura.json" in d.get("data", {})]
        if extra or dashboards:
            checker.fail(f"{case}: monitoring objects rendered although off: {sorted(extra)} {len(dashboards)} dashboards")
        else:
            checker.ok(f"{case}: no ServiceMonitor, PrometheusRule or dashboard (off)")
    for case in ("defaults", "values-local", "all-on", "all-on, dapr and cache off"):
        deployment = next(d for d in rendered[case] if d["kind"] == "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        container = next(c for c in pod["containers"] if c["name"] == "pakaura")
        env = {e["name"]: e for e in container.get("env", [])}
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        cache_on = case != "all-on, dapr and cache off"
        problems = []
        if container.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
            problems.append("readOnlyRootFilesystem is not true")
        if cache_on:
            if env.get("MAPPER_CACHE_DIR", {}).get("value") != "/var/cache/pakaura":
                problems.append("MAPPER_CACHE_DIR is not /var/cache/pakaura")
            volume = volumes.get(mounts.get("/var/cache/pakaura"), {})
            if "emptyDir" not in volume or not volume["emptyDir"].get("sizeLimit"):
                problems.append("no emptyDir with a sizeLimit at /var/cache/pakaura")
        elif "MAPPER_CACHE_DIR" in env or "/var/cache/pakaura" in mounts:
            problems.append("the mapper cache is mounted although mapperCache.enabled=false")
        tracing = case.startswith("all-on")
        otel = {name for name in env if name.startswith("OTEL_")}
        if tracing and not {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"} <= otel:
            problems.append(f"tracing on, but OTEL_* incomplete: {sorted(otel)}")
        if not tracing and otel:
            problems.append(f"tracing off, but {sorted(otel)} set")
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        if case == "all-on" and annotations.get("dapr.io/config") != "pakaura-tracing":
            problems.append("dapr.config does not become the dapr.io/config annotation")
        rules = [d for d in rendered[case] if d["kind"] == "PrometheusRule"]
        if case == "all-on, dapr and cache off" and rules:
            alerts = {r["alert"] for g in rules[0]["spec"]["groups"] for r in g["rules"]}
            if "PakauraSidecarNotReady" in alerts:
                problems.append("PakauraSidecarNotReady rendered without Dapr")
        for problem in problems:
            checker.fail(f"{case}: {problem}")
        if not problems:
            checker.ok(f"{case}: read-only root, mapper cache {'on' if cache_on else 'off'}, tracing {'on' if tracing else 'off'}")



def check_auth(checker, rendered):
    """The `auth` values become the host's JWT_* settings; the CA ConfigMap is mounted where
    JWT_JWKS_CA_FILE points; JWT_SECRET is optional beside an identity provider."""
    for case, provider in (("defaults", False), ("all-on", True), ("provider keys only, two replicas", True)):
        docs = rendered[case]
        config = next(d for d in docs if d["kind"] == "ConfigMap" and "BIND_ADDR" in d.get("data", {}))["data"]
        deployment = next(d for d in docs if d["kind"] == "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        container = next(c for c in pod["containers"] if c["name"] == "pakaura")
        env = {e["name"]: e for e in container.get("env", [])}
        problems = []
        if config.get("JWT_USER_CLAIM") != "sub" or config.get("JWT_LEEWAY") != "30s":
            problems.append("JWT_USER_CLAIM / JWT_LEEWAY not rendered with their defaults")
        if provider != ("JWT_JWKS_URL" in config):
            problems.append(f"JWT_JWKS_URL {'missing' if provider else 'rendered without auth.jwksUrl'}")
        secret = env.get("JWT_SECRET", {}).get("valueFrom", {}).get("secretKeyRef", {})
        if secret and secret.get("optional", False) != provider:
            problems.append("JWT_SECRET must be optional exactly when auth.jwksUrl is set")
        ca_file = config.get("JWT_JWKS_CA_FILE")
        if case == "all-on":
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            folder, _, key = (ca_file or "").rpartition("/")
            items = volumes.get(mounts.get(folder), {}).get("configMap", {}).get("items", [])
            if not ca_file or [i["path"] for i in items] != [key]:
                problems.append(f"JWT_JWKS_CA_FILE {ca_file!r} is not the mounted CA ConfigMap's key")
            if not config.get("JWT_ISSUER") or not config.get("JWT_AUDIENCE"):
                problems.append("auth.issuer / auth.audience not rendered")
        elif ca_file:
            problems.append("JWT_JWKS_CA_FILE rendered without auth.jwks.caConfigMap")
        for problem in problems:
            checker.fail(f"{case}: {problem}")
        if not problems:
            checker.ok(f"{case}: JWT settings, identity provider {'on' if provider else 'off'}")


if __name__ == "__main__":
    sys.exit(main())
