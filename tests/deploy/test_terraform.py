"""deploy/terraform: every file parses (python-hcl2), the modules have their
three files, the parts the application depends on are configured as the code
expects (the compute services, their roles and scaling, every alarm on a metric
the code emits, by the name and dimensions the code defines), no secret value is
written in the code, and checkov finds no failed check (each suppression
carrying a written reason)."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
from typing import Any

import hcl2
import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.deploy.test_container_image import unquote

ROOT = pathlib.Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "deploy" / "terraform"
HCL_FILES = sorted(p for p in TERRAFORM.rglob("*") if p.suffix in {".tf", ".tfvars", ".hcl"})
MODULES = sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def load(path: pathlib.Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        parsed = unquote(hcl2.load(handle))
    assert isinstance(parsed, dict)
    return parsed


def variable_defaults(module: str) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for block in load(TERRAFORM / "modules" / module / "variables.tf").get("variable", []):
        for name, body in block.items():
            defaults[name] = body.get("default")
    return defaults


def resources_of(module: str, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for block in load(TERRAFORM / "modules" / module / "main.tf").get("resource", []):
        found.update(block.get(kind, {}))
    return found


def resource(module: str, kind: str, name: str) -> dict[str, Any]:
    for block in load(TERRAFORM / "modules" / module / "main.tf").get("resource", []):
        if kind in block and name in block[kind]:
            body: dict[str, Any] = block[kind][name]
            return body
    raise AssertionError(f"no {kind}.{name} in modules/{module}")


@pytest.mark.parametrize("path", HCL_FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_terraform_file_parses(path: pathlib.Path) -> None:
    assert isinstance(load(path), dict)


def test_the_stack_has_the_modules_the_architecture_names() -> None:
    names = {m.name for m in MODULES}
    assert {
        "network", "aurora", "msk", "dynamodb", "stream_lambda", "cognito", "redis", "s3",
        "batch", "secrets", "monitoring", "kms", "compute",
    } <= names  # fmt: skip
    for module in MODULES:
        assert {"main.tf", "variables.tf", "outputs.tf"} <= {p.name for p in module.iterdir()}
    root_modules = {next(iter(block)) for block in load(TERRAFORM / "main.tf")["module"]}
    assert names == root_modules, "every module is used by the root module"


def test_the_pix_table_matches_the_single_table_design() -> None:
    table = resource("dynamodb", "aws_dynamodb_table", "pix")
    root = {next(iter(b)): next(iter(b.values())) for b in load(TERRAFORM / "main.tf")["module"]}
    assert root["dynamodb"]["table_name"] == "finbank-pix"
    assert (table["hash_key"], table["range_key"]) == ("pk", "sk")
    indexes = {i["name"]: (i["hash_key"], i["range_key"]) for i in table["global_secondary_index"]}
    assert indexes == {"gsi1": ("gsi1pk", "gsi1sk"), "gsi2": ("gsi2pk", "gsi2sk")}
    assert table["stream_enabled"] is True
    assert table["stream_view_type"] == "NEW_AND_OLD_IMAGES"
    assert table["point_in_time_recovery"][0]["enabled"] is True
    assert table["server_side_encryption"][0]["kms_key_arn"] == "${var.kms_key_arn}"


def test_the_stream_lambda_reports_partial_batch_failures_to_a_dlq() -> None:
    function = resource("stream_lambda", "aws_lambda_function", "this")
    assert function["handler"] == "finbank.lambdas.pix_stream_handler"
    mapping = resource("stream_lambda", "aws_lambda_event_source_mapping", "stream")
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    on_failure = mapping["destination_config"][0]["on_failure"][0]
    assert on_failure["destination_arn"] == "${aws_sqs_queue.dlq.arn}"
    assert mapping["bisect_batch_on_function_error"] is True


def test_cognito_requires_mfa_with_totp_and_sms() -> None:
    pool = resource("cognito", "aws_cognito_user_pool", "this")
    assert pool["mfa_configuration"] == "ON"
    assert pool["software_token_mfa_configuration"][0]["enabled"] is True
    assert pool["sms_configuration"][0]["sns_caller_arn"]
    client = resource("cognito", "aws_cognito_user_pool_client", "app")
    assert "ALLOW_USER_PASSWORD_AUTH" in client["explicit_auth_flows"]
    assert client["generate_secret"] is True


def test_msk_and_redis_refuse_plaintext_and_anonymous_clients() -> None:
    msk = resource("msk", "aws_msk_cluster", "this")
    auth = msk["client_authentication"][0]
    assert auth["unauthenticated"] is False
    assert auth["sasl"][0]["scram"] is True
    assert msk["encryption_info"][0]["encryption_in_transit"][0]["client_broker"] == "TLS"
    redis = resource("redis", "aws_elasticache_replication_group", "this")
    assert redis["transit_encryption_enabled"] is True
    assert redis["at_rest_encryption_enabled"] is True
    assert "aws_secretsmanager_secret_version.auth" in redis["auth_token"]


SECRET_NAMES = re.compile(r"(password|secret_string|_secret$|^secret$|auth_token$|api_key)", re.I)
LITERAL = re.compile(r'^\s*([A-Za-z_]+)\s*=\s*"([^"$]*)"\s*$', re.M)


def test_no_secret_value_is_written_in_the_code() -> None:
    for path in HCL_FILES:
        for name, value in LITERAL.findall(path.read_text(encoding="utf-8")):
            if SECRET_NAMES.search(name):
                pytest.fail(f"{path.relative_to(TERRAFORM)}: {name} is a literal ({value!r})")
    secrets = (TERRAFORM / "modules" / "secrets" / "main.tf").read_text(encoding="utf-8")
    assert secrets.count('resource "random_password"') >= 3


def test_every_checkov_suppression_in_the_code_gives_a_reason() -> None:
    for path in TERRAFORM.rglob("*.tf"):
        for check, reason in SKIP_COMMENT.findall(path.read_text(encoding="utf-8")):
            assert len((reason or "").split()) >= 4, f"{path.name}: {check} has no reason"


def checkov_command() -> list[str] | None:
    candidates = [
        os.environ.get("FINBANK_CHECKOV", ""),
        str(ROOT / ".venv-checkov" / "bin" / "checkov"),
        shutil.which("checkov") or "",
    ]
    for candidate in candidates:
        if candidate and pathlib.Path(candidate).exists():
            return [candidate]
    return None


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    command = checkov_command()
    if command is None:
        message = "checkov is not installed (.ci/run installs it into .venv-checkov)"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message} and FINBANK_REQUIRE_SERVICES=1")
        pytest.skip(message)
    result = subprocess.run(
        [*command, "-d", str(TERRAFORM), "--framework", "terraform", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert isinstance(report, dict)
    return report


def test_checkov_finds_no_failed_check(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for c in checkov_report["results"]["failed_checks"]
    ]
    assert failed == []
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 300, "checkov evaluated the modules (through the root module)"


def test_every_check_checkov_skipped_has_a_reason(checkov_report: dict[str, Any]) -> None:
    for check in checkov_report["results"]["skipped_checks"]:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason.split()) >= 4, f"{check['check_id']} on {check['resource']}: {reason!r}"


# -- compute: serve, the relay and the settlement worker on ECS Fargate -----------------------


def root_module(name: str) -> dict[str, Any]:
    for block in load(TERRAFORM / "main.tf")["module"]:
        if name in block:
            body: dict[str, Any] = block[name]
            return body
    raise AssertionError(f"no module {name} in main.tf")


def compute_locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in load(TERRAFORM / "modules" / "compute" / "main.tf")["locals"]:
        merged.update(block)
    return merged


def test_serve_the_relay_and_the_worker_run_the_cli_commands_on_fargate_in_private_subnets() -> (
    None
):
    from finbank_cli.main import build_parser

    services = compute_locals()["services"]
    commands = {name: [str(a) for a in body["command"]] for name, body in services.items()}
    assert commands["relay"] == ["relay"]
    assert commands["worker"] == ["worker", "pix-settlement"]
    assert commands["automatic"] == ["worker", "pix-automatic"]
    assert commands["serve"][:3] == ["serve", "--host", "0.0.0.0"]  # noqa: S104 - in the task
    for argv in commands.values():
        build_parser().parse_args([a if "${" not in a else "8000" for a in argv])
    definition = resource("compute", "aws_ecs_task_definition", "this")
    assert definition["requires_compatibilities"] == ["FARGATE"]
    assert definition["network_mode"] == "awsvpc"
    assert "readonlyRootFilesystem = true" in definition["container_definitions"]
    for name in ("serve", "relay", "worker", "automatic"):
        service = resource("compute", "aws_ecs_service", name)
        assert service["launch_type"] == "FARGATE"
        network = service["network_configuration"][0]
        assert network["assign_public_ip"] is False
        assert network["subnets"] == "${var.private_subnet_ids}"
        assert service["deployment_circuit_breaker"][0]["rollback"] is True
    cluster = resource("compute", "aws_ecs_cluster", "this")
    setting = cluster["setting"][0]
    assert (setting["name"], setting["value"]) == ("containerInsights", "enabled")


def test_serve_is_behind_an_https_load_balancer_checking_ready_while_ecs_checks_health() -> None:
    lb = resource("compute", "aws_lb", "this")
    assert lb["internal"] is False
    assert lb["subnets"] == "${var.public_subnet_ids}"
    assert lb["drop_invalid_header_fields"] is True
    listeners = resources_of("compute", "aws_lb_listener")
    assert [body["protocol"] for body in listeners.values()] == ["HTTPS"]  # no plain HTTP
    https = listeners["https"]
    assert https["certificate_arn"] == "${var.certificate_arn}"
    assert https["ssl_policy"] == "${var.ssl_policy}"
    assert variable_defaults("compute")["ssl_policy"].startswith("ELBSecurityPolicy-TLS13-1-2")
    assert root_module("compute")["certificate_arn"] == "${var.api_certificate_arn}"
    target_group = resource("compute", "aws_lb_target_group", "serve")
    assert target_group["health_check"][0]["path"] == "/ready"
    definition = resource("compute", "aws_ecs_task_definition", "this")["container_definitions"]
    assert re.search(r"healthCheck = \{command = \[[^]]*/health", definition)
    service = resource("compute", "aws_ecs_service", "serve")
    assert service["load_balancer"][0]["target_group_arn"] == "${aws_lb_target_group.serve.arn}"
    association = resource("compute", "aws_wafv2_web_acl_association", "api")
    assert association["resource_arn"] == "${aws_lb.this.arn}"
    alb_sg = resource("compute", "aws_security_group", "alb")
    assert [rule["from_port"] for rule in alb_sg["ingress"]] == [443]


def test_serve_scales_on_cpu_and_on_requests_per_target() -> None:
    policies = resources_of("compute", "aws_appautoscaling_policy")
    metric_types = {
        name: body["target_tracking_scaling_policy_configuration"][0]
        .get("predefined_metric_specification", [{}])[0]
        .get("predefined_metric_type")
        for name, body in policies.items()
        if "serve" in body["resource_id"]
    }
    assert sorted(metric_types.values()) == [
        "ALBRequestCountPerTarget",
        "ECSServiceAverageCPUUtilization",
    ]
    requests = policies["serve_requests"]["target_tracking_scaling_policy_configuration"][0]
    label = requests["predefined_metric_specification"][0]["resource_label"]
    assert label == "${aws_lb.this.arn_suffix}/${aws_lb_target_group.serve.arn_suffix}"
    target = resource("compute", "aws_appautoscaling_target", "serve")
    assert target["min_capacity"] == "${var.serve_min_tasks}"
    assert target["max_capacity"] == "${var.serve_max_tasks}"


def test_at_least_two_relays_and_the_worker_scales_on_the_lag_the_worker_emits() -> None:
    from finbank_adapters import metrics
    from finbank_adapters.workers.pix_settlement import SETTLEMENT_GROUP
    from finbank_core.shared.events import PIX_TOPIC

    relay = resource("compute", "aws_ecs_service", "relay")
    assert relay["desired_count"] == "${var.relay_tasks}"
    assert relay["deployment_minimum_healthy_percent"] == 100
    defaults = variable_defaults("compute")
    assert defaults["relay_tasks"] >= 2
    validation = load(TERRAFORM / "modules" / "compute" / "variables.tf")
    relay_variable = next(b["relay_tasks"] for b in validation["variable"] if "relay_tasks" in b)
    assert relay_variable["validation"][0]["condition"] == "${var.relay_tasks >= 2}"

    policy = resource("compute", "aws_appautoscaling_policy", "worker_lag")
    assert policy["resource_id"] == "${aws_appautoscaling_target.worker.resource_id}"
    queries = policy["target_tracking_scaling_policy_configuration"][0][
        "customized_metric_specification"
    ][0]["metrics"]
    lag = next(q for q in queries if q["id"] == "lag")["metric_stat"][0]["metric"][0]
    assert lag["metric_name"] == metrics.CONSUMER_LAG.name
    assert lag["namespace"] == "${var.metrics_namespace}"
    assert defaults["metrics_namespace"] == metrics.NAMESPACE
    dimensions = {d["name"]: d["value"] for d in lag["dimensions"]}
    assert tuple(dimensions) == metrics.CONSUMER_LAG.all_dimensions
    assert dimensions["Environment"] == "${var.environment}"
    assert defaults["consumer_group"] == SETTLEMENT_GROUP
    assert defaults["consumer_topic"] == PIX_TOPIC
    assert next(q for q in queries if q.get("return_data") is True)["expression"].startswith(
        "lag / "
    )


def sid_of(dynamic: dict[str, Any]) -> str:
    content = dynamic.get("statement", {}).get("content", [{}])
    sid: str = content[0].get("sid", "")
    return sid


def test_each_task_role_grants_only_what_its_service_uses() -> None:
    text = (TERRAFORM / "modules" / "compute" / "main.tf").read_text(encoding="utf-8")
    documents = resources_of("compute", "aws_iam_role_policy")
    assert set(documents) == {"execution", "task"}
    task = load(TERRAFORM / "modules" / "compute" / "main.tf")["data"]
    policy = next(
        b["aws_iam_policy_document"]["task"]
        for b in task
        if "task" in b.get("aws_iam_policy_document", {})
    )
    statements = {s["sid"]: s for s in policy["statement"]}
    assert statements["AppSecret"]["resources"] == ["${var.app_secret_arn}"]
    assert statements["AppSecret"]["actions"] == ["secretsmanager:GetSecretValue"]
    # the PIX table: serve, the worker and the Pix Automático scheduler only (the relay
    # reads PostgreSQL, writes Kafka)
    table_grants = [d for d in policy["dynamic"] if sid_of(d).startswith("PixRecords")]
    assert len(table_grants) == 2
    for grant in table_grants:
        assert (
            grant["statement"]["for_each"]
            == '${contains(["serve", "worker", "automatic"], each.key) ? [1] : []}'
        )
    # no wildcard resource but the one API without resource-level permissions
    wildcards = re.findall(r'sid\s*=\s*"(\w+)"[^}]*?resources\s*=\s*\["\*"\]', text, re.S)
    # (the other: X-Ray's PutTraceSegments, for the trace collector beside each process)
    assert wildcards == ["EcrLogin", "XRaySegments"]
    assert "cloudwatch:PutMetricData" not in text  # metrics are EMF lines in the log group
    env = compute_locals()["common_environment"]
    assert {"name": "FINBANK_SECRETS_ID", "value": "${var.app_secret_arn}"} in env
    assert {"name": "FINBANK_METRICS_FORMAT", "value": "emf"} in env


# -- the key of the auth secrets at rest (docs/auth.md, "Secrets at rest") -------------------


def key_policy_statements(policy: str) -> dict[str, str]:
    """The statements of a ``jsonencode``d key policy, by Sid, as HCL text."""
    parts = re.split(r'\{\s*(?:#[^\n]*\n\s*)?Sid\s*=\s*"', policy)[1:]
    return {part.split('"', 1)[0]: part for part in parts}


def quoted(text: str) -> set[str]:
    """The KMS actions named in ``text`` (condition keys left out)."""
    return set(re.findall(r'"(kms:[A-Za-z*]+)"', text))


def test_the_auth_secrets_have_a_rotating_key_only_serve_may_use() -> None:
    key = resource("compute", "aws_kms_key", "auth_secrets")
    assert key["enable_key_rotation"] is True
    assert key["rotation_period_in_days"] == "${var.auth_secrets_key_rotation_days}"
    defaults = variable_defaults("compute")
    assert 90 <= defaults["auth_secrets_key_rotation_days"] <= 365
    statements = key_policy_statements(key["policy"])
    assert set(statements) == {"AdministerNotUse", "ServeSealsAndOpensAuthSecrets"}
    # the account administers the key (through IAM) but neither uses it nor grants its use
    admin = statements["AdministerNotUse"]
    assert ':root"' in admin
    assert not any(
        action.startswith(("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncrypt"))
        or action == "kms:CreateGrant"
        or "*" in action
        for action in quoted(admin)
    )
    # serve's task role: data keys for TOTP secrets and MFA sessions, with the code's context
    serve = statements["ServeSealsAndOpensAuthSecrets"]
    assert 'Principal = {AWS = aws_iam_role.task["serve"].arn}' in serve
    assert quoted(serve) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert '"kms:EncryptionContext:finbank-purpose" = var.auth_secrets_encryption_context' in (
        serve
    )
    from finbank_adapters.crypto.kms import _CONTEXT

    assert defaults["auth_secrets_encryption_context"] == _CONTEXT["finbank-purpose"]
    alias = resource("compute", "aws_kms_alias", "auth_secrets")
    assert alias["target_key_id"] == "${aws_kms_key.auth_secrets.key_id}"


def test_serve_alone_gets_the_auth_secrets_key_in_its_role_and_its_environment() -> None:
    task = load(TERRAFORM / "modules" / "compute" / "main.tf")["data"]
    policy = next(
        b["aws_iam_policy_document"]["task"]
        for b in task
        if "task" in b.get("aws_iam_policy_document", {})
    )
    grants = [d["statement"] for d in policy["dynamic"] if sid_of(d) == "AuthSecretsKey"]
    assert len(grants) == 1
    assert grants[0]["for_each"] == '${each.key == "serve" ? [1] : []}'
    content = grants[0]["content"][0]
    assert sorted(content["actions"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert content["resources"] == ["${aws_kms_key.auth_secrets.arn}"]
    assert content["condition"][0]["variable"] == "kms:EncryptionContext:finbank-purpose"
    environment = compute_locals()["environment"]
    assert (
        '{name = "FINBANK_AUTH_SECRETS_KMS_KEY_ID", value = aws_kms_key.auth_secrets.arn}'
        in environment["serve"]
    )
    # the relay and the worker never open auth secrets (the cipher is opened on demand)
    for process in ("relay", "worker"):
        assert "AUTH_SECRETS" not in str(environment[process])
    # no other module, no other role: the key is named only in compute and the root outputs
    users = sorted(
        str(p.relative_to(TERRAFORM))
        for p in TERRAFORM.rglob("*.tf")
        if "auth_secrets" in p.read_text(encoding="utf-8")
    )
    assert users == [
        "modules/compute/main.tf",
        "modules/compute/outputs.tf",
        "modules/compute/variables.tf",
        "outputs.tf",
    ]


def test_serve_trusts_forwarded_headers_from_the_load_balancer_subnets_only() -> None:
    serve_env = compute_locals()["environment"]["serve"]
    assert (
        '"FINBANK_FORWARDED_ALLOW_IPS", value = join(",", var.load_balancer_cidr_blocks)'
        in serve_env
    )
    assert root_module("compute")["load_balancer_cidr_blocks"] == (
        "${module.network.public_subnet_cidr_blocks}"
    )
    public = resource("network", "aws_subnet", "public")
    assert public["map_public_ip_on_launch"] is False
    assert "FORWARDED" not in str(compute_locals()["environment"]["relay"])


# -- alarms: each on a metric the code emits, by the code's own name and dimensions -------


#: what the issue asks to alarm on, as metric names of finbank_adapters.metrics
ALARMED_SIGNALS = {
    "reconciliation discrepancies": "ReconciliationDiscrepancies",
    "outbox lag": "OutboxOldestEventAge",
    "consumer lag": "ConsumerGroupLag",
    "DLQ depth": "DeadLetterDepth",
    "settlement latency": "PixSettlementLatency",
    "MFA failures": "MfaFailures",
    "lockouts": "LoginLockouts",
    "ledger result codes": "LedgerUnexpectedResults",
}


def finbank_alarms() -> dict[str, dict[str, Any]]:
    alarms = resources_of("monitoring", "aws_cloudwatch_metric_alarm")
    return {
        name: body
        for name, body in alarms.items()
        if body.get("namespace") == "${var.metrics_namespace}"
    }


def resolved(value: str, defaults: dict[str, Any]) -> str:
    return re.sub(r"\$\{var\.(\w+)\}", lambda m: str(defaults[m.group(1)]), value)


def test_every_alarm_on_finbank_metrics_matches_what_the_code_emits() -> None:
    import io

    from finbank_adapters import metrics
    from finbank_adapters.kafka.consumer import dead_letter_topic
    from finbank_adapters.workers.pix_settlement import SETTLEMENT_GROUP
    from finbank_core.shared.events import PIX_TOPIC

    defaults = variable_defaults("monitoring")
    assert defaults["metrics_namespace"] == metrics.NAMESPACE
    assert variable_defaults("batch")["metrics_namespace"] == metrics.NAMESPACE
    expected_values = {
        "ConsumerGroup": SETTLEMENT_GROUP,
        "Topic": {"ConsumerGroupLag": PIX_TOPIC, "DeadLetterDepth": dead_letter_topic(PIX_TOPIC)},
    }
    alarms = finbank_alarms()
    assert alarms
    for name, alarm in alarms.items():
        metric = metrics.BY_NAME.get(alarm["metric_name"])
        assert metric is not None, f"{name}: {alarm['metric_name']} is not a metric of the code"
        dimensions = alarm["dimensions"]
        assert set(dimensions) == set(metric.all_dimensions), name
        assert dimensions["Environment"] == "${var.environment}"
        for dimension in metric.dimensions:
            expected = expected_values[dimension]
            if isinstance(expected, dict):
                expected = expected[metric.name]
            assert resolved(dimensions[dimension], defaults) == expected, (name, dimension)
        statistic = {"counter": "Sum", "gauge": "Maximum"}.get(metric.kind.value)
        if statistic:
            assert alarm["statistic"] == statistic, name
        else:
            assert alarm["extended_statistic"] == "p99", name
        # what the recorder writes for that metric: the same namespace and dimension names
        stream = io.StringIO()
        recorder = metrics.MetricsRecorder(emf=True, stream=stream, environment="prod")
        values = dict.fromkeys(metric.dimensions, "x")
        {
            "counter": recorder.add,
            "gauge": recorder.set,
            "distribution": recorder.observe,
        }[metric.kind.value](metric, 1, **values)
        recorder.flush()
        directive = json.loads(stream.getvalue())["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == defaults["metrics_namespace"]
        assert set(directive["Dimensions"][0]) == set(dimensions)
        assert directive["Metrics"][0]["Name"] == alarm["metric_name"]


def test_every_signal_the_issue_names_has_an_alarm_with_its_threshold_explained() -> None:
    alarmed = {body["metric_name"] for body in finbank_alarms().values()}
    assert set(ALARMED_SIGNALS.values()) <= alarmed
    text = (TERRAFORM / "modules" / "monitoring" / "main.tf").read_text(encoding="utf-8")
    for name in finbank_alarms():
        block = text.split(f'resource "aws_cloudwatch_metric_alarm" "{name}"')[0]
        comment = block.rstrip().rsplit("\n\n", 1)[-1]
        assert comment.lstrip().startswith("#"), f"{name}: no comment explains its threshold"
    for body in resources_of("monitoring", "aws_cloudwatch_metric_alarm").values():
        assert "Runbook: docs/operations.md#" in body["alarm_description"]


def test_every_alarm_runbook_anchor_is_a_heading_of_the_operations_page() -> None:
    page = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in page.splitlines()
        if line.startswith("#")
    }
    for name, body in resources_of("monitoring", "aws_cloudwatch_metric_alarm").items():
        anchor = body["alarm_description"].split("docs/operations.md#")[1]
        assert anchor in headings, f"{name}: no section #{anchor} in docs/operations.md"


def test_the_reconciliation_job_writes_its_metric_where_the_alarm_reads_it() -> None:
    text = (TERRAFORM / "modules" / "batch" / "main.tf").read_text(encoding="utf-8")
    assert '{ name = "FINBANK_METRICS_FORMAT", value = "emf" }' in text
    assert '{ name = "FINBANK_METRICS_ENVIRONMENT", value = var.environment }' in text
    assert root_module("batch")["environment"] == "${var.environment}"
    assert root_module("monitoring")["environment"] == "${var.environment}"


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands ``parser`` offers, by name."""
    for action in parser._actions:  # argparse lists them nowhere public
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_the_pix_automatic_scheduler_has_a_service_of_at_least_two_tasks() -> None:
    """Every long-running ``finbank`` process has an ECS service: the Pix Automático
    scheduler too (its debits would otherwise never run on AWS)."""
    from finbank_cli.main import build_parser

    parser = build_parser()
    services = compute_locals()["services"]
    definitions = {name: [str(a) for a in body["command"]] for name, body in services.items()}
    # every `finbank worker` subcommand the CLI offers runs as a service of its own
    deployed = {argv[1] for argv in definitions.values() if argv[0] == "worker"}
    assert deployed == set(subcommands(subcommands(parser)["worker"]))
    automatic = resource("compute", "aws_ecs_service", "automatic")
    assert automatic["task_definition"] == '${aws_ecs_task_definition.this["automatic"].arn}'
    assert automatic["desired_count"] == "${var.automatic_tasks}"
    assert automatic["deployment_minimum_healthy_percent"] == 100
    defaults = variable_defaults("compute")
    assert defaults["automatic_tasks"] >= 2
    validation = next(
        b["automatic_tasks"]["validation"][0]
        for b in load(TERRAFORM / "modules" / "compute" / "variables.tf")["variable"]
        if "automatic_tasks" in b
    )
    assert validation["condition"] == "${var.automatic_tasks >= 2}"
    # no auth secrets (it never reads them), the same environment as the settlement worker
    environments = compute_locals()["environment"]
    assert environments["automatic"] == "${local.common_environment}"


