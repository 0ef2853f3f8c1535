"""Measurements of solves and models.

* :mod:`~nodekit.measure.memory` — peak memory of a piece of work in a fresh process;
* :mod:`~nodekit.measure.gradients` — the gradient of a loss through a solve by four routes;
* :mod:`~nodekit.measure.timing` — forward/backward timings by route, CNF training steps;
* :mod:`~nodekit.measure.tolerance` — accuracy and NFE of a trained model across tolerances;
* :mod:`~nodekit.measure.stability` — Jacobians and their eigenvalues;
* :mod:`~nodekit.measure.end_time` — an ODE-net's accuracy, robustness and NFE at other end times;
* :mod:`~nodekit.measure.steady_states` — where the state goes after the end time (equilibrium or steady direction).

* :mod:`~nodekit.measure.equilibria` — equilibria of a field, Hurwitz and Gershgorin tests;
* :mod:`~nodekit.measure.masking` — the gradient-masking audit: per-example outcomes, worst case;
* :mod:`~nodekit.measure.stochastic` — closed forms of stochastic stability (GBM, Liu's bound) and of reversible Heun's instability.

Import the submodule you need (``from nodekit.measure.memory import peak_memory``).
"""
