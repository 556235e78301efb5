from django.db import models
from django.utils import timezone


class PasswordResetRequest(models.Model):
    """A password-reset request that was let through to the form (accounts.services).

    Counted per e-mail address and per client address over the last hour; rows older than that are
    deleted as new requests come in. Kept in the database, not the cache: Redis may be away, and the
    reset form must neither fail then nor stop counting.
    """

    email = models.EmailField()  # as typed, stripped and lower-cased: one account, one key
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    requested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["email", "requested_at"], name="reset_email_recent"),
            models.Index(fields=["ip_address", "requested_at"], name="reset_address_recent"),
            models.Index(fields=["requested_at"], name="reset_requested_at"),
        ]

    def __str__(self) -> str:
        return f"{self.email} from {self.ip_address} at {self.requested_at:%Y-%m-%d %H:%M:%S}"
