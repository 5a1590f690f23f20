"""Evaluation: metrics, the SA-Co / SA-V evaluators, and scoring models with them.

The top of the product's packages: it may import every other one; none imports it.

* :mod:`sam3spec.eval.saco` / :mod:`sam3spec.eval.saco_files` / :mod:`sam3spec.eval.saco_truth`:
  SA-Co cgF1, pmF1, IL_MCC (Gold oracle, crowd, box variant) with SAM 3's evaluator semantics,
  its numbers on every input it accepts; :mod:`sam3spec.eval.vos`: SA-V J&F.
* :mod:`sam3spec.eval.metrics`: the minimal per-pair metrics (matched mIoU, presence F1, cgF1).
* :mod:`sam3spec.eval.student_view`: the student behind the teacher protocol (one evaluator for both).
* :mod:`sam3spec.eval.model_eval`: load a student, teacher or ``.pte``; run it over an SA-Co split, score it.
* :mod:`sam3spec.eval.predictions`: a model's answers in the image's pixels, written as SAM 3's dumps.
* :mod:`sam3spec.eval.gold`: every SA-Co/Gold subset of a folder as released; SAM 3's table.
* :mod:`sam3spec.eval.sav_vos`: J&F on an SA-V val / test folder, each masklet prompted by its first mask.
* :mod:`sam3spec.eval.predictors`: score any two-call predictor (eager, quantized, ``.pte``).
* :mod:`sam3spec.eval.quant_compare`: float vs every quantization recipe, one table.
* :mod:`sam3spec.eval.video`: J&F of the video predictor with and without memory.
* :mod:`sam3spec.eval.visual_qa`: an HTML page of teacher vs student masks.
"""
