"""Video: streaming prediction with a fixed-size memory, memory distillation, J&F evaluation.

See docs/VIDEO.md. Entry points: :class:`~sam3spec.video.predictor.VideoPredictor`,
:func:`~sam3spec.video.train.distill_video`, :func:`~sam3spec.video.evaluate.evaluate_memory`,
``sam3spec track`` / ``sam3spec video distill|eval`` (:mod:`sam3spec.video.commands`).
"""
