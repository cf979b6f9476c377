"""Dashboard sign-in, the application side: each password check is recorded and counted before it is made (the
limits hold across every web process), a right password clears the wrong ones, signing out ends every session of
the user. The store keeps the rows (`store.accounts`); the time is the App's."""

from __future__ import annotations

from orchestrator.app.bootstrap import App
from store import accounts
from store.accounts import SignInAttempt, SignInLimits


def begin_signin(app: App, email: str, source: str, limits: SignInLimits) -> SignInAttempt:
    """Record an attempt before its password is checked; over a limit, it is refused with the wait."""
    return accounts.begin_signin(app.engine, email, source, app.now(), limits)


def signin_succeeded(app: App, email: str, source: str, limits: SignInLimits) -> None:
    """A right password: the wrong ones typed for this e-mail from this address no longer count."""
    accounts.signin_succeeded(app.engine, email, source, app.now(), limits)


def sign_out_everywhere(app: App, user_id: int) -> None:
    """Every session cookie of this user issued so far stops being accepted."""
    accounts.end_sessions(app.engine, user_id)
