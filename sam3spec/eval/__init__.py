"""Evaluation: metrics as pure functions (:mod:`sam3spec.eval.metrics`)."""
