"""Mustika KoR8-KoR10 fairness LPs. Filled by the optimised-keys issue."""
