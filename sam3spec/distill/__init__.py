"""Distillation: SAM 3 (or any :class:`~sam3spec.teacher.protocol.Teacher`) into the student.

Modules, in reading order: ``stages`` (what a stage is, as data), ``matcher`` (teacher vs
student queries), ``losses`` (one small pure function per term), ``adapters`` (teacher/student
feature geometry), ``targets`` (teacher or ground-truth targets on the student's grid), ``task``
(the objective: matching + weighted sum), ``data`` (views, order, inputs), ``cache`` (teacher
targets once per run), ``sources`` (where targets come from, the run key), ``state``
(checkpoints), ``runtime`` (device, precision, processes), ``options`` (where a run reads and
writes), ``tasks`` (what differs between stages: image distillation here, the video memory and
QAT in :mod:`sam3spec.video` / :mod:`sam3spec.quant`), ``run`` (one run's state), ``trainer`` (the
one loop), ``registry`` (stages by name). The concept world's stages and its main job are in
:mod:`sam3spec.world`.

    from sam3spec.distill import get_stage, distill, RunOptions
    distill(get_stage("phase1"), RunOptions(data="/data/sa1b", out="runs/phase1", teacher="/models/sam3"))
"""

from sam3spec.distill.options import RunOptions
from sam3spec.distill.registry import STAGES, get_stage
from sam3spec.distill.stages import PHASE1, PHASE2, LossWeights, StageConfig
from sam3spec.distill.trainer import NonFiniteLossError, distill

__all__ = [
    "PHASE1",
    "PHASE2",
    "STAGES",
    "LossWeights",
    "NonFiniteLossError",
    "RunOptions",
    "StageConfig",
    "distill",
    "get_stage",
]
