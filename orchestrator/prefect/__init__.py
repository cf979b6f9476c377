"""Prefect glue: flows, deployments (`serve`), warm pools. Thin wrappers over `orchestrator.app` services."""
