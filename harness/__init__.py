"""The pytest plugin behind the gate suites (:mod:`harness.plugin`), loaded by the root
``conftest.py``. Specs, results and the report live in :mod:`sam3spec.report`; measurement
helpers in :mod:`sam3spec.bench`. Not installed with the package: it runs from a checkout."""
