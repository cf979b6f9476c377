"""`declic serve`'s access log keeps the route but never a link token or a callback token (issue 14)."""

from __future__ import annotations

import datetime as dt
import logging

import httpx

from integrations.smtp_sink import free_port
from orchestrator.app.bootstrap import bootstrap
from orchestrator.core.links import make_token
from orchestrator.prefect.serve import start_web
from web.app import create_app
from web.log_redaction import redact


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_the_access_log_masks_link_and_hook_tokens(settings, engine):
    settings.hooks_token = "hooks-secret-0123456789"
    now = dt.datetime.now(dt.UTC)
    click, unsubscribe, page = (make_token(settings.resolved_secret, p, 42, now=now) for p in ("r", "u", "m"))
    port = free_port()
    server = start_web("127.0.0.1", port, create_app(bootstrap(settings)))
    lines = Lines()
    access = logging.getLogger("uvicorn.access")
    access.addHandler(lines)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            for path in (f"/r/{click}", f"/u/{unsubscribe}", f"/m/{page}/rappel",
                         "/hooks/sms/delivery?token=hooks-secret-0123456789&x=1", "/healthz"):
                http.get(path)
    finally:
        access.removeHandler(lines)
        server.should_exit = True
    log = "\n".join(lines.lines)
    assert len(lines.lines) == 5, log
    for secret in (click, unsubscribe, page, "hooks-secret"):
        assert secret not in log
    assert "/r/***" in log and "/u/***" in log and "/m/***/rappel" in log
    assert "/hooks/sms/delivery?token=***&x=1" in log and "/healthz" in log


def test_redact_keeps_what_is_not_a_secret():
    assert redact("/tableau/campagnes/3?depuis=2") == "/tableau/campagnes/3?depuis=2"
    assert redact("/api/v1/events?since=2026-01-01") == "/api/v1/events?since=2026-01-01"
    assert redact("/hooks/bounce?api_key=abc&token=def") == "/hooks/bounce?api_key=***&token=***"


def test_any_server_running_the_app_masks_tokens(settings, engine):
    # uvicorn --factory, gunicorn...: building the app is enough to put the filter on the access log.
    from web.log_redaction import RedactTokens

    access = logging.getLogger("uvicorn.access")
    access.filters[:] = [f for f in access.filters if not isinstance(f, RedactTokens)]
    create_app(bootstrap(settings))
    assert any(isinstance(f, RedactTokens) for f in access.filters)
