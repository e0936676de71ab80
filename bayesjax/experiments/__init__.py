"""Experiments built on the library: the method table, the cold-posterior sweep, the method comparison, figures.

* :mod:`.recipes`: the one method table (how each method is built and run, its defaults, its capabilities).
* :mod:`.ood`: shifted test inputs for out-of-distribution detection.
* :mod:`.validation`: the validation split and the Laplace prior precision tuned on it (or by the evidence).
* :mod:`.sweep`: temperature x seed sweeps (``bayesjax sweep``).
* :mod:`.compare`: every method on one data set (``bayesjax compare``).
* :mod:`.plots`: matplotlib figures.

Arrows point down: the experiments import the core library (the driver
included); the core imports no experiment.
"""
