"""Auth: principals, login with MFA challenges, ports to identity providers."""
