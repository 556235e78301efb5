"""Django's sign-in and reset views with the limits in front: the lockout page django-axes shows,
and the password-reset form that counts e-mails (accounts.services)."""

from __future__ import annotations

import math

from axes.helpers import get_cool_off
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from accounts.addresses import client_ip
from accounts.services import WINDOW, ResetVerdict, password_reset_admit


def locked_out(request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 and a page that says how long to wait and that a reset helps.

    Locked attempts are not recorded (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False), so the
    lock ends at most AXES_COOLOFF_TIME after the failure that set it, whatever the guesser does next.
    """
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds())
    response = render(
        request,
        "registration/locked_out.html",
        {"minutes": math.ceil(seconds / 60), "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


class PasswordResetView(auth_views.PasswordResetView):
    """At most PASSWORD_RESET_PER_EMAIL e-mails an hour to one address, PASSWORD_RESET_PER_ADDRESS
    requests an hour from one client; past the first, the usual "check your e-mail" answer and no mail."""

    def form_valid(self, form):
        verdict = password_reset_admit(email=form.cleaned_data["email"], ip_address=client_ip(self.request))
        if verdict is ResetVerdict.TOO_MANY:
            seconds = int(WINDOW.total_seconds())
            context = {"minutes": seconds // 60}
            response = render(self.request, "registration/password_reset_limited.html", context, status=429)
            response["Retry-After"] = str(seconds)
            return response
        if verdict is ResetVerdict.QUIET:
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """A new password lifts the account's sign-in lock, as the lockout page promises: the guesses were
    against the old one, and whoever set it read the account's e-mail. django-axes stores failures per
    (username, address), so the guessers' addresses lose the failures they spent on this account too:
    they start again from zero against a password they know nothing about, as after a cool-off."""

    def form_valid(self, form):
        response = super().form_valid(form)
        axes_reset(username=form.user.get_username())
        return response
