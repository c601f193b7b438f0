"""The ``mespot feedback`` subcommand's options (kept apart from cluster.cli.parser)."""

from __future__ import annotations

import argparse

from cluster.cli.argtypes import fraction
from pipeline.core.review_queue import STRATEGIES
from pipeline.learn.lstm import FINETUNE_EPOCHS


def add_feedback(sub: argparse._SubParsersAction) -> None:
    fb = sub.add_parser(
        "feedback", help="simulate annotators' verdicts fed back into training; plot the effect"
    )
    fb.add_argument("store", help="store with features and ground truth (from extract)")
    fb.add_argument("--labelled", type=int, default=2, help="subjects trained on with ground truth")
    fb.add_argument("--test", type=int, default=3, help="subjects only evaluated on")
    fb.add_argument("--rounds", type=int, default=4, help="rounds of review and retraining")
    fb.add_argument("--per-round", type=int, default=10, help="intervals reviewed per round")
    fb.add_argument("--seeds", type=int, default=3, help="model seeds 0..S-1")
    fb.add_argument("--epochs", type=int, default=50)
    fb.add_argument(
        "--threshold",
        type=float,
        default=0.3,
        help="micro spotting threshold for every fit (default 0.3; on the extent head's "
        "profile, else on window scores)",
    )
    fb.add_argument(
        "--learn-threshold",
        action="store_true",
        help="each fit learns its own threshold instead, as train does, on the out-of-fold "
        "scores of fold models that each hold one labelled subject out (3 fits a round "
        "with 2 labelled subjects; unsteady on so few)",
    )
    fb.add_argument(
        "--budget",
        type=fraction,
        default=None,
        metavar="FRACTION",
        help="also report each model at this review budget: the best micro spots that fit "
        "in this fraction of each test video (as spot --budget), the same footage for all",
    )
    fb.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="mixed",
        help="what the annotator reviews next: mixed (half the surest spots, a quarter "
        "near the threshold, a quarter of peaks below it) or top (highest score first)",
    )
    fb.add_argument("--miss-rate", type=float, default=0.1, help="share of movements missed")
    fb.add_argument("--unsure-rate", type=float, default=0.05, help="share of unsure answers")
    fb.add_argument("--no-extent", action="store_true", help="a yes marks no extent")
    fb.add_argument(
        "--window-spots",
        action="store_true",
        help="models without the extent head: window-long micro spots (greedy NMS)",
    )
    fb.add_argument(
        "--finetune-epochs",
        type=int,
        default=FINETUNE_EPOCHS,
        help="each round fine-tunes the last round's model for this many epochs "
        "(0: retrains from scratch each round)",
    )
    fb.add_argument("--no-progress", action="store_true")
