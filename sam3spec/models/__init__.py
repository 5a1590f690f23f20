"""The student model: one concept per module, assembled in :mod:`sam3spec.models.student`.

Importing this package imports only torch; timm and open_clip are imported when a part is built.
"""

from sam3spec.models.build import build_student
from sam3spec.models.image_encoder import ImageFeatures
from sam3spec.models.outputs import Intermediates, Sam3Outputs
from sam3spec.models.student import COMPONENTS, Student
from sam3spec.models.text_encoder import Tokenizer
from sam3spec.models.weights import LoadReport

__all__ = [
    "COMPONENTS",
    "ImageFeatures",
    "Intermediates",
    "LoadReport",
    "Sam3Outputs",
    "Student",
    "Tokenizer",
    "build_student",
]
