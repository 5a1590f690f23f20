"""Video: streaming prediction with a fixed-size memory, and training that memory.

See docs/VIDEO.md. Entry points: :class:`~sam3spec.video.predictor.VideoPredictor`,
:func:`~sam3spec.video.train.distill_video`; J&F with and without memory is in
:mod:`sam3spec.eval.video`; the commands are ``sam3spec track``, ``train video``, ``eval video``.
"""
