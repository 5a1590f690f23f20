"""Evaluation.

* :mod:`sam3spec.eval.saco` / :mod:`sam3spec.eval.saco_files`: SA-Co cgF1, pmF1, IL_MCC (Gold oracle,
  crowd, box variant) with SAM 3's evaluator semantics; :mod:`sam3spec.eval.vos`: SA-V J&F.
* :mod:`sam3spec.eval.metrics`: the minimal per-pair metrics the teacher / distillation gates use.
* :mod:`sam3spec.eval.model_eval`: run a student or teacher over an eval split and score it.
* CLI (:mod:`sam3spec.eval.commands`): ``eval saco|vos|model``, ``prune``, ``visual-qa``.
"""
