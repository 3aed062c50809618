"""Data contracts (ODCS v3): every product's contract, and a contract read back into a spec.

`facts` gathers what the portal knows about a product; `odcs` writes those facts as an Open
Data Contract Standard document and reads an uploaded one back; `quality` turns dbt's tests
into ODCS quality rules and back.
"""
