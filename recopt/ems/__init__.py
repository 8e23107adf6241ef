"""Stage 1 of Mustika et al.'s two-stage method: energy management strategies (EMS).

Source: A. D. Mustika, R. Rigo-Mariani, V. Debusschere, A. Pachurka, "A two-stage
management strategy for the optimal operation and billing in an energy community with
collective self-consumption", Applied Energy 310 (2022) 118484,
doi:10.1016/j.apenergy.2021.118484, §3.1. Model card: ``models/EMS1-EMS4.md``.

* :mod:`recopt.ems.storage` -- the storage data of an instance as arrays (kW, kWh, %);
* :mod:`recopt.ems.rules` -- EMS1 (Algorithm 1) and EMS2 (Algorithm 2), pure NumPy,
  vectorised over scenarios and members (loop over time only);
* :mod:`recopt.ems.stage2` -- a Stage 1 schedule as a Stage 2 instance (meter flows as
  consumption / production), Mustika's grid-based SCR (29) and SSR (31), and the
  checks C1-C6 of the card.

The LPs EMS3 / EMS4 are Pyomo models in :mod:`recopt.models.ems`.
"""
