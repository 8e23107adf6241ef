"""Instance generation.

* :mod:`recopt.generate.chasseray`: the Chasseray et al. test protocol (actors, BDEW
  consumption, pvlib PV, French tariffs, uniform/clustered geography, scenarios) and
  its presets; CLI ``python -m recopt.generate``;
* :mod:`recopt.generate.synthetic`: simple synthetic communities (benchmarks, tests);
* :mod:`recopt.generate.profiles`: the numpy-only profile building blocks of the
  shipped instances.
"""
