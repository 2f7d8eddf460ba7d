"""The HTTP app through Litestar's test client, on the memory profile."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from finbank_adapters.containers import BankContainer, build_container
from finbank_adapters.settings import JwtOptions, Settings
from finbank_http import create_app


@pytest.fixture
def container() -> BankContainer:
    return build_container(Settings(jwt=JwtOptions(secret=secrets.token_hex(32))))


@pytest.fixture
def client(container: BankContainer) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(container)) as test_client:
        yield test_client


@dataclass
class User:
    username: str
    headers: dict[str, str]


def sign_up_and_log_in(client: TestClient[Litestar], username: str) -> User:
    password = f"pw-{secrets.token_hex(8)}"
    response = client.post("/v1/auth/signup", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    response = client.post("/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    token = response.json()["tokens"]["access_token"]
    return User(username, {"Authorization": f"Bearer {token}"})


def open_account(client: TestClient[Litestar], user: User, name: str = "Holder") -> dict[str, Any]:
    response = client.post("/v1/accounts", json={"holder_name": name}, headers=user.headers)
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()
    return account


def deposit(client: TestClient[Litestar], user: User, account_id: str, amount: str) -> None:
    response = client.post(
        "/v1/sandbox/deposits",
        json={"account_id": account_id, "amount": amount},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text


@pytest.fixture
def alice(client: TestClient[Litestar]) -> User:
    return sign_up_and_log_in(client, "alice")


@pytest.fixture
def bob(client: TestClient[Litestar]) -> User:
    return sign_up_and_log_in(client, "bob")
