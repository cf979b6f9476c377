"""Shipped reference data of `segments` (NAF taxonomy, territories) and the script that rebuilds it."""
