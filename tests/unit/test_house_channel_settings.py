"""Every channel setting is a declared `Settings` field, read from `DECLIC_*` by pydantic-settings."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from integrations._settings import setting
from orchestrator.app.settings import Settings

INTEGRATIONS = Path(__file__).resolve().parents[2] / "integrations"


def _setting_names() -> set[str]:
    names = set()
    for path in INTEGRATIONS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setting"
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)):
                names.add(node.args[1].value)
    return names


def test_every_name_a_channel_reads_is_declared_on_settings() -> None:
    names = _setting_names()
    assert {"webhook_secrets", "webhook_workers", "webhook_rate", "sms_octopush_type"} <= names
    assert names <= set(Settings.model_fields), names - set(Settings.model_fields)


def test_the_new_fields_come_from_the_environment_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {"https://crm.exemple.fr": "a-partner-secret-0123456789"}
    monkeypatch.setenv("DECLIC_WEBHOOK_SECRETS", json.dumps(secrets))
    monkeypatch.setenv("DECLIC_WEBHOOK_WORKERS", "6")
    monkeypatch.setenv("DECLIC_WEBHOOK_RATE", "2.5")
    monkeypatch.setenv("DECLIC_SMS_OCTOPUSH_TYPE", "sms_low_cost")
    monkeypatch.setenv("DECLIC_SMS_OCTOPUSH_PURPOSE", "alert")
    settings = Settings()
    assert json.loads(settings.webhook_secrets.get_secret_value()) == secrets
    assert settings.webhook_workers == 6 and settings.webhook_rate == 2.5
    assert (settings.sms_octopush_type, settings.sms_octopush_purpose) == ("sms_low_cost", "alert")
    assert setting(settings, "webhook_workers", 4) == 6
    assert setting(settings, "sms_octopush_purpose", "wholesale") == "alert"
    assert "a-partner-secret" not in repr(settings)


def test_unset_fields_give_the_channel_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WEBHOOK_WORKERS", "WEBHOOK_RATE", "SMS_OCTOPUSH_TYPE"):
        monkeypatch.delenv(f"DECLIC_{name}", raising=False)
    settings = Settings()
    assert setting(settings, "webhook_workers", 4) == 4
    assert setting(settings, "webhook_rate", 0.0) == 0.0
    assert setting(settings, "sms_octopush_type", "sms_premium") == "sms_premium"


def test_the_settings_object_is_the_only_source(monkeypatch: pytest.MonkeyPatch) -> None:
    # The composition root reads the environment once, into Settings; a channel never reads it behind it.
    monkeypatch.setenv("DECLIC_WEBHOOK_WORKERS", "3")
    stand_in = SimpleNamespace(webhook_url="http://127.0.0.1:9")
    assert setting(stand_in, "webhook_url", "") == "http://127.0.0.1:9"
    assert setting(stand_in, "webhook_workers", 4) == 4
    assert setting(Settings(), "webhook_workers", 4) == 3


def test_an_undeclared_name_is_a_programming_error() -> None:
    with pytest.raises(AttributeError, match="not a declared Settings field"):
        setting(Settings(), "webhook_secretz", "")
