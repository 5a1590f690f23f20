"""Object ids across frames: a small SORT-style tracker over per-frame instance masks.

Each frame's detections are assigned to tracks in two rounds, each an optimal one-to-one
assignment (scipy's Hungarian ``linear_sum_assignment``):

1. **overlap**: detections vs tracks seen in the previous frame, cost ``1 - mask IoU``; a pair
   needs IoU >= ``min_iou``. Objects move little between frames, so the IoU of the last mask is
   the strongest cue.
2. **re-appearance**: the detections left vs tracks not seen for 1..``max_lost`` frames (occluded,
   or out of the frame), cost = distance between the detection's box centre and the track's
   last centre moved on by its last velocity, in units of the image diagonal; a pair needs a
   distance <= ``max_jump``. This is what keeps an id through an occlusion or an exit and re-entry.

Detections still unassigned start new tracks (new ids, never reused); a track unseen for more than
``max_lost`` frames is dropped. Pure numpy, no model: unit tests drive it with synthetic masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class TrackerConfig:
    """Association thresholds.

    Attributes:
        min_iou: least mask IoU for an overlap match.
        max_lost: frames a track survives unseen (occlusion / leaving the frame).
        max_jump: largest centre distance (fraction of the image diagonal) for a re-appearance match.
    """

    min_iou: float = 0.2
    max_lost: int = 30
    max_jump: float = 0.35


@dataclass
class Track:
    """One object: its id, last mask and centre, velocity (px/frame), frames since last seen."""

    object_id: int
    mask: np.ndarray
    centre: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    lost: int = 0


def mask_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[N, H, W]`` x ``[M, H, W]`` bool -> ``[N, M]`` IoU (0 where both are empty)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    fa, fb = a.reshape(len(a), -1).astype(np.float32), b.reshape(len(b), -1).astype(np.float32)
    intersection = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1), 0.0)


def box_centres(boxes_xyxy: np.ndarray) -> np.ndarray:
    """``[N, 4]`` -> ``[N, 2]`` centres."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)


class IdTracker:
    """Assigns persistent ids to per-frame detections (see the module docstring)."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []
        self.next_id = 1

    def reset(self) -> None:
        self.tracks, self.next_id = [], 1

    def update(self, masks: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Ids of this frame's detections.

        Args:
            masks: ``[N, H, W]`` bool.
            boxes_xyxy: ``[N, 4]`` pixel boxes.

        Returns:
            ``[N]`` int64 ids (>= 1).
        """
        count = len(masks)
        ids = np.zeros(count, dtype=np.int64)
        centres = box_centres(boxes_xyxy)
        assigned: dict[int, int] = {}  # detection -> track index
        recent = [i for i, t in enumerate(self.tracks) if t.lost == 0]
        if count and recent:
            iou = mask_iou_matrix(masks, np.stack([self.tracks[i].mask for i in recent]))
            rows, cols = linear_sum_assignment(1 - iou)
            assigned.update(
                {
                    int(r): recent[c]
                    for r, c in zip(rows, cols, strict=True)
                    if iou[r, c] >= self.config.min_iou
                }
            )
        free = [d for d in range(count) if d not in assigned]
        lost = [i for i, t in enumerate(self.tracks) if t.lost > 0 and i not in assigned.values()]
        if free and lost and count:
            diagonal = float(np.hypot(*masks.shape[1:]))
            predicted = np.stack(
                [self.tracks[i].centre + self.tracks[i].velocity * self.tracks[i].lost for i in lost]
            )
            distance = np.linalg.norm(centres[free][:, None] - predicted[None], axis=-1) / diagonal
            rows, cols = linear_sum_assignment(distance)
            assigned.update(
                {
                    free[r]: lost[c]
                    for r, c in zip(rows, cols, strict=True)
                    if distance[r, c] <= self.config.max_jump
                }
            )
        seen = set()
        for detection in range(count):
            if detection in assigned:
                track = self.tracks[assigned[detection]]
                steps = track.lost + 1
                track.velocity = (centres[detection] - track.centre) / steps
                track.mask, track.centre, track.lost = masks[detection], centres[detection], 0
            else:
                track = Track(self.next_id, masks[detection], centres[detection])
                self.next_id += 1
                self.tracks.append(track)
            ids[detection] = track.object_id
            seen.add(track.object_id)
        for track in self.tracks:
            if track.object_id not in seen:
                track.lost += 1
        self.tracks = [t for t in self.tracks if t.lost <= self.config.max_lost]
        return ids