def test_every_task_exports_its_spans_to_a_collector_beside_it_that_reaches_x_ray() -> None:
    """Traces on AWS: the process turns tracing on and exports OTLP/HTTP to 127.0.0.1:4318,
    where the ADOT collector of the same task (network namespace) listens with its X-Ray
    configuration; the collector's image comes through the pull-through cache (no internet
    egress), its role may write segments, and the VPC reaches X-Ray through an endpoint."""
    from finbank_adapters import tracing

    text = (TERRAFORM / "modules" / "compute" / "main.tf").read_text(encoding="utf-8")
    env = {e["name"]: e["value"] for e in compute_locals()["common_environment"]}
    assert tracing.tracing_requested(env)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
    definitions = resource("compute", "aws_ecs_task_definition", "this")["container_definitions"]
    # the collector is a container of every task definition (for_each over the services)
    assert '{name = "otel-collector", image = local.collector_image' in definitions
    assert 'command = ["--config=/etc/ecs/ecs-xray.yaml"]' in definitions
    assert 'dependsOn = [{containerName = "otel-collector", condition = "START"}]' in definitions
    assert 'value = "finbank-${each.key}"' in definitions  # OTEL_SERVICE_NAME per service
    assert "aws-observability/aws-otel-collector" in compute_locals()["collector_image"]
    # the image is pulled through this account's cache of ECR Public
    rule = resource("ecr", "aws_ecr_pull_through_cache_rule", "ecr_public")
    assert rule["upstream_registry_url"] == "public.ecr.aws"
    assert root_module("compute")["ecr_public_cache_prefix"] == (
        "${module.ecr.ecr_public_cache_prefix}"
    )
    assert "ecr:BatchImportUpstreamImage" in text
    # X-Ray: the task role may write segments, the network has the endpoint
    assert '"xray:PutTraceSegments"' in text
    assert "xray" in variable_defaults("network")["interface_endpoints"]
    # the image installs OpenTelemetry (finbank[all] includes the otel extra)
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert '".[all]"' in dockerfile


