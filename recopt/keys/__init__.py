"""Rule-based repartition keys, regional catalogues and brute-force key search."""
