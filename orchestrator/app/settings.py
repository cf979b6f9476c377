"""One place for configuration: environment variables `DECLIC_*` (pydantic-settings).

The embedded default needs nothing: a SQLite file and a generated secret under `DECLIC_HOME` (./var).
"""

from __future__ import annotations

import os
import secrets
import time
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "dev", "test", ""}


class Settings(BaseSettings):
    """Déclic settings; every field reads `DECLIC_<NAME>` from the environment."""

    # Secrets are SecretStr (shown as '**********' in reprs, logs and tracebacks; read them with
    # `.get_secret_value()` or `reveal()`); assignments are validated, so a test setting one gets a SecretStr too.
    model_config = SettingsConfigDict(env_prefix="DECLIC_", extra="ignore", validate_assignment=True)

    home: Path = Field(default=Path("var"), description="folder for the SQLite file, secrets, letters, Prefect home")
    # Out of the repr: a PostgreSQL URL may carry its password.
    database_url: str | None = Field(default=None, repr=False, description="SQLAlchemy URL; default SQLite in home")
    secret_key: SecretStr | None = Field(
        default=None, description="signs tracking/unsubscribe tokens and sessions"
    )
    base_url: str = "http://127.0.0.1:8000"
    # The largest request body the web app reads (bytes); a bigger one is answered 413 before it is parsed.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, description="largest request body, bytes")
    timezone: str = "Europe/Paris"
    # Dashboard password checks running at once in one web process (argon2: 64 MiB each); beyond, 429.
    signin_concurrency: int = Field(default=4, ge=1, le=64)

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = 10.0
    mail_from: str = "Déclic <bonjour@declic.example>"
    # The domain campaigns send from when their sender names no address of its own: "<owner slug>@<domain>".
    mail_domain: str | None = None
    # Per recipient domain sending policy (issue 18), JSON overriding the shipped table of
    # integrations.email_smtp.DOMAIN_POLICY entry by entry: {"orange.fr": {"rate": 5, "connections": 2,
    # "backoff": 300}, "*": {...}}; rate in messages per second, backoff the first pause in seconds after a 421
    # or another temporary refusal of the domain (doubled at each refusal, at most an hour).
    mail_domain_policy: str | None = None
    # DKIM signing (dkimpy) when a key file (PEM, RSA) and a selector are set; the signing domain is
    # dkim_domain, else mail_domain, else the domain of mail_from.
    dkim_key_file: Path | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None

    dispatch_batch_size: int = 500
    lease_seconds: int = 300
    # Sending policy (issue 5): SMTP connections used at once by the e-mail channel; the first retry delay
    # (doubled at each try, capped at 6 h; tests shorten it); a campaign pauses itself when, over the last
    # pause_window_minutes, at least pause_min_sample sends were tried and this share failed permanently.
    smtp_connections: int = Field(default=4, ge=1, le=32)
    retry_base_seconds: float = Field(default=30.0, gt=0)
    pause_error_rate: float = Field(default=0.2, gt=0, le=1)
    pause_min_sample: int = Field(default=50, ge=1)
    pause_window_minutes: int = Field(default=60, ge=1)
    plan_batch_size: int = 5000
    # Pressure limits across all campaigns and owners (issue 4): at most this many messages per business in
    # any 7 and any 30 days; campaigns may add their own, stricter caps.
    cap_per_7_days: int = Field(default=1, ge=1)
    cap_per_30_days: int = Field(default=3, ge=1)

    # Watched feeds (issue 8): per-request timeout, tries per run, the longest Retry-After slept through
    # (longer waits move the feed's next run instead of holding a worker), BODACC's first look-back, and the
    # Sirene API key (portail-api.insee.fr) with its rate limit.
    feed_timeout_seconds: float = Field(default=30.0, gt=0)
    feed_attempts: int = Field(default=3, ge=1, le=10)
    feed_backoff_seconds: float = Field(default=2.0, ge=0)
    feed_max_wait_seconds: float = Field(default=120.0, ge=0)
    # The largest feed body (or API page) read, in MB, counted while it streams; a bigger one fails the run.
    feed_max_mb: int = Field(default=200, ge=1)
    bodacc_lookback_days: int = Field(default=3, ge=0)
    sirene_api_key: SecretStr | None = None
    sirene_api_per_minute: int = Field(default=30, ge=1)

    # Channels (issue 5); each module's docstring says more and holds the defaults (None here = the
    # channel's default). Unset SMS or webhook endpoints hold those messages in the outbox with the reason,
    # never the whole dispatch.
    sms_provider: str | None = None  # "generic" (documented JSON, the default) or "octopush"
    sms_url: str | None = None
    sms_api_key: SecretStr | None = None
    sms_login: str | None = None
    sms_sender: str | None = None
    sms_timeout: float | None = None
    sms_workers: int | None = None
    sms_rate: float | None = None  # messages per second at most, when the provider asks for it
    sms_octopush_type: str | None = Field(
        default=None, description='Octopush: "sms_premium" (default) or "sms_low_cost"'
    )
    sms_octopush_purpose: str | None = Field(
        default=None, description='Octopush: "wholesale" (marketing, default) or "alert" (transactional)'
    )
    # Shared secret the SMS provider and the bounce mailbox put in their callback URLs (/hooks/...?token=).
    hooks_token: SecretStr | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_timeout: float | None = None
    # Kept as text, parsed by the channel: bad JSON then holds the webhooks with the reason instead of
    # stopping every process at start.
    webhook_secrets: SecretStr | None = Field(
        default=None, description='JSON object, URL prefix -> secret: {"https://crm.a.fr": "..."}'
    )
    webhook_workers: int | None = Field(default=None, description="requests in flight at once (default 4)")
    webhook_rate: float | None = Field(default=None, description="requests per second at most (default 0: no limit)")
    letter_dir: Path | None = None  # default: <home>/letters
    letter_sender_name: str | None = None
    letter_sender_address: str | None = None
    letter_sender_city: str | None = None
    # Operations (issue 21): who gets the alert e-mails (comma-separated addresses), the bearer token of
    # /metrics (unset: /metrics answers only to loopback and private addresses), the log format (text|json).
    # Personal data (issue 15): contacts of a business are purged this many days after the last contact the
    # person initiated (a click, a reply, a form; CNIL prospecting guidance: 3 years), message bodies, free-text
    # notes and partner payloads sooner.
    retention_contact_days: int = Field(default=3 * 365, ge=30, le=10 * 365)
    retention_text_days: int = Field(default=365, ge=7, le=10 * 365)
    operator_emails: str | None = None
    metrics_token: SecretStr | None = None
    log_format: str = "text"

    @field_validator("secret_key")
    @classmethod
    def _reject_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        text = reveal(value)
        if text is not None and (text.lower() in PLACEHOLDER_SECRETS or len(text) < 16):
            raise ValueError("DECLIC_SECRET_KEY is a placeholder or shorter than 16 characters")
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        """The store URL: `DECLIC_DATABASE_URL`, else a SQLite file in home."""
        if self.database_url:
            return self.database_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.home / 'declic.db').resolve()}"

    @cached_property
    def resolved_secret(self) -> str:
        """The signing secret: `DECLIC_SECRET_KEY`, else one generated once and kept in home."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.home / "secret_key"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            try:
                # O_EXCL: of two processes starting together, one writes and both read the same secret;
                # the file is private from its first byte.
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_urlsafe(32))
        for _ in range(50):  # the other process may still be writing it
            secret = path.read_text().strip()
            if secret:
                return secret
            time.sleep(0.01)
        raise RuntimeError(f"the secret file {path} is empty")


def reveal(value: SecretStr | str | None) -> str | None:
    """The text of a secret setting (a SecretStr, or a plain string from a stand-in settings object)."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def get_settings() -> Settings:
    """Settings read from the environment now (no global cache: tests change the environment)."""
    return Settings()


def prepare_prefect_env(home: Path) -> None:
    """Keep Prefect's files under our home and its local server quiet (set before importing prefect)."""
    os.environ.setdefault("PREFECT_HOME", str((home / "prefect").resolve()))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_REGISTER_BLOCKS_ON_START", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # The local server migrates its SQLite file on first start: ~10 s idle, more on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
