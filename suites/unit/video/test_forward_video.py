"""Student.forward_video: explicit fixed-size state, equal to forward() on the first frame, equal
to the ``track`` export wrapper on later frames, and no growth over a long stream."""

from __future__ import annotations

import copy

import torch

from sam3spec.export.wrappers import EncodeImage, Track
from sam3spec.models.text_encoder import Tokenizer
from sam3spec.models.video import resample_valid


def frames(count: int, side: int = 128, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(1, 3, side, side, generator=generator) for _ in range(count)]


def test_first_frame_equals_image_forward(video_student):
    ids = Tokenizer(video_student.config.text)(["red circle"])
    pixels = frames(1)[0]
    with torch.no_grad():
        video, state = video_student.forward_video(pixels, ids)
        image = video_student(pixels, ids)
    torch.testing.assert_close(video.pred_masks, image.pred_masks)
    assert state.valid.tolist() == [[False] * 7 + [True]]


def test_memory_changes_later_frames_and_gate_zero_does_not(video_student):
    ids = Tokenizer(video_student.config.text)(["red circle"])
    clip = frames(3)
    closed = copy.deepcopy(video_student)
    with torch.no_grad():
        closed.memory_attention.gate.zero_()
        state_open = state_closed = None
        for pixels in clip:
            open_out, state_open = video_student.forward_video(pixels, ids, state=state_open)
            closed_out, state_closed = closed.forward_video(pixels, ids, state=state_closed)
        image = video_student(clip[-1], ids)
    torch.testing.assert_close(closed_out.pred_logits, image.pred_logits)
    assert (open_out.pred_logits - image.pred_logits).abs().max() > 1e-4


def test_state_size_constant_and_old_state_untouched(video_student):
    ids = Tokenizer(video_student.config.text)(["blue square"])
    state, sizes = None, set()
    with torch.no_grad():
        for pixels in frames(12, side=64):
            previous = None if state is None else state.context.clone()
            _, new = video_student.forward_video(pixels, ids, state=state)
            if previous is not None:
                assert torch.equal(previous, state.context)  # the caller's state is not modified
            state = new
            sizes.add(tuple((k, tuple(v.shape)) for k, v in state.tensors().items()))
    assert len(sizes) == 1
    assert bool(state.valid.all())
    assert tuple(state.memory.shape) == (
        1,
        video_student.config.memory.num_latents,
        video_student.config.hidden,
    )


def test_matches_track_export_wrapper(video_student):
    """forward_video and the exported ``track`` method compute the same frame from the same buffer."""
    student = video_student
    ids = Tokenizer(student.config.text)(["green star"])
    clip = frames(4)
    track = Track(student, EncodeImage(student.image_encoder)).eval()
    with torch.no_grad():
        text_tokens, text_mask = student.text_encoder(ids)
        state = None
        for pixels in clip[:-1]:
            _, state = student.forward_video(pixels, ids, state=state)
        eager, _ = student.forward_video(clip[-1], ids, state=state)
        exported = track(
            clip[-1],
            text_tokens,
            text_mask,
            torch.full((1, 1, 2), 0.5),
            torch.full((1, 1), -1),
            torch.tensor([[[0.25, 0.25, 0.75, 0.75]]]),
            torch.full((1, 1), -1),
            state.context,
            state.valid,
        )
    torch.testing.assert_close(exported[0], eager.pred_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(exported[2], eager.pred_masks, atol=1e-4, rtol=1e-4)


def test_resample_valid_equals_resampler_on_valid_frames(video_student):
    from sam3spec.models.memory import context_tokens

    generator = torch.Generator().manual_seed(3)
    context = torch.randn(1, 8, 64, 4, 4, generator=generator)
    valid = torch.tensor([[False] * 5 + [True] * 3])
    with torch.no_grad():
        masked = resample_valid(video_student.memory_resampler, context, valid)
        direct = video_student.memory_resampler(context_tokens(context[:, 5:]))
    torch.testing.assert_close(masked, direct, atol=1e-5, rtol=1e-5)
