"""`Authorization: Token <key>` against leads.ApiToken: hashed keys with expiry, revocation and scopes.

DRF's TokenAuthentication parses the header and answers 401 with `WWW-Authenticate: Token`; only
the lookup is ours. request.auth is the ApiToken, whose scopes leads.api.scopes.TokenHasScope checks.
"""

from __future__ import annotations

from rest_framework import authentication, exceptions

from leadportal import logs
from leads import tokens


class ApiTokenAuthentication(authentication.TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key: str):
        try:
            token = tokens.token_authenticate(key=key)
        except tokens.TokenRefused as refused:
            raise exceptions.AuthenticationFailed(refused.message) from None
        # The middleware saw no user (DRF authenticates in the view): the view's lines name this one.
        logs.bind(user_id=token.user.pk)
        return token.user, token
