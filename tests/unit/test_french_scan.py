"""The French scanner of the CLI and page tests (`tests.utils.french_scan`) takes out what a person copies as
written, and still finds what a French reader must not meet."""

from __future__ import annotations

from tests.utils.french_scan import problems


def test_a_partner_token_is_copied_as_written_not_read():
    # Random URL-safe characters may spell "dcl_kl" (snake_case) or "-call-" (English): the token is not prose.
    for token in ("dcl_kl-m_h_9gkub5xjVPeQV3Aln9SkFx9ts_xxKS7QSOt", "dcl_x-call-sent_pending_Abc"):
        assert problems(f"Partenaire « bge-35 » prêt. Jeton (affiché une seule fois) :\n{token}") == []


def test_codes_and_english_words_in_prose_are_still_found():
    found = problems("Statut : pending, voir no_channel")
    assert any(p.startswith("anglais: 'pending'") for p in found)
    assert any(p.startswith("code: 'no_channel'") for p in found)
