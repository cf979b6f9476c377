"""vulture's whitelist: framework entry points that no line of ours calls by name (read by vulture, never run).

Decorated entry points (FastAPI routes and handlers, typer commands, Prefect flows and tasks, pydantic validators,
pytest fixtures) are left out by `ignore_decorators` in pyproject.toml `[tool.vulture]`; Alembic's upgrade/downgrade
live in the migrations, which vulture does not read. What remains: methods a library calls on our subclasses.
"""

from http.server import BaseHTTPRequestHandler

from integrations.letter_pdf import LetterDocument
from integrations.smtp_sink import _Handler
from templates.lint import _PageText

CALLED_BY_LIBRARIES = (
    LetterDocument.footer,  # fpdf2, at each page break
    _Handler.handle_EHLO,  # aiosmtpd's handle_<VERB> hooks
    _Handler.handle_RCPT,
    _Handler.handle_DATA,
    _PageText.handle_starttag,  # html.parser's hooks
    _PageText.handle_endtag,
    _PageText.handle_data,
    BaseHTTPRequestHandler.log_message,  # http.server; integrations.loopback's handler keeps test output quiet
)
