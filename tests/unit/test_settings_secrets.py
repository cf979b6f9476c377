"""Secret settings never show in a repr, a log line or a traceback; the code that needs them reads them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import SecretStr

from integrations._settings import setting
from integrations.email_smtp import SmtpChannel
from orchestrator.app.settings import Settings, reveal

SECRETS = {
    "secret_key": "signing-secret-0123456789",
    "smtp_password": "smtp-pass-0123456789",
    "sirene_api_key": "sirene-key-0123456789",
    "sms_api_key": "sms-key-0123456789",
    "hooks_token": "hooks-token-0123456789",
    "webhook_secret": "webhook-secret-0123456789",
    "webhook_secrets": '{"https://crm.exemple.fr": "per-url-secret-0123456789"}',
    "metrics_token": "metrics-token-0123456789",
}
DB_URL = "postgresql+psycopg://declic:db-password-0123456789@db.exemple.fr/declic"


def test_no_secret_in_the_repr_of_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(f"DECLIC_{name.upper()}", value)
    monkeypatch.setenv("DECLIC_DATABASE_URL", DB_URL)
    settings = Settings(home=tmp_path)
    shown = repr(settings) + str(settings)
    for name, value in SECRETS.items():
        assert value not in shown, name
        assert isinstance(getattr(settings, name), SecretStr), name
    assert "db-password" not in shown
    assert settings.resolved_database_url == DB_URL  # still used as it is
    assert settings.resolved_secret == SECRETS["secret_key"]


def test_secrets_set_after_construction_are_hidden_too(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    settings.hooks_token = "set-by-hand-0123456789"
    settings.smtp_password = "by-hand-smtp-0123456789"
    assert isinstance(settings.hooks_token, SecretStr) and "set-by-hand" not in repr(settings)
    assert "by-hand-smtp" not in repr(settings)


def test_the_channels_still_read_the_secret_values(tmp_path) -> None:
    settings = Settings(home=tmp_path, smtp_password="smtp-pass-0123456789", sms_api_key="sms-key-0123456789")
    assert SmtpChannel.from_settings(settings).password == "smtp-pass-0123456789"
    assert setting(settings, "sms_api_key", "") == "sms-key-0123456789"
    # A stand-in settings object with plain strings (tests, scripts) works the same.
    assert setting(SimpleNamespace(sms_api_key="plain"), "sms_api_key", "") == "plain"
    assert reveal(None) is None and reveal("x") == "x" and reveal(SecretStr("y")) == "y"


def test_a_placeholder_signing_secret_is_still_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="placeholder"):
        Settings(home=tmp_path, secret_key="changeme")
