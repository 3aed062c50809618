"""The catalog as people use it: finding products and reading their data (preview)."""
