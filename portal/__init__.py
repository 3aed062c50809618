"""Asgard: a self-service data product portal over dbt."""

__version__ = "0.1.0"
