"""The Dockerfile, read as text (no Docker engine here): a multi-stage, slim,
non-root image whose entry point is the ``finbank`` CLI, and every ``finbank``
command that the image, the deploy files or the README mention exists in the
CLI parser."""

from __future__ import annotations

import argparse
import json
import pathlib
import re

import hcl2
import pytest

from finbank_cli.main import build_parser

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVE_IN_A_CONTAINER = ["serve", "--host", "0.0.0.0"]  # noqa: S104 - a container's port is published
DOCKERFILE = ROOT / "Dockerfile"
TERRAFORM = ROOT / "deploy" / "terraform"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list), f"not the exec (JSON) form: {arguments}"
    return [str(v) for v in value]


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def unquote(value: object) -> object:
    """python-hcl2 keeps HCL's quotes in strings and keys; drop them."""
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {str(unquote(k)): unquote(v) for k, v in value.items()}
    return value


def terraform_commands() -> list[list[str]]:
    """Container commands in Terraform: defaults of ``*_command`` variables."""
    found = []
    for path in sorted(TERRAFORM.rglob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            parsed = unquote(hcl2.load(handle))
        assert isinstance(parsed, dict)
        for block in parsed.get("variable", []):
            for name, body in block.items():
                if name.endswith("_command") and isinstance(body.get("default"), list):
                    found.append([str(arg) for arg in body["default"]])
    return found


COMMAND = r"finbank ([a-z][a-z0-9-]*(?: [a-z][a-z0-9-]*)?)"
INLINE_MENTION = re.compile(r"`" + COMMAND)
IN_CODE = re.compile(r"(?:^|[\s;&|(/])" + COMMAND, re.M)
FENCE = re.compile(r"^```[a-z]*\n(.*?)^```", re.S | re.M)


def mentioned_commands() -> list[list[str]]:
    """``finbank <command>`` as inline code, or run in a code block, in the Dockerfile,
    the Terraform files, the README and the operations guide."""
    found: list[str] = []
    for path in [DOCKERFILE, *sorted(TERRAFORM.rglob("*.tf"))]:
        found += INLINE_MENTION.findall(path.read_text(encoding="utf-8"))
    for path in [ROOT / "README.md", ROOT / "docs" / "operations.md"]:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        found += INLINE_MENTION.findall(text)
        for block in FENCE.findall(text):
            found += IN_CODE.findall(block)
    return [mention.split() for mention in found]


def assert_command_exists(argv: list[str]) -> None:
    parser = build_parser()
    choices = subcommands(parser)
    assert argv[0] in choices, f"`finbank {' '.join(argv)}`: no {argv[0]!r} in the CLI"
    nested = subcommands(choices[argv[0]])
    if nested and len(argv) > 1 and not argv[1].startswith("-"):
        assert argv[1] in nested, f"`finbank {' '.join(argv)}`: no {argv[1]!r} under {argv[0]!r}"


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text(encoding="utf-8"))


def test_the_image_is_built_in_several_stages_from_a_slim_base(
    dockerfile: list[tuple[str, str]],
) -> None:
    stages = [args for keyword, args in dockerfile if keyword == "FROM"]
    assert len(stages) >= 2
    assert any(keyword == "COPY" and "--from=" in args for keyword, args in dockerfile)
    base = next(args for keyword, args in dockerfile if keyword == "ARG" and "PYTHON_IMAGE" in args)
    assert "slim" in base


def test_the_final_stage_runs_as_an_unprivileged_user(dockerfile: list[tuple[str, str]]) -> None:
    last_from = max(i for i, (keyword, _) in enumerate(dockerfile) if keyword == "FROM")
    users = [args for keyword, args in dockerfile[last_from:] if keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_the_entrypoint_is_the_finbank_cli_serving_on_all_interfaces(
    dockerfile: list[tuple[str, str]],
) -> None:
    entrypoint = [exec_form(a) for k, a in dockerfile if k == "ENTRYPOINT"]
    command = [exec_form(a) for k, a in dockerfile if k == "CMD"]
    assert entrypoint[-1] == ["finbank"]
    assert command[-1] == SERVE_IN_A_CONTAINER
    build_parser().parse_args(command[-1])  # argparse exits on an unknown option


def test_the_cli_is_the_installed_console_script() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'finbank = "finbank_cli.main:main"' in pyproject


def test_dockerignore_keeps_the_build_context_to_the_package() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert lines[lines.index("*") :][:1] == ["*"], "everything is excluded first"
    assert {"!pyproject.toml", "!src/"} <= set(lines)


def test_every_command_the_deploy_files_run_exists_in_the_cli(
    dockerfile: list[tuple[str, str]],
) -> None:
    commands = [exec_form(a) for k, a in dockerfile if k == "CMD"]
    commands += terraform_commands()
    commands += mentioned_commands()
    assert SERVE_IN_A_CONTAINER in commands
    for argv in commands:
        assert_command_exists(argv)


def test_an_unknown_command_is_caught() -> None:
    with pytest.raises(AssertionError, match="no 'teleport'"):
        assert_command_exists(["teleport"])
