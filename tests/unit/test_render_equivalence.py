"""The renderer's shortcuts (issue 18: "with context" imports made once per message, lazy short links) change no
byte of what leaves: every shipped template over the linter's matrix of contexts, rendered by the library and by
plain Jinja (each block with the template's own context, every import made anew), gives the same text."""

from __future__ import annotations

import datetime as dt

import jinja2
import pytest

from orchestrator.core.links import links_for
from orchestrator.core.short_codes import short_url
from templates import wording
from templates.lint import _families_for, _template_root, shipped_templates
from templates.preview import matrix_contexts
from templates.render import MESSAGES_DIR, TemplateLibrary, library, load_trades, tidy

SECRET = "test-secret-0123456789abcdef"


def plain_jinja(lib: TemplateLibrary) -> jinja2.Environment:
    """An environment like the library's, with Jinja's own Template class (no shortcut of ours)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(lib.root)), undefined=jinja2.StrictUndefined,
                             autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters.update({k: v for k, v in lib.env.filters.items() if k not in env.filters})
    env.globals.update(trade=lib.env.globals["trade"])
    assert env.template_class is jinja2.Template and lib.env.template_class is not jinja2.Template
    return env


def reference_render(env: jinja2.Environment, chain: list[str], context: dict) -> tuple:
    """Subject, body and html as plain Jinja gives them: the leaf's blocks, then its ancestors' (super() works)."""
    tmpl = env.get_template(chain[0])
    ctx = tmpl.new_context(wording.prepare(context, load_trades()))
    for ancestor in chain[1:]:
        for name, fn in env.get_template(ancestor).blocks.items():
            ctx.blocks.setdefault(name, []).append(fn)

    def block(name, clean=tidy):
        fns = ctx.blocks.get(name)
        return clean("".join(fns[0](ctx))) if fns else None

    return block("subject") or "", block("body") + "\n", block("html", str.strip)


def cases():
    for path in shipped_templates(MESSAGES_DIR):
        located = _template_root(path)
        if located is None:
            continue
        root, name, channel, trigger = located
        for family in _families_for(name):
            for label, context in matrix_contexts(family, trigger):
                yield name, label, context


def test_every_shipped_template_renders_as_plain_jinja_renders_it():
    lib = library()
    env = plain_jinja(lib)
    compared = 0
    for name, label, context in cases():
        got = lib.render(name, context)
        assert (got.subject, got.body, got.html) == reference_render(env, lib.chain(name), context), (name, label)
        compared += 1
    assert compared > 1000


@pytest.mark.parametrize("channel", ["sms", "letter", "email"])
def test_lazy_short_links_render_as_eager_ones(channel):
    lib = library()
    for name, label, context in cases():
        if not name.startswith(channel + "/"):
            continue
        lazy = links_for(SECRET, "https://declic.example", 4242, lazy_short=True, now=dt.datetime.now(dt.UTC))
        eager = {"landing": lazy["landing"], "unsubscribe": lazy["unsubscribe"],
                 "short": short_url(SECRET, "https://declic.example", 4242)}
        assert lib.render(name, dict(context, links=lazy)) == lib.render(name, dict(context, links=eager)), (
            name, label)


def test_an_import_that_reads_the_importing_block_is_made_anew(tmp_path):
    # A shared part that reads a loop variable of the block that imports it depends on that block: never reused.
    (tmp_path / "email" / "t").mkdir(parents=True)
    (tmp_path / "_p.j2").write_text("{% macro show() %}{{ n }}:{{ who }}{% endmacro %}", encoding="utf-8")
    (tmp_path / "email" / "t" / "default.j2").write_text(
        "{% block subject %}S{% endblock %}{% block body %}{% for n in [1, 2, 3] %}"
        "{% import '_p.j2' as p with context %}{{ p.show() }} {% endfor %}"
        "{% set n = 9 %}{% import '_p.j2' as q with context %}{{ q.show() }}{% endblock %}", encoding="utf-8")
    lib = TemplateLibrary(tmp_path)
    context = dict(matrix_contexts("batiment", "creation")[0][1], who="x")
    got = lib.render("email/t/default.j2", context)
    assert got.body == "1:x 2:x 3:x 9:x\n"


def test_remembered_macros_follow_every_value_they_read(tmp_path):
    # A macro is remembered by its arguments and the context paths it reads (its sibling macros' included); a
    # macro reading a top-level name of its template, or changing a context value, is never remembered.
    (tmp_path / "email" / "t").mkdir(parents=True)
    (tmp_path / "_p.j2").write_text(
        "{% set shout = who.upper() %}"
        "{% macro deep(x) %}{{ x }}/{{ inner() }}{% endmacro %}"
        "{% macro inner() %}{{ business.family }}:{{ sender.name }}:{{ sender.get('phone') }}{% endmacro %}"
        "{% macro loud() %}{{ shout }}{% endmacro %}"
        "{% macro grow() %}{% set _ = extra.append(1) %}{{ extra|length }}{% endmacro %}", encoding="utf-8")
    (tmp_path / "email" / "t" / "default.j2").write_text(
        "{% block subject %}S{% endblock %}{% block body %}{% import '_p.j2' as p with context %}"
        "{{ p.deep(1) }} {{ p.deep(2) }} {{ p.loud() }} {{ p.grow() }}{% endblock %}", encoding="utf-8")
    lib = TemplateLibrary(tmp_path)
    base = matrix_contexts("batiment", "creation")[0][1]

    def body(family, name, phone, who, extra):
        business = dict(base["business"], family=family)
        sender = dict(base["sender"], name=name, phone=phone)
        context = dict(base, business=business, sender=sender, who=who, extra=extra)
        return lib.render("email/t/default.j2", context).body.strip()

    assert body("batiment", "Ville A", "01", "a", []) == "1/batiment:Ville A:01 2/batiment:Ville A:01 A 1"
    assert body("batiment", "Ville A", "01", "a", []) == "1/batiment:Ville A:01 2/batiment:Ville A:01 A 1"
    assert body("commerce", "Ville A", "01", "b", [5]) == "1/commerce:Ville A:01 2/commerce:Ville A:01 B 2"
    assert body("commerce", "Ville B", "01", "b", []) == "1/commerce:Ville B:01 2/commerce:Ville B:01 B 1"
    assert body("commerce", "Ville B", "02", "b", []) == "1/commerce:Ville B:02 2/commerce:Ville B:02 B 1"


COMMUNES = ["Rennes", "L'Hermitage", "Cesson-Sévigné", "le Rheu"]


def test_every_kind_of_message_filled_in_renders_as_plain_jinja_renders_it():
    # A kind of message is rendered once with markers, then filled with each message's links and commune
    # (`templates.holes`): every later message of the kind, with its own values of any shape, is what plain
    # Jinja gives.
    lib = TemplateLibrary(MESSAGES_DIR)
    env = plain_jinja(lib)
    now = dt.datetime.now(dt.UTC)
    compared = 0
    for name, label, context in cases():
        for number, commune in enumerate(COMMUNES):
            links = links_for(SECRET, "https://declic.example", 1000 + number, lazy_short=number % 2 == 0, now=now)
            given = dict(context, links=links, business=dict(context["business"], commune=commune))
            got = lib.render(name, given)
            assert (got.subject, got.body, got.html) == reference_render(env, lib.chain(name), given), (
                name, label, commune)
            compared += 1
    assert compared > 4_000
    assert lib.plan("email").holes == (("business", "commune"), ("links", "landing"), ("links", "short"),
                                       ("links", "unsubscribe"))
    assert any(kind for kind in lib._kinds.values())  # the filled-in path ran


def test_a_value_a_template_measures_is_never_a_hole(tmp_path):
    # "de" reads the commune's first letter, "length" its size, "upper" changes it: the commune is then part of
    # the kind of message, never a marker filled in afterwards.
    (tmp_path / "email" / "t").mkdir(parents=True)
    (tmp_path / "email" / "t" / "default.j2").write_text(
        "{% block subject %}S {{ links.landing }}{% endblock %}{% block body %}{{ business.commune|de }} "
        "{{ self.place()|length }} {{ links.unsubscribe|upper }}{% endblock %}"
        "{% block place %}{{ business.commune }}{% endblock %}", encoding="utf-8")
    lib = TemplateLibrary(tmp_path)
    plan = lib.plan("email")
    assert plan is not None and plan.holes == ()  # links are one candidate: one of them changed, none is a hole
    base = matrix_contexts("batiment", "creation")[0][1]
    for commune, links, body in [("Rennes", {"landing": "https://a.fr/r/1", "unsubscribe": "https://a.fr/u/1"},
                                  "de Rennes 6 HTTPS://A.FR/U/1\n"),
                                 ("Acigné", {"landing": "https://a.fr/r/2", "unsubscribe": "https://a.fr/u/2"},
                                  "d'Acigné 6 HTTPS://A.FR/U/2\n")]:
        got = lib.render("email/t/default.j2", dict(base, links=links, business=dict(base["business"],
                                                                                        commune=commune)))
        assert (got.subject, got.body) == (f"S {links['landing']}", body)


def test_a_plain_commune_is_a_hole_and_a_measured_one_is_not(tmp_path):
    (tmp_path / "email" / "t").mkdir(parents=True)
    (tmp_path / "email" / "t" / "default.j2").write_text(
        "{% block subject %}S {{ links.landing }}{% endblock %}{% block body %}À {{ business.commune }}, "
        "{{ self.place()|trim|e }}.{% endblock %}{% block place %} {{ business.commune }} {% endblock %}",
        encoding="utf-8")
    (tmp_path / "letter" / "t").mkdir(parents=True)
    (tmp_path / "letter" / "t" / "default.j2").write_text(
        "{% block body %}{{ business.commune|length }}{% endblock %}", encoding="utf-8")
    lib = TemplateLibrary(tmp_path)
    assert lib.plan("email").holes == (("business", "commune"), ("links", "landing"))
    assert lib.plan("letter").holes == ()
    base = matrix_contexts("batiment", "creation")[0][1]
    for n, commune in enumerate(["Rennes", "Saint-Malo", "L'Hermitage", "Bruz"]):
        given = dict(base, links={"landing": f"https://a.fr/r/{n}"}, business=dict(base["business"], commune=commune))
        got = lib.render("email/t/default.j2", given)
        escaped = commune.replace("'", "&#39;")
        assert (got.subject, got.body) == (f"S https://a.fr/r/{n}", f"À {commune}, {escaped}.\n")
        assert lib.render("letter/t/default.j2", given).body == f"{len(commune)}\n"
    assert sum(1 for kind in lib._kinds.values() if kind) == 1  # one kind, L'Hermitage's escaped apostrophe included


def test_a_value_given_to_a_method_or_caller_is_never_a_hole(tmp_path):
    # A method of another value given the commune (a padded format) and caller() given it: their answer may
    # depend on the value, so the commune is part of the kind, never a marker.
    (tmp_path / "email" / "t").mkdir(parents=True)
    (tmp_path / "email" / "t" / "default.j2").write_text(
        "{% block subject %}S {{ links.landing }}{% endblock %}{% block body %}"
        "{% macro box() %}[{{ caller(business.commune) }}]{% endmacro %}"
        "{{ '{:*>12}'.format(business.commune) }}|{% call(c) box() %}{{ c }}{% endcall %}{% endblock %}",
        encoding="utf-8")
    lib = TemplateLibrary(tmp_path)
    assert ("business", "commune") not in lib.plan("email").holes
    base = matrix_contexts("batiment", "creation")[0][1]
    for commune in ("Rennes", "Saint-Malo", "Bruz"):
        got = lib.render("email/t/default.j2", dict(base, links={"landing": "https://a.fr/r/1"},
                                                    business=dict(base["business"], commune=commune)))
        assert got.body == f"{commune:*>12}|[{commune}]\n"


def test_a_template_changing_a_context_value_is_always_rendered_in_full(tmp_path):
    (tmp_path / "email" / "t").mkdir(parents=True)
    (tmp_path / "email" / "t" / "default.j2").write_text(
        "{% block subject %}S{% endblock %}{% block body %}{% set _ = extra.append(1) %}{{ extra|length }} "
        "{{ links.landing }}{% endblock %}", encoding="utf-8")
    lib = TemplateLibrary(tmp_path)
    assert lib.plan("email") is None
    base = matrix_contexts("batiment", "creation")[0][1]
    extra: list = []
    for n in (1, 2):
        got = lib.render("email/t/default.j2", dict(base, extra=extra, links={"landing": f"https://a.fr/r/{n}"}))
        assert got.body == f"{n} https://a.fr/r/{n}\n"
    assert extra == [1, 1]


def test_html_paragraphs_escapes_and_links():
    """The `html_paragraphs` filter (no shipped template uses it yet): escaped text, one paragraph per blank line,
    line breaks kept, links made clickable."""
    from templates.render import html_paragraphs

    html = html_paragraphs("Bonjour <Marie> & co,\nvoici le lien :\n\nhttps://declic.example/l/abc")
    assert html == ('<p>Bonjour &lt;Marie&gt; &amp; co,<br>\nvoici le lien :</p>\n'
                    '<p><a href="https://declic.example/l/abc">https://declic.example/l/abc</a></p>')