#: the stack's process that writes each alarmed metric (docs/operations.md, "Metrics and
#: alarms"): a compute service (modules/compute) or the Batch job (modules/batch)
EMITTED_BY = {
    "ReconciliationDiscrepancies": {"batch"},
    "OutboxOldestEventAge": {"relay"},
    "OutboxWaitingEvents": {"relay"},
    "ConsumerGroupLag": {"worker"},
    "DeadLetterDepth": {"worker"},
    "PixSettlementLatency": {"worker"},
    "MfaFailures": {"serve"},
    "LoginLockouts": {"serve"},
    "LedgerResults": {"serve", "worker", "automatic"},
    "LedgerUnexpectedResults": {"serve", "worker", "automatic"},
}


def test_every_alarmed_metric_is_written_as_emf_by_a_process_the_stack_runs() -> None:
    """An alarm fires only if a process of this deployment writes its metric where
    CloudWatch reads it: EMF lines on stdout, shipped by the awslogs driver."""
    from finbank_adapters import metrics

    assert set(EMITTED_BY) == set(metrics.BY_NAME)
    services = compute_locals()["services"]
    environments = compute_locals()["environment"]
    common = {e["name"]: e["value"] for e in compute_locals()["common_environment"]}
    assert common["FINBANK_METRICS_FORMAT"] == "emf"
    assert "FINBANK_HTTP_METRICS_PORT" not in common  # no Prometheus listener on AWS
    assert "FINBANK_METRICS_PORT" not in common
    for alarm in finbank_alarms().values():
        for process in EMITTED_BY[alarm["metric_name"]]:
            if process == "batch":
                batch = (TERRAFORM / "modules" / "batch" / "main.tf").read_text(encoding="utf-8")
                assert '{ name = "FINBANK_METRICS_FORMAT", value = "emf" }' in batch
                continue
            assert process in services, (alarm["metric_name"], process)
            environment = str(environments[process])
            assert "local.common_environment" in environment, process
    definitions = resource("compute", "aws_ecs_task_definition", "this")["container_definitions"]
    assert 'logDriver = "awslogs"' in definitions


