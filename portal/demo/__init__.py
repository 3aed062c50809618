"""Demo data for the embedded default: seeded, reproducible silver tables the dbt project builds on."""
