"""Auth: principals, login with MFA challenges, ports to identity providers.

The public API of the context: its ports, model, commands, results, use cases
and errors. Everything listed in ``__all__`` is importable from here; see
``docs/auth.md``.
"""

from finbank_core.auth.errors import (
    AccountLocked,
    ChallengeNotFound,
    IncorrectCode,
    InvalidCredentials,
    InvalidToken,
    PasswordResetRequired,
    UnsupportedChallenge,
    UsernameTaken,
    UserNotConfirmed,
    WeakPassword,
)
from finbank_core.auth.lockout import LockoutPolicy
from finbank_core.auth.model import (
    ChallengeType,
    MfaChallenge,
    Principal,
    ProviderChallenge,
    SignUpCommand,
    SignUpResult,
    TokenSet,
    TotpSetup,
)
from finbank_core.auth.ports import (
    ChallengeStore,
    IdentityProvider,
    LoginThrottle,
    TokenDenylist,
    TokenVerifier,
)
from finbank_core.auth.refresh_tokens import RefreshTokenStore, RotationOutcome
from finbank_core.auth.use_cases import (
    AnswerChallenge,
    Authenticate,
    ChallengeTotpSetup,
    ConfirmSignUp,
    Login,
    LoginResult,
    Logout,
    PasswordLogin,
    Refresh,
    SelectMfaType,
    SetUpTotp,
    SignUp,
    VerifyTotp,
)
from finbank_core.auth.users import UserRecord, UserStore

__all__ = [
    "AccountLocked",
    "AnswerChallenge",
    "Authenticate",
    "ChallengeNotFound",
    "ChallengeStore",
    "ChallengeTotpSetup",
    "ChallengeType",
    "ConfirmSignUp",
    "IdentityProvider",
    "IncorrectCode",
    "InvalidCredentials",
    "InvalidToken",
    "LockoutPolicy",
    "Login",
    "LoginResult",
    "LoginThrottle",
    "Logout",
    "MfaChallenge",
    "PasswordLogin",
    "PasswordResetRequired",
    "Principal",
    "ProviderChallenge",
    "Refresh",
    "RefreshTokenStore",
    "RotationOutcome",
    "SelectMfaType",
    "SetUpTotp",
    "SignUp",
    "SignUpCommand",
    "SignUpResult",
    "TokenDenylist",
    "TokenSet",
    "TokenVerifier",
    "TotpSetup",
    "UnsupportedChallenge",
    "UserNotConfirmed",
    "UserRecord",
    "UserStore",
    "UsernameTaken",
    "VerifyTotp",
    "WeakPassword",
]