def _dynamodb_actions_called(paths: list[pathlib.Path]) -> set[str]:
    """The DynamoDB API actions ``paths`` call (``client.batch_get_item(`` ->
    ``dynamodb:BatchGetItem``; a transaction's ``ConditionCheck``/``Delete`` items too)."""
    actions: set[str] = set()
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for method in re.findall(r"client\.([a-z_]+)\(", text):
            actions.add("dynamodb:" + "".join(w.capitalize() for w in method.split("_")))
        if '"ConditionCheck"' in text:
            actions.add("dynamodb:ConditionCheckItem")
        if '"Delete": {' in text:
            actions.add("dynamodb:DeleteItem")
    return actions


def test_the_pix_record_grants_cover_every_dynamodb_call_of_the_code() -> None:
    """The task roles allow what the DynamoDB adapters call at run time (an action left
    out is an AccessDenied in production only: moto does not check IAM)."""
    aws = ROOT / "src" / "finbank_adapters" / "aws"
    # the table's creation and description are `finbank dev up`'s and `finbank doctor`'s
    runtime = sorted(p for p in aws.glob("dynamo*.py") if p.name != "dynamo_schema.py")
    called = _dynamodb_actions_called(runtime) - {"dynamodb:Aclose"}
    policy = next(
        b["aws_iam_policy_document"]["task"]
        for b in load(TERRAFORM / "modules" / "compute" / "main.tf")["data"]
        if "task" in b.get("aws_iam_policy_document", {})
    )
    grant = next(
        d["statement"]["content"][0] for d in policy["dynamic"] if sid_of(d) == "PixRecords"
    )
    assert called <= set(grant["actions"]), called - set(grant["actions"])
    # the reconciliation job reads the day's records: the index, then the records by key
    reads = _dynamodb_actions_called([aws / "dynamo.py"]) & {
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
    }
    batch = (TERRAFORM / "modules" / "batch" / "main.tf").read_text(encoding="utf-8")
    block = batch.split('sid = "ReadPixRecordsOfTheDay"')[1].split("\n  }")[0]
    assert all(f'"{action}"' in block for action in reads), block


def test_the_reconciliation_job_reads_the_statement_and_writes_the_report_where_the_code_does() -> (
    None
):
    from finbank_adapters.settings import Settings

    options = Settings.from_env({"FINBANK_PROFILE": "aws"}).reconciliation
    batch = (TERRAFORM / "modules" / "batch" / "main.tf").read_text(encoding="utf-8")
    assert 'name = "FINBANK_STATEMENT_PATH"' not in batch
    assert 'name = "FINBANK_FILES_S3_PREFIX"' not in batch
    statements = options.statement_path.split("/")[0]
    reports = options.report_prefix.split("/")[0]
    read = batch.split('sid       = "ReadStatements"')[1].split("\n  }")[0]
    assert '["s3:GetObject"]' in read
    assert f'"${{var.files_bucket_arn}}/{statements}/*"' in read
    write = batch.split('sid = "WriteReports"')[1].split("\n  }")[0]
    assert '"s3:PutObject"' in write
    assert '"s3:AbortMultipartUpload"' in write
    assert f'"${{var.files_bucket_arn}}/{reports}/*"' in write
