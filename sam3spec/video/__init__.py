"""Video: streaming prediction with a fixed-size memory, and training that memory.

See docs/VIDEO.md. Entry points: :class:`~sam3spec.video.predictor.VideoPredictor`; the memory
stage :class:`~sam3spec.video.stage.VideoStage` (its task :mod:`sam3spec.video.task`), run by the
one trainer, :func:`sam3spec.distill.distill`; J&F with and without memory is in
:mod:`sam3spec.eval.video`; the commands are ``sam3spec track``, ``train video``, ``eval video``.
"""
