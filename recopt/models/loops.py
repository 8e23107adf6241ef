"""Chasseray loop-design MILPs (SLCpct, MLCpct, MLCol). Filled by the loop-design issue."""
