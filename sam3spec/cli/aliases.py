"""Earlier spellings of commands, accepted but not listed in ``--help``.

``distill`` = ``train stage``, ``pipeline`` = ``train pipeline``, ``compare`` = ``eval compare``,
``visual-qa`` = ``eval visual-qa``, ``world generate`` = ``data generate``, ``video distill`` =
``train video``, ``video eval`` = ``eval video``, ``teacher train-world | eval-world |
calibrate-world`` = ``teacher train | eval | calibrate`` (registered by :mod:`sam3spec.cli.teacher`'s
parser as hidden subcommands).
"""

from __future__ import annotations

import argparse

from sam3spec.cli import data, eval, teacher, train

HIDDEN = argparse.SUPPRESS


def register(subparsers: argparse._SubParsersAction) -> None:
    teacher_commands = _subparsers_of(subparsers.choices["teacher"])
    train.add_stage_arguments(subparsers.add_parser("distill", help=HIDDEN))
    train.add_pipeline_arguments(subparsers.add_parser("pipeline", help=HIDDEN))
    eval.add_compare_arguments(subparsers.add_parser("compare", help=HIDDEN))
    eval.add_visual_qa_arguments(subparsers.add_parser("visual-qa", help=HIDDEN))
    world = subparsers.add_parser("world", help=HIDDEN).add_subparsers(dest="world_command", required=True)
    data.add_generate_arguments(world.add_parser("generate"))
    video = subparsers.add_parser("video", help=HIDDEN).add_subparsers(dest="video_command", required=True)
    train.add_video_arguments(video.add_parser("distill"))
    eval.add_video_arguments(video.add_parser("eval"))
    teacher.add_train_arguments(teacher_commands.add_parser("train-world", help=HIDDEN))
    teacher.add_eval_arguments(teacher_commands.add_parser("eval-world", help=HIDDEN))
    teacher.add_calibrate_arguments(teacher_commands.add_parser("calibrate-world", help=HIDDEN))
    for action in (subparsers, teacher_commands):
        _hide_suppressed(action)


def _subparsers_of(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))


def _hide_suppressed(subparsers: argparse._SubParsersAction) -> None:
    # argparse lists every sub-parser in the help, even one whose help is SUPPRESS (Python <= 3.12):
    # drop those from the list it prints; they still parse.
    subparsers._choices_actions = [a for a in subparsers._choices_actions if a.help != HIDDEN]
