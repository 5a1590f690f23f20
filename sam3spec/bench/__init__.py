"""Measurement helpers and the benchmark entry points.

* :mod:`sam3spec.bench.measure`: latency (:func:`~sam3spec.bench.measure.time_callable`), peak and
  current RSS, file sizes, and :func:`~sam3spec.bench.measure.run_isolated` (one workload per fresh
  process, so its peak RSS is its own). Standard library only: any layer may import it.
* Entry points, each ``python -m sam3spec.bench.<name>`` printing JSON:
  :mod:`~sam3spec.bench.image` (eager image path of a preset),
  :mod:`~sam3spec.bench.pte` (``sam3spec bench --pte``) with its per-process
  :mod:`~sam3spec.bench.pte_worker`, :mod:`~sam3spec.bench.training` (Phase 1 training
  throughput), :mod:`~sam3spec.bench.video` (streaming RSS and per-frame cost),
  :mod:`~sam3spec.bench.device` (the GPU readiness check behind ``scripts/device_check.sh``, with
  its JSON record :mod:`~sam3spec.bench.device_record`).

The entry points import the model, export and video code inside their functions: nothing in
``sam3spec`` imports them, so they sit outside the layering the measurement helpers belong to.
Importing this package imports nothing else.
"""
