"""Decomposition algorithms on models: loop enumeration (Dantzig-Wolfe columns), Benders."""
