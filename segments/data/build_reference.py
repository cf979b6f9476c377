"""Rebuild the shipped reference data of `segments/` from the npm registry.

Run: ``python -m segments.data.build_reference`` (needs `npm` on the PATH and access to the npm registry).

Sources (fetched with ``npm pack`` into a temporary directory, never committed):
- ``@socialgouv/codes-naf``: NAF rév. 2 nomenclature -> ``naf.csv`` (sub-classes only), mapped to the
  métier families defined below (``families.csv``).
- ``@etalab/decoupage-administratif``: communes, EPCI, départements, régions -> ``communes.csv``,
  ``epci.csv``, ``departements.csv``, ``regions.csv``.

Output is deterministic (rows sorted, UTF-8, ``\\n`` line endings) so a rebuild with the same package versions
gives byte-identical files. The versions used are written to ``SOURCES.md`` next to the CSV files.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent
NAF_PACKAGE = "@socialgouv/codes-naf"
TERRITORY_PACKAGE = "@etalab/decoupage-administratif"

# ------------------------------------------------------------------------------------------------------------
# Métier families: the words business owners recognise. Authored here, written to families.csv.
# Columns: family, label, trade_phrase (how a message names the trade in a sentence), description.
# ------------------------------------------------------------------------------------------------------------
FAMILIES: list[tuple[str, str, str, str]] = [
    (
        "agriculture",
        "Agriculture, pêche et forêt",
        "les agriculteurs et éleveurs",
        "Cultures, élevage, viticulture, sylviculture, pêche et aquaculture.",
    ),
    (
        "alimentation",
        "Alimentation",
        "les commerces de bouche",
        "Boulangers, bouchers, charcutiers, poissonniers, primeurs, épiceries, cavistes "
        "et artisans de l'alimentaire.",
    ),
    (
        "artisanat_production",
        "Artisanat et fabrication",
        "les artisans et fabricants",
        "Fabrication et réparation industrielle : bois, métal, textile, imprimerie, bijouterie, ameublement, "
        "métiers d'art et industrie.",
    ),
    (
        "automobile",
        "Automobile",
        "les professionnels de l'automobile",
        "Garages, carrosseries, concessions, stations-service, contrôle technique, location de voitures et "
        "auto-écoles.",
    ),
    (
        "batiment",
        "Bâtiment",
        "les artisans du bâtiment",
        "Maçonnerie, électricité, plomberie, chauffage, menuiserie, couverture, peinture, travaux publics.",
    ),
    (
        "beaute_bien_etre",
        "Beauté et bien-être",
        "les salons de coiffure et instituts de beauté",
        "Coiffure, soins de beauté, esthétique, spa et soins du corps.",
    ),
    (
        "commerce_detail",
        "Commerce de détail",
        "les commerçants",
        "Boutiques et magasins non alimentaires, marchés, vente à distance, tabac-presse, fleuristes.",
    ),
    (
        "commerce_gros",
        "Commerce de gros",
        "les grossistes et agents commerciaux",
        "Commerce interentreprises et intermédiaires du commerce.",
    ),
    (
        "culture_loisirs",
        "Culture, sport et loisirs",
        "les acteurs de la culture, du sport et des loisirs",
        "Spectacle, arts, édition, audiovisuel, photographie, sport, tourisme et loisirs.",
    ),
    (
        "hotellerie_restauration",
        "Hôtellerie-restauration",
        "les restaurateurs et hôteliers",
        "Restaurants, cafés, bars, restauration rapide, traiteurs, hôtels, gîtes et campings.",
    ),
    (
        "sante",
        "Santé et médico-social",
        "les professionnels de santé",
        "Médecins, infirmiers, kinésithérapeutes, dentistes, pharmacies, opticiens, vétérinaires, "
        "établissements médico-sociaux.",
    ),
    (
        "services_entreprises",
        "Services aux entreprises",
        "les prestataires de services aux entreprises",
        "Conseil, comptabilité, droit, informatique, communication, immobilier, nettoyage, sécurité, "
        "intérim, location de matériel.",
    ),
    (
        "services_particuliers",
        "Services aux particuliers",
        "les prestataires de services aux particuliers",
        "Réparation, cordonnerie, pressing, pompes funèbres, aide à domicile, garde d'enfants, paysagistes.",
    ),
    (
        "transport",
        "Transport et logistique",
        "les transporteurs",
        "Taxis, VTC, transport routier de marchandises et de voyageurs, déménagement, coursiers, "
        "entreposage.",
    ),
    (
        "autre",
        "Autres activités",
        "les entreprises",
        "Industries extractives, énergie, administration, associations et activités non classées ailleurs.",
    ),
]

# ------------------------------------------------------------------------------------------------------------
# NAF -> family. Keys are prefixes of the dotted code ("47", "47.3", "47.30", "47.30Z"); the longest matching
# prefix wins, so a division sets the default and groups, classes or sub-classes carve out the exceptions.
# ------------------------------------------------------------------------------------------------------------
FAMILY_RULES: dict[str, str] = {
    # A - agriculture, sylviculture, pêche
    "01": "agriculture",
    "02": "agriculture",
    "03": "agriculture",
    # B - extraction, D - énergie: rarely TPE, no trade phrase of their own
    "05": "autre",
    "06": "autre",
    "07": "autre",
    "08": "autre",
    "09": "autre",
    "35": "autre",
    # C - industrie. Food and drink first: small food makers are commerces de bouche.
    "10": "alimentation",
    "11": "alimentation",
    "12": "artisanat_production",
    "13": "artisanat_production",
    "14": "artisanat_production",
    "15": "artisanat_production",
    "16": "artisanat_production",
    "17": "artisanat_production",
    "18": "artisanat_production",
    "19": "artisanat_production",
    "20": "artisanat_production",
    "21": "artisanat_production",
    "22": "artisanat_production",
    "23": "artisanat_production",
    "24": "artisanat_production",
    "25": "artisanat_production",
    "26": "artisanat_production",
    "27": "artisanat_production",
    "28": "artisanat_production",
    "29": "artisanat_production",
    "30": "artisanat_production",
    "31": "artisanat_production",
    "32": "artisanat_production",
    "33": "artisanat_production",
    # E - eau, déchets: services to businesses and local authorities
    "36": "services_entreprises",
    "37": "services_entreprises",
    "38": "services_entreprises",
    "39": "services_entreprises",
    # F - construction
    "41": "batiment",
    "42": "batiment",
    "43": "batiment",
    "41.10": "services_entreprises",  # promotion immobilière: developers, not builders
    # G - commerce
    "45": "automobile",
    "46": "commerce_gros",
    "47": "commerce_detail",
    "47.11A": "alimentation",
    "47.11B": "alimentation",
    "47.11C": "alimentation",  # surgelés, épicerie, supérette
    "47.2": "alimentation",  # commerces de bouche en magasin spécialisé
    "47.26": "commerce_detail",  # tabac: buralistes are retailers, not food
    "47.30": "automobile",  # carburants: stations-service
    "47.73": "sante",
    "47.74": "sante",
    "47.78A": "sante",  # pharmacie, orthopédie, optique
    "47.81": "alimentation",  # alimentaire sur les marchés
    # H - transport
    "49": "transport",
    "50": "transport",
    "51": "transport",
    "52": "transport",
    "53": "transport",
    # I - hébergement et restauration
    "55": "hotellerie_restauration",
    "56": "hotellerie_restauration",
    # J - information et communication
    "58": "services_entreprises",
    "58.1": "culture_loisirs",  # édition de livres et presse
    "59": "culture_loisirs",
    "60": "culture_loisirs",
    "61": "services_entreprises",
    "62": "services_entreprises",
    "63": "services_entreprises",
    # K - finance, L - immobilier, M - activités spécialisées
    "64": "services_entreprises",
    "65": "services_entreprises",
    "66": "services_entreprises",
    "64.11": "autre",
    "64.20": "autre",
    "64.30": "autre",  # banque centrale, holdings, fonds
    "68": "services_entreprises",
    "69": "services_entreprises",
    "70": "services_entreprises",
    "71": "services_entreprises",
    "70.10": "autre",  # sièges sociaux
    "71.20A": "automobile",  # contrôle technique automobile
    "72": "services_entreprises",
    "73": "services_entreprises",
    "74": "services_entreprises",
    "74.20": "culture_loisirs",  # photographes
    "75": "sante",  # vétérinaires
    # N - services administratifs et de soutien
    "77": "services_entreprises",
    "77.11": "automobile",  # location de voitures
    "77.2": "services_particuliers",  # location de biens personnels
    "78": "services_entreprises",
    "79": "culture_loisirs",  # agences de voyages, tourisme
    "80": "services_entreprises",
    "81": "services_entreprises",
    "82": "services_entreprises",
    "81.30": "services_particuliers",  # paysagistes, mostly for households
    # O - administration, U - extraterritorial, T - ménages employeurs
    "84": "autre",
    "99": "autre",
    "98": "autre",
    "97": "services_particuliers",
    # P - enseignement: schools are not TPE; the private teaching trades are
    "85": "autre",
    "85.51": "culture_loisirs",
    "85.52": "culture_loisirs",  # sport, arts
    "85.53": "automobile",  # auto-écoles (branche des services de l'automobile)
    "85.59A": "services_entreprises",  # formation continue
    "85.59B": "services_particuliers",
    "85.60": "services_particuliers",
    # Q - santé et action sociale
    "86": "sante",
    "87": "sante",
    "88": "services_particuliers",  # aide à domicile, crèches
    # R - arts, spectacles, loisirs
    "90": "culture_loisirs",
    "91": "culture_loisirs",
    "92": "culture_loisirs",
    "93": "culture_loisirs",
    # S - autres services
    "94": "autre",
    "95": "services_particuliers",
    "96": "services_particuliers",
    "96.01A": "services_entreprises",  # blanchisserie de gros
    "96.02": "beaute_bien_etre",
    "96.04": "beaute_bien_etre",
}

# ------------------------------------------------------------------------------------------------------------
# NAF -> métier: the word an owner uses about themself, for the sub-classes most common among TPE. Same prefix
# rule as above. Codes not covered get a plain lowercase shortening of their NAF label (see default_metier).
# ------------------------------------------------------------------------------------------------------------
METIER_RULES: dict[str, str] = {
    # agriculture
    "01.11Z": "céréalier",
    "01.13Z": "maraîcher",
    "01.19Z": "horticulteur",
    "01.21Z": "viticulteur",
    "01.24Z": "arboriculteur",
    "01.25Z": "arboriculteur",
    "01.28Z": "producteur de plantes aromatiques",
    "01.30Z": "pépiniériste",
    "01.41Z": "éleveur laitier",
    "01.42Z": "éleveur bovin",
    "01.43Z": "éleveur équin",
    "01.45Z": "éleveur ovin et caprin",
    "01.46Z": "éleveur porcin",
    "01.47Z": "aviculteur",
    "01.49Z": "éleveur",
    "01.50Z": "agriculteur-éleveur",
    "01.61Z": "entrepreneur de travaux agricoles",
    "01.62Z": "prestataire agricole",
    "02.10Z": "sylviculteur",
    "02.20Z": "exploitant forestier",
    "02.40Z": "entrepreneur de travaux forestiers",
    "03.11Z": "pêcheur",
    "03.12Z": "pêcheur",
    "03.21Z": "conchyliculteur",
    "03.22Z": "pisciculteur",
    # alimentation
    "10.11Z": "boucher-abatteur",
    "10.13B": "charcutier",
    "10.20Z": "mareyeur",
    "10.39B": "confiturier",
    "10.51C": "fromager",
    "10.52Z": "glacier",
    "10.61A": "meunier",
    "10.71B": "terminal de cuisson",
    "10.71C": "boulanger-pâtissier",
    "10.71D": "pâtissier",
    "10.72Z": "biscuitier",
    "10.73Z": "fabricant de pâtes fraîches",
    "10.82Z": "chocolatier-confiseur",
    "10.83Z": "torréfacteur",
    "10.85Z": "fabricant de plats cuisinés",
    "11.01Z": "distillateur",
    "11.02A": "producteur de vins effervescents",
    "11.02B": "vigneron",
    "11.03Z": "cidrier",
    "11.05Z": "brasseur",
    "47.11A": "magasin de surgelés",
    "47.11B": "épicier",
    "47.11C": "gérant de supérette",
    "47.21Z": "primeur",
    "47.22Z": "boucher-charcutier",
    "47.23Z": "poissonnier",
    "47.24Z": "boulanger-pâtissier",
    "47.25Z": "caviste",
    "47.29Z": "épicier fin",
    "47.81Z": "marchand de marché",
    # hôtellerie-restauration
    "55.10Z": "hôtelier",
    "55.20Z": "loueur de gîtes et meublés",
    "55.30Z": "gérant de camping",
    "56.10A": "restaurateur",
    "56.10B": "gérant de cafétéria",
    "56.10C": "gérant de snack",
    "56.21Z": "traiteur",
    "56.29A": "restauration collective",
    "56.30Z": "cafetier",
    # beauté
    "96.02A": "coiffeur",
    "96.02B": "esthéticien",
    "96.04Z": "praticien du bien-être",
    # commerce de détail
    "47.19A": "grand magasin",
    "47.19B": "bazar",
    "47.26Z": "buraliste",
    "47.41Z": "revendeur informatique",
    "47.42Z": "vendeur de téléphonie",
    "47.43Z": "vendeur hi-fi et vidéo",
    "47.51Z": "marchand de tissus",
    "47.52A": "quincaillier",
    "47.52B": "magasin de bricolage",
    "47.53Z": "vendeur de revêtements de sol",
    "47.54Z": "vendeur d'électroménager",
    "47.59A": "marchand de meubles",
    "47.59B": "magasin de décoration",
    "47.61Z": "libraire",
    "47.62Z": "marchand de journaux",
    "47.63Z": "disquaire",
    "47.64Z": "vendeur d'articles de sport",
    "47.65Z": "vendeur de jouets",
    "47.71Z": "commerçant en prêt-à-porter",
    "47.72A": "chausseur",
    "47.72B": "maroquinier",
    "47.75Z": "parfumeur",
    "47.76Z": "fleuriste",
    "47.77Z": "bijoutier-horloger",
    "47.78B": "marchand de combustibles",
    "47.78C": "commerçant spécialisé",
    "47.79Z": "brocanteur",
    "47.82Z": "marchand forain",
    "47.89Z": "marchand forain",
    "47.91A": "vendeur en ligne",
    "47.91B": "vendeur en ligne",
    "47.99A": "vendeur à domicile",
    "47.99B": "vendeur ambulant",
    # santé
    "47.73Z": "pharmacien",
    "47.74Z": "orthopédiste",
    "47.78A": "opticien",
    "75.00Z": "vétérinaire",
    "86.21Z": "médecin généraliste",
    "86.22A": "radiologue",
    "86.22B": "chirurgien",
    "86.22C": "médecin spécialiste",
    "86.23Z": "chirurgien-dentiste",
    "86.90A": "ambulancier",
    "86.90B": "laboratoire d'analyses",
    "86.90D": "infirmier",
    "86.90E": "professionnel de la rééducation",
    "86.90F": "praticien de santé",
    "87.10A": "EHPAD",
    # automobile
    "45.11Z": "concessionnaire automobile",
    "45.19Z": "vendeur de véhicules",
    "45.20A": "garagiste",
    "45.20B": "garagiste poids lourds",
    "45.31Z": "grossiste en pièces automobiles",
    "45.32Z": "vendeur de pièces automobiles",
    "45.40Z": "mécanicien moto",
    "47.30Z": "gérant de station-service",
    "71.20A": "contrôleur technique",
    "77.11A": "loueur de voitures",
    "77.11B": "loueur de voitures",
    "85.53Z": "auto-école",
    # transport
    "49.31Z": "transporteur urbain",
    "49.32Z": "taxi",
    "49.39A": "transporteur de voyageurs",
    "49.39B": "autocariste",
    "49.41A": "transporteur routier",
    "49.41B": "transporteur-livreur",
    "49.41C": "loueur de camions avec chauffeur",
    "49.42Z": "déménageur",
    "52.10B": "entreposage",
    "52.21Z": "services aux transports",
    "52.29A": "messagerie express",
    "52.29B": "commissionnaire de transport",
    "53.20Z": "coursier",
    # bâtiment
    "41.20A": "constructeur de maisons individuelles",
    "41.20B": "entrepreneur du bâtiment",
    "42": "entreprise de travaux publics",
    "42.21Z": "canalisateur",
    "43.11Z": "démolisseur",
    "43.12A": "terrassier",
    "43.12B": "terrassier",
    "43.13Z": "foreur",
    "43.21A": "électricien",
    "43.21B": "électricien réseaux",
    "43.22A": "plombier-chauffagiste",
    "43.22B": "chauffagiste-climaticien",
    "43.29A": "poseur d'isolation",
    "43.29B": "installateur",
    "43.31Z": "plâtrier-plaquiste",
    "43.32A": "menuisier",
    "43.32B": "serrurier-métallier",
    "43.32C": "agenceur",
    "43.33Z": "carreleur",
    "43.34Z": "peintre en bâtiment",
    "43.39Z": "artisan des finitions",
    "43.91A": "charpentier",
    "43.91B": "couvreur",
    "43.99A": "étancheur",
    "43.99B": "monteur de structures métalliques",
    "43.99C": "maçon",
    "43.99D": "entrepreneur du bâtiment",
    "43.99E": "loueur d'engins avec conducteur",
    # artisanat et fabrication
    "13.92Z": "fabricant d'articles textiles",
    "14.13Z": "couturier",
    "14.19Z": "couturier",
    "15.12Z": "maroquinier-sellier",
    "15.20Z": "fabricant de chaussures",
    "16.10A": "scieur",
    "16.23Z": "menuisier d'atelier",
    "16.29Z": "artisan du bois",
    "18.12Z": "imprimeur",
    "18.13Z": "prépresse",
    "18.14Z": "relieur",
    "23.19Z": "verrier",
    "23.41Z": "céramiste",
    "23.70Z": "tailleur de pierre",
    "25.11Z": "métallier",
    "25.50A": "forgeron",
    "25.61Z": "traitement des métaux",
    "25.62A": "décolleteur",
    "25.62B": "mécanicien industriel",
    "25.71Z": "coutelier",
    "25.99B": "ferronnier",
    "26.52Z": "horloger",
    "31.01Z": "fabricant de meubles",
    "31.02Z": "cuisiniste",
    "31.09A": "fabricant de sièges",
    "31.09B": "ébéniste",
    "32.12Z": "bijoutier-joaillier",
    "32.13Z": "créateur de bijoux",
    "32.20Z": "luthier",
    "32.50A": "prothésiste dentaire",
    "32.50B": "lunetier",
    "32.99Z": "artisan créateur",
    "33.12Z": "réparateur de machines",
    "33.20D": "installateur d'équipements électriques",
    # services aux particuliers
    "81.30Z": "paysagiste",
    "88.10A": "aide à domicile",
    "88.91A": "gestionnaire de crèche",
    "85.59B": "enseignant indépendant",
    "85.60Z": "soutien scolaire",
    "95.11Z": "réparateur informatique",
    "95.12Z": "réparateur de téléphones",
    "95.21Z": "réparateur d'électronique",
    "95.22Z": "réparateur d'électroménager",
    "95.23Z": "cordonnier",
    "95.24Z": "tapissier",
    "95.25Z": "réparateur en horlogerie-bijouterie",
    "95.29Z": "réparateur",
    "96.01B": "pressing",
    "96.03Z": "pompes funèbres",
    "96.09Z": "services à la personne",
    "97.00Z": "particulier employeur",
    "77.21Z": "loueur d'articles de loisirs",
    "77.29Z": "loueur de biens",
    # services aux entreprises
    "41.10A": "promoteur immobilier",
    "41.10B": "promoteur immobilier",
    "41.10C": "promoteur immobilier",
    "58.29C": "éditeur de logiciels",
    "62.01Z": "développeur",
    "62.02A": "consultant informatique",
    "62.09Z": "informaticien",
    "63.11Z": "hébergeur de données",
    "63.12Z": "éditeur de site internet",
    "66.22Z": "agent d'assurances",
    "68.20A": "loueur de logements",
    "68.31Z": "agent immobilier",
    "68.32A": "administrateur de biens",
    "69.10Z": "juriste",
    "69.20Z": "expert-comptable",
    "70.21Z": "consultant en communication",
    "70.22Z": "consultant",
    "71.11Z": "architecte",
    "71.12A": "géomètre",
    "71.12B": "bureau d'études",
    "73.11Z": "agence de publicité",
    "73.20Z": "chargé d'études",
    "74.10Z": "designer",
    "74.30Z": "traducteur",
    "74.90A": "économiste de la construction",
    "77.32Z": "loueur d'engins",
    "77.39Z": "loueur de matériel",
    "78.20Z": "agence d'intérim",
    "80.10Z": "agent de sécurité",
    "81.21Z": "entreprise de propreté",
    "81.22Z": "laveur de vitres",
    "81.29A": "dératiseur",
    "82.11Z": "secrétariat indépendant",
    "82.30Z": "organisateur de salons",
    "85.59A": "formateur",
    "96.01A": "blanchisseur",
    # commerce de gros
    "46.1": "agent commercial",
    "46.31Z": "grossiste en fruits et légumes",
    "46.34Z": "grossiste en boissons",
    # culture, sport, loisirs
    "58.11Z": "éditeur",
    "59.11B": "vidéaste",
    "59.20Z": "producteur de musique",
    "74.20Z": "photographe",
    "79.11Z": "agent de voyages",
    "79.12Z": "voyagiste",
    "85.51Z": "éducateur sportif",
    "85.52Z": "professeur de musique ou de danse",
    "90.01Z": "artiste du spectacle",
    "90.02Z": "technicien du spectacle",
    "90.03A": "artiste plasticien",
    "90.03B": "auteur",
    "93.11Z": "gestionnaire d'équipement sportif",
    "93.12Z": "club de sport",
    "93.13Z": "gérant de salle de sport",
    "93.29Z": "loisirs",
}

NAF_SUBCLASS = re.compile(r"^\d{2}\.\d{2}[A-Z]$")

# Time zones of the départements outside metropolitan France (IANA names); metropolitan ones are Europe/Paris.
DEPARTEMENT_TIMEZONES: dict[str, str] = {
    "971": "America/Guadeloupe",
    "972": "America/Martinique",
    "973": "America/Cayenne",
    "974": "Indian/Reunion",
    "975": "America/Miquelon",
    "976": "Indian/Mayotte",
    "977": "America/St_Barthelemy",
    "978": "America/Marigot",
    "984": "Indian/Kerguelen",
    "986": "Pacific/Wallis",
    "987": "Pacific/Tahiti",
    "988": "Pacific/Noumea",
    "989": "Etc/GMT+8",  # Clipperton: uninhabited, no IANA zone of its own; UTC-8
}


def longest_prefix(rules: dict[str, str], code: str) -> str | None:
    """Value of the longest key of `rules` that prefixes `code`, or None."""
    best = None
    for prefix, value in rules.items():
        if code.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, value)
    return best[1] if best else None


def default_metier(label: str) -> str:
    """Plain lowercase shortening of a NAF label, for sub-classes without an explicit métier."""
    text = label.replace("’", "'")
    for noise in (" (commerce interentreprises)", " en magasin spécialisé", " n.c.a.", ", n.c.a."):
        text = text.replace(noise, "")
    text = re.sub(r"\s+", " ", text).strip().rstrip(",;")
    return text[0].lower() + text[1:]


def build_naf(naf_items: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Rows of naf.csv: every NAF sub-class with its family and métier."""
    known = {f[0] for f in FAMILIES}
    unknown = sorted({v for v in FAMILY_RULES.values() if v not in known})
    if unknown:
        raise ValueError(f"FAMILY_RULES uses undefined families: {unknown}")
    rows = []
    for item in naf_items:
        code = item["id"].strip()
        if not NAF_SUBCLASS.match(code):
            continue  # divisions, groups and classes: the sub-class carries everything we need
        family = longest_prefix(FAMILY_RULES, code)
        if family is None:
            raise ValueError(f"no family rule covers NAF {code} ({item['label']})")
        metier = longest_prefix(METIER_RULES, code) or default_metier(item["label"])
        label = re.sub(r"\s+", " ", item["label"]).strip()
        rows.append({"code": code, "label": label, "family": family, "metier": metier})
    rows.sort(key=lambda r: r["code"])
    if len({r["code"] for r in rows}) != len(rows):
        raise ValueError("duplicate NAF sub-classes in the source")
    return rows


