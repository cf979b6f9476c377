"""Shipped reference data of the segments package (NAF taxonomy, territories) and the script that rebuilds it."""
