"""The reviewed trade wording of the 732 NAF sub-classes (segments/data/trades_naf.csv)."""

import re

from segments.taxonomy import naf_entries, trade_wording, trade_wordings

# Words of INSEE labels that no owner uses for a trade ("activité de taxi" is fine, "activités de ..." is not).
_INSEE_WORDS = re.compile(r"\b(autres|activités|n\.c\.a|classées? ailleurs|sièges? sociaux|interentreprises)\b",
                          re.IGNORECASE)


def test_every_subclass_has_one_wording():
    assert set(trade_wordings()) == set(naf_entries())


def test_wording_is_never_an_insee_label_and_needs_no_gender():
    for code, w in trade_wordings().items():
        label = naf_entries()[code].label
        assert w.business.startswith(("votre ", "vos ")), code
        assert w.business_a.split(" ", 1)[0] in ("un", "une", "des"), code
        assert w.business.split(" ", 1)[1] == w.business_a.split(" ", 1)[1], code
        assert w.trade.startswith("les "), code
        for text in (w.business, w.trade):
            assert not _INSEE_WORDS.search(text), (code, text)
            assert "(e)" not in text, (code, text)
            assert text.lower() != label.lower(), (code, text)
        assert w.catch_all == (w.business == "votre entreprise"), code


def test_catch_all_codes_say_votre_entreprise():
    for code in ("70.10Z", "64.20Z", "82.99Z", "63.99Z", "96.09Z"):
        w = trade_wording(code)
        assert w is not None
        assert (w.business == "votre entreprise") == (code != "96.09Z"), code


def test_known_trades_read_naturally():
    assert trade_wording("10.71C").business == "votre boulangerie"
    assert trade_wording("1071C").trade == "les boulangers et boulangères"
    assert trade_wording("96.02A").business == "votre salon de coiffure"
    assert trade_wording("43.22A").business == "votre entreprise de plomberie"
    assert trade_wording("49.32Z").business_a == "une activité de taxi"
    assert trade_wording("45.20A").business == "votre garage"
    assert trade_wording(None) is None and trade_wording("xx") is None and trade_wording("00.00Z") is None