def build_territories(
    communes: list[dict[str, Any]], epcis: list[dict[str, Any]], departements: list[dict[str, Any]],
    regions: list[dict[str, Any]],
) -> tuple[dict[str, list[dict[str, str]]], list[str]]:
    """Rows of communes.csv, epci.csv, departements.csv, regions.csv, and notes about what was skipped."""
    notes: list[str] = []
    epci_of: dict[str, str] = {}
    for epci in epcis:
        for member in epci["membres"]:
            if member["code"] in epci_of:
                raise ValueError(f"commune {member['code']} belongs to two EPCI")
            epci_of[member["code"]] = epci["code"]

    current = {c["code"]: c for c in communes if c["type"] == "commune-actuelle"}
    rows: list[dict[str, str]] = []
    no_dep = [c["code"] for c in communes if not c.get("departement")]
    if no_dep:
        notes.append(f"{len(no_dep)} entries without a département skipped: {', '.join(sorted(no_dep)[:20])}")
    same_code = 0
    for c in communes:
        if not c.get("departement"):
            continue
        kind = c["type"]
        if kind == "commune-actuelle":
            parent = ""
            owner = c
        elif kind == "arrondissement-municipal":
            parent = c["commune"]
        elif kind in ("commune-deleguee", "commune-associee"):
            parent = c["chefLieu"]
            if parent == c["code"]:
                # The commune nouvelle kept the code of this former commune: the code is already listed as the
                # current commune, and keeping both would make `code` ambiguous.
                same_code += 1
                continue
        else:
            notes.append(f"unknown type {kind!r} for {c['code']} skipped")
            continue
        if parent:
            found = current.get(parent)
            if found is None:
                notes.append(f"{kind} {c['code']} skipped: parent {parent} is not a current commune")
                continue
            owner = found
        rows.append(
            {
                "code": c["code"],
                "nom": c["nom"],
                "type": kind,
                "parent": parent,
                "departement": owner["departement"],
                "region": owner["region"],
                "epci": epci_of.get(owner["code"], ""),
            }
        )
    notes.append(
        f"{same_code} communes déléguées/associées sharing the code of their commune nouvelle not listed "
        "separately (the code resolves to the current commune)"
    )
    without_epci = sum(1 for r in rows if r["type"] == "commune-actuelle" and not r["epci"])
    notes.append(
        f"{without_epci} current communes belong to no EPCI (single-commune islands, overseas "
        "collectivités): epci left empty"
    )
    rows.sort(key=lambda r: r["code"])
    if len({r["code"] for r in rows}) != len(rows):
        raise ValueError("duplicate commune codes in communes.csv")

    epci_rows = sorted(
        ({"code": e["code"], "nom": e["nom"], "type": e["type"]} for e in epcis), key=lambda r: r["code"]
    )
    dep_rows = sorted(
        (
            {
                "code": d["code"],
                "nom": d["nom"],
                "region": d["region"],
                "timezone": DEPARTEMENT_TIMEZONES.get(d["code"], "Europe/Paris"),
            }
            for d in departements
        ),
        key=lambda r: r["code"],
    )
    overseas = [d["code"] for d in departements if d.get("zone", "metro") != "metro"]
    missing_tz = sorted(code for code in overseas if code not in DEPARTEMENT_TIMEZONES)
    if missing_tz:
        raise ValueError(f"no time zone for overseas départements {missing_tz}")
    region_rows = sorted(({"code": r["code"], "nom": r["nom"]} for r in regions), key=lambda r: r["code"])
    tables = {"communes": rows, "epci": epci_rows, "departements": dep_rows, "regions": region_rows}
    return tables, notes


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str]) -> None:
    """Write rows as UTF-8 CSV with `\\n` line endings (deterministic)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")


def npm_pack(package: str, workdir: Path) -> tuple[Path, str]:
    """Fetch `package` with `npm pack`, extract it; return (extracted package dir, version)."""
    result = subprocess.run(
        ["npm", "pack", package, "--json"], cwd=workdir, check=True, capture_output=True, text=True
    )
    info = json.loads(result.stdout)[0]
    target = workdir / info["filename"].removesuffix(".tgz")
    with tarfile.open(workdir / info["filename"]) as tar:
        tar.extractall(target, filter="data")
    return target / "package", info["version"]


def build(out_dir: Path = DATA_DIR) -> dict[str, int]:
    """Fetch both packages and rewrite every derived file in `out_dir`; return row counts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="declic-ref-") as tmp:
        naf_dir, naf_version = npm_pack(NAF_PACKAGE, Path(tmp))
        geo_dir, geo_version = npm_pack(TERRITORY_PACKAGE, Path(tmp))
        naf_items = json.loads((naf_dir / "index.json").read_text(encoding="utf-8"))
        data = geo_dir / "data"

        def load(name: str) -> Any:
            return json.loads((data / name).read_text(encoding="utf-8"))

        tables, notes = build_territories(
            load("communes.json"), load("epci.json"), load("departements.json"), load("regions.json")
        )

    naf_rows = build_naf(naf_items)
    family_rows = [
        dict(zip(("family", "label", "trade_phrase", "description"), f, strict=True))
        for f in sorted(FAMILIES)
    ]
    write_csv(out_dir / "families.csv", family_rows, ["family", "label", "trade_phrase", "description"])
    write_csv(out_dir / "naf.csv", naf_rows, ["code", "label", "family", "metier"])
    write_csv(
        out_dir / "communes.csv",
        tables["communes"],
        ["code", "nom", "type", "parent", "departement", "region", "epci"],
    )
    write_csv(out_dir / "epci.csv", tables["epci"], ["code", "nom", "type"])
    write_csv(out_dir / "departements.csv", tables["departements"], ["code", "nom", "region", "timezone"])
    write_csv(out_dir / "regions.csv", tables["regions"], ["code", "nom"])

    counts = {"families": len(family_rows), "naf": len(naf_rows), **{k: len(v) for k, v in tables.items()}}
    by_type: dict[str, int] = {}
    for row in tables["communes"]:
        by_type[row["type"]] = by_type.get(row["type"], 0) + 1
    explicit = sum(1 for r in naf_rows if longest_prefix(METIER_RULES, r["code"]))
    lines = [
        "# Sources of the segments reference data",
        "",
        "Generated by `python -m segments.data.build_reference`; do not edit the CSV files by hand.",
        "",
        "| package | version | licence | files |",
        "|---|---|---|---|",
        f"| `{NAF_PACKAGE}` | {naf_version} | Apache-2.0 | naf.csv "
        "(families.csv is authored in the script) |",
        f"| `{TERRITORY_PACKAGE}` | {geo_version} | MIT (code), Licence Ouverte (data) | "
        "communes.csv, epci.csv, departements.csv, regions.csv |",
        "",
        "## Counts",
        "",
        *(f"- {name}: {n}" for name, n in counts.items()),
        *(f"- communes.csv `{kind}`: {n}" for kind, n in sorted(by_type.items())),
        f"- NAF sub-classes with an explicit métier: {explicit} (others: shortened NAF label)",
        "",
        "## Notes",
        "",
        *(f"- {note}" for note in notes),
        "",
    ]
    (out_dir / "SOURCES.md").write_text("\n".join(lines), encoding="utf-8", newline="")
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DATA_DIR, help="output directory (default: segments/data)"
    )
    args = parser.parse_args(argv)
    counts = build(args.out)
    print(", ".join(f"{name}={n}" for name, n in counts.items()))


if __name__ == "__main__":
    main()
