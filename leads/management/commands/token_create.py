"""`manage.py token_create --user U [--scopes capture,read] --name "Web form" [--days N]`.

The key alone goes to stdout (KEY=$(manage.py token_create …) works), what it is to stderr; it is
shown this once: only its SHA-256 is stored.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from leads import tokens
from leads.models import User


class Command(BaseCommand):
    help = "Create an API token for a user and print its key, once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument("--name", required=True, help="who uses it, e.g. 'Web form'")
        parser.add_argument(
            "--scopes", default="", help="comma-separated: capture, read, work, partner (default: all the role allows)"
        )
        parser.add_argument(
            "--days", type=int, default=None, help="valid for N days (default API_TOKEN_DEFAULT_DAYS; 0 never expires)"
        )

    def handle(self, *args, **options) -> None:
        user = User.objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}.")
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()] or None
        try:
            token, key = tokens.token_create(user=user, name=options["name"], scopes=scopes, days=options["days"])
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        expires = f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "never expires"
        self.stderr.write(
            f"API token {token.name!r} of {user.get_username()} (scopes: {', '.join(token.scope_list)}; {expires}). "
            "Its key follows, shown this once:"
        )
        self.stdout.write(key)
