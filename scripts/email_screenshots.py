"""Screenshots of rendered e-mails for the README (docs/email-*.png, 390 px wide: a phone's width).

    .venv/bin/python -m scripts.email_screenshots [OUT_DIR]

Renders three e-mails with the sample context and signed links of real length, in headless Chromium
(/usr/bin/chromium, no download), and writes one full-page PNG each.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.utils.emails import render_email

SHOTS = (
    ("email-plombier-creation.png", "email/creation/batiment.j2", "creation", "batiment", "light"),
    ("email-boulanger-creation.png", "email/creation/alimentation.j2", "creation", "alimentation", "light"),
    ("email-coiffeuse-factures-sombre.png", "email/deadline/default.j2", "deadline", "beaute_bien_etre", "dark"),
)
WIDTH = 390


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        for file, name, trigger, family, scheme in SHOTS:
            rendered, _ = render_email(name, trigger, family)
            context = browser.new_context(viewport={"width": WIDTH, "height": 800}, color_scheme=scheme,
                                          device_scale_factor=1, locale="fr-FR")
            page = context.new_page()
            page.set_content(rendered.html, wait_until="load")
            page.screenshot(path=str(out / file), full_page=True)
            context.close()
            print(out / file)
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "docs")
