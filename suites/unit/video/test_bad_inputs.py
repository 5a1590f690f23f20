"""Bad input: a zero-frame video (clear error), a corrupt frame mid-video (skipped with a warning,
frame numbers kept), a prompt that never matches (empty results, no crash), misuse of the API."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from sam3spec.data.video_io import encode_mp4, write_empty_mp4
from sam3spec.video.frames import EmptyVideoError, read_video
from sam3spec.video.predictor import VideoPredictor


def frames(count: int, side: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, side, side, 3), dtype=np.uint8)


def test_zero_frame_mp4_is_a_clear_error(tmp_path, video_student):
    path = tmp_path / "empty.mp4"
    write_empty_mp4(path)
    predictor = VideoPredictor(video_student)
    predictor.start(text="red circle")
    with pytest.raises(EmptyVideoError, match="empty.mp4.*zero frames"):
        list(predictor.propagate(path))


def test_empty_frame_folder_and_missing_file(tmp_path):
    (tmp_path / "frames").mkdir()
    with pytest.raises(EmptyVideoError, match="no frames"):
        list(read_video(tmp_path / "frames"))
    with pytest.raises(FileNotFoundError, match="nothing.mp4"):
        list(read_video(tmp_path / "nothing.mp4"))


def test_corrupt_jpeg_mid_video_is_skipped(tmp_path, video_student):
    folder = tmp_path / "clip"
    folder.mkdir()
    for index, image in enumerate(frames(5)):
        Image.fromarray(image).save(folder / f"{index:05d}.jpg")
    (folder / "00002.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    predictor = VideoPredictor(video_student, threshold=0.0)
    predictor.start(text="red circle")
    with pytest.warns(UserWarning, match="00002.jpg: corrupt frame 2 skipped"):
        results = list(predictor.propagate(folder))
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    assert [r.skipped for r in results] == [False, False, True, False, False]
    assert all(len(r.masks) > 0 for r in results if not r.skipped)  # threshold 0 keeps every query


def test_corrupt_mp4_packet_mid_video_is_skipped(tmp_path):
    import av

    path = tmp_path / "clip.mp4"
    encode_mp4(path, frames(12))
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    position, size = packets[6]
    data[position : position + size] = (
        np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes()
    )
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decoded = list(read_video(path))
    assert len(decoded) == 12
    assert sum(frame.image is None for frame in decoded) >= 1
    assert any("corrupt frame" in str(w.message) for w in caught)


def test_never_matching_prompt_gives_empty_results(tmp_path, video_student):
    predictor = VideoPredictor(video_student)  # random weights: no score reaches 0.5
    predictor.start(text="purple hexagon")
    for image in frames(3, side=48):
        result = predictor.step(image)
        assert result.masks.shape == (0, 48, 48) and result.object_ids.shape == (0,)
        assert result.boxes_xyxy.shape == (0, 4) and not result.skipped


def test_api_misuse(video_student):
    predictor = VideoPredictor(video_student)
    with pytest.raises(RuntimeError, match="start"):
        predictor.step(frames(1)[0])
    with pytest.raises(ValueError, match="empty prompt"):
        predictor.start(text="  ")
    with pytest.raises(ValueError, match="boxes"):
        predictor.start(boxes=[[1, 2, 3]])
    with pytest.raises(ValueError, match="memory_every"):
        VideoPredictor(video_student, memory_every=0)
