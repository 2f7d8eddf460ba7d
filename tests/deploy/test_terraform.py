"""deploy/terraform: every file parses (python-hcl2), the modules have their
three files, the parts the application depends on are configured as the code
expects, no secret value is written in the code, and checkov finds no failed
check (each suppression carrying a written reason)."""

from __future__ import annotations

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
        "batch", "secrets", "monitoring", "kms", "app_iam",
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
    assert function["handler"] == "finbank_adapters.aws.lambda_handlers.pix_stream_handler"
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
