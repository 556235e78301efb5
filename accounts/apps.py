from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-in protection around Django's own auth views: the lockout page (django-axes), the client
    address both limits count by, and the password-reset e-mail limits."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
