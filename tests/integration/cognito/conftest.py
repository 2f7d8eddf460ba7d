"""Cognito on a moto server: threaded, loopback, a free port, one per test session.

moto's TOTP check is switched on (``MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP``)
so software-token codes are verified for real against the secret moto hands
out; SMS codes are accepted whatever they are, which is why the attempt cap,
the TTL and single use are tested in our code, on an injected clock.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aioboto3
import boto3
import pytest
from moto.server import ThreadedMotoServer

from finbank_adapters.aws.cognito import CognitoIdentityProvider
from finbank_adapters.aws.jwks import (
    CognitoTokenVerifier,
    HttpJwksFetcher,
    JwksKeySet,
    cognito_issuer,
)
from finbank_adapters.memory import FakeClock
from finbank_adapters.memory.auth import (
    InMemoryChallengeStore,
    InMemoryLoginThrottle,
    InMemoryTokenDenylist,
)
from finbank_core.auth.use_cases import (
    AnswerChallenge,
    Authenticate,
    Logout,
    PasswordLogin,
    Refresh,
)

# moto maps unsigned calls (GlobalSignOut is one) to us-east-1, so the pools live there.
REGION = "us-east-1"
PASSWORD = "Correct-Horse-9-Battery"

_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP": "true",
}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    saved = {key: os.environ.get(key) for key in _ENV}
    os.environ.update(_ENV)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Pool:
    """A user pool with an app client, set up through the admin API (boto3, sync)."""

    endpoint: str
    admin: Any
    pool_id: str
    client_id: str
    client_secret: str | None

    def user(self, username: str, *, phone: str | None = None) -> None:
        attributes = [{"Name": "email", "Value": f"{username}@example.com"}]
        if phone:
            attributes.append({"Name": "phone_number", "Value": phone})
        self.admin.admin_create_user(
            UserPoolId=self.pool_id,
            Username=username,
            UserAttributes=attributes,
            MessageAction="SUPPRESS",
        )
        self.admin.admin_set_user_password(
            UserPoolId=self.pool_id, Username=username, Password=PASSWORD, Permanent=True
        )

    def sms_user(self, username: str) -> None:
        self.user(username, phone="+5511999990000")
        self.admin.admin_set_user_mfa_preference(
            UserPoolId=self.pool_id,
            Username=username,
            SMSMfaSettings={"Enabled": True, "PreferredMfa": True},
        )


def make_pool(
    endpoint: str,
    *,
    with_secret: bool = False,
    mfa: str = "OPTIONAL",
    username_attributes: list[str] | None = None,
) -> Pool:
    admin = boto3.client("cognito-idp", region_name=REGION, endpoint_url=endpoint)
    extra = {"UsernameAttributes": username_attributes} if username_attributes else {}
    pool = admin.create_user_pool(PoolName=f"finbank-{secrets.token_hex(4)}", **extra)["UserPool"]
    admin.set_user_pool_mfa_config(
        UserPoolId=pool["Id"],
        SoftwareTokenMfaConfiguration={"Enabled": True},
        SmsMfaConfiguration={
            "SmsConfiguration": {"SnsCallerArn": "arn:aws:iam::123456789012:role/sns"}
        },
        MfaConfiguration=mfa,
    )
    client = admin.create_user_pool_client(
        UserPoolId=pool["Id"],
        ClientName="finbank-app",
        GenerateSecret=with_secret,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]
    return Pool(endpoint, admin, pool["Id"], client["ClientId"], client.get("ClientSecret"))


@pytest.fixture
def pool(moto_endpoint: str) -> Pool:
    return make_pool(moto_endpoint)


@pytest.fixture
def clock() -> FakeClock:
    # moto stamps tokens with the real time; our checks run on this clock, starting now.
    return FakeClock(datetime.now(UTC))


@dataclass
class CognitoWorld:
    pool: Pool
    clock: FakeClock
    provider: CognitoIdentityProvider
    keys: JwksKeySet
    verifier: CognitoTokenVerifier
    challenges: InMemoryChallengeStore
    login: PasswordLogin
    answer: AnswerChallenge
    authenticate: Authenticate
    logout: Logout
    refresh: Refresh


async def cognito_world(
    pool: Pool, clock: FakeClock, cognito: Any, *, sign_in_attribute: str = "username"
) -> CognitoWorld:
    provider = CognitoIdentityProvider(
        cognito,
        client_id=pool.client_id,
        client_secret=pool.client_secret,
        sign_in_attribute=sign_in_attribute,
    )
    keys = JwksKeySet(
        HttpJwksFetcher(f"{pool.endpoint}/{pool.pool_id}/.well-known/jwks.json"), clock
    )
    verifier = CognitoTokenVerifier(
        keys,
        issuer=cognito_issuer(REGION, pool.pool_id),
        client_id=pool.client_id,
        clock=clock,
    )
    challenges = InMemoryChallengeStore(clock)
    throttle = InMemoryLoginThrottle(clock)
    denylist = InMemoryTokenDenylist(clock)
    authenticate = Authenticate(verifier, denylist)
    return CognitoWorld(
        pool=pool,
        clock=clock,
        provider=provider,
        keys=keys,
        verifier=verifier,
        challenges=challenges,
        login=PasswordLogin(provider, challenges, throttle, clock),
        answer=AnswerChallenge(provider, challenges, throttle, clock),
        authenticate=authenticate,
        logout=Logout(provider, authenticate, denylist, clock),
        refresh=Refresh(provider),
    )


@pytest.fixture
async def cognito_client(moto_endpoint: str) -> AsyncIterator[Any]:
    session = aioboto3.Session()
    async with session.client(
        "cognito-idp", region_name=REGION, endpoint_url=moto_endpoint
    ) as client:
        yield client


@pytest.fixture
async def world(pool: Pool, clock: FakeClock, cognito_client: Any) -> CognitoWorld:
    return await cognito_world(pool, clock, cognito_client)
