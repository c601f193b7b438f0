"""The feedback simulation's rules, no I/O: a simulated annotator, the subject split, summaries.

- Verdicts become window labels in ``pipeline.core.verdicts.labels_from_verdicts``, as for
  ``mespot train --verdicts``.
- The simulation (``mespot feedback``, cluster.run.feedback) splits a store's subjects into
  *labelled* (ground truth used), *feedback* (ground truth hidden; a simulated annotator
  reviews the model's spotted intervals) and *test* (ground truth used only to evaluate).
  The annotator reviews what a review queue offers (``pipeline.core.review_queue``, by
  ``FeedbackConfig.strategy``; ``top`` is the plain score order)
  and answers from the hidden ground truth (:func:`annotate`): ``yes`` when the interval
  is a true positive under the paper's coverage rule (``metrics.RULES["coverage"]``: it
  covers >= 80% of a ground-truth movement), else ``no``. As a person would
  (:func:`answer`), it marks a yes's extent (the movement's onset and offset), misses a
  share of the movements (``miss_rate``: no where yes is right) and is unsure of a share of
  the intervals (``unsure_rate``).
- :func:`summarise`, :func:`curve_markdown` and :func:`plot_curve` turn the per-seed rows
  into mean ± std per round, a table and a figure.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core import configs
from pipeline.core.intervals import Interval
from pipeline.core.metrics import RULES
from pipeline.core.review_queue import STRATEGIES
from pipeline.learn.lstm import CLASS_WEIGHTS, FINETUNE_EPOCHS, ModelConfig

#: Who signs the simulated verdicts.
ANNOTATOR = "simulated"
#: The control row: trained as many epochs as the last round, on the labelled subjects only.
CONTROL = "no verdicts, as long"
#: The rule the simulated annotator answers by (the paper's, the one that labels windows).
ANSWER_RULE = "coverage"

VideoKey = tuple[str, str, str]


# --- the simulated annotator ----------------------------------------------------------------


def annotate(interval: Interval, truth: Iterable[Interval]) -> str:
    """The simulated annotator's answer: ``yes`` when ``interval`` is a true positive for a
    ground-truth movement under the coverage rule (covers >= 80% of it), else ``no``."""
    rule = RULES[ANSWER_RULE]
    return "yes" if any(rule.accepts(interval, gt) for gt in truth) else "no"


@dataclass(frozen=True)
class Answer:
    """The simulated annotator's verdict and, on a yes, the movement's extent (or None)."""

    verdict: str
    extent: Interval | None = None


def answer(
    interval: Interval,
    truth: Iterable[Interval],
    rng: np.random.Generator,
    *,
    miss_rate: float = 0.0,
    unsure_rate: float = 0.0,
    mark_extent: bool = True,
) -> Answer:
    """An imperfect annotator's answer: ``unsure`` with probability ``unsure_rate``; else
    :func:`annotate`'s, turned from yes to no with probability ``miss_rate`` (a missed
    movement); a yes marks, with ``mark_extent``, the movement it covers (the one it covers
    most; ties: the earliest). Two draws of ``rng`` per answer, whatever the answer."""
    unsure, miss = rng.random(2)
    if unsure < unsure_rate:
        return Answer("unsure")
    gts = list(truth)
    if annotate(interval, gts) == "no" or miss < miss_rate:
        return Answer("no")
    if not mark_extent:
        return Answer("yes")
    rule = RULES[ANSWER_RULE]
    covered = [gt for gt in gts if rule.accepts(interval, gt)]
    best = max(covered, key=lambda gt: (interval.coverage_of(gt), -gt.start))
    return Answer("yes", best)


def confirmed(
    truth: Mapping[VideoKey, Sequence[Interval]], yes: Mapping[VideoKey, Iterable[Interval]]
) -> tuple[int, int]:
    """(ground-truth intervals an accepted interval covers under the coverage rule, total)."""
    rule = RULES[ANSWER_RULE]
    hit = total = 0
    for key, gts in truth.items():
        mine = list(yes.get(key, ()))
        total += len(gts)
        hit += sum(any(rule.accepts(iv, gt) for iv in mine) for gt in gts)
    return hit, total


# --- configuration and subject split --------------------------------------------------------


@dataclass(frozen=True)
class FeedbackConfig:
    """A feedback simulation: the subject split, the review budget and the training recipe.

    Subjects with ground truth are sorted; the first ``labelled`` keep their ground truth,
    the last ``test`` are only evaluated on, the ones between are reviewed. Each of
    ``seeds`` runs (model seeds 0, 1, ...) trains on the labelled subjects, then for
    ``rounds`` rounds reviews ``per_round`` intervals spotted at its threshold (``threshold``,
    or learnt on folds of the labelled subjects) and retrains.
    """

    labelled: int = 2
    test: int = 3
    rounds: int = 4
    per_round: int = 10
    seeds: int = 3
    epochs: int = 50
    # micro spots at this (on the extent head's profile, else on window scores; mespot
    # train learns 0.17-0.35 there); None: each fit learns its own on folds of the
    # labelled subjects, as mespot train does (unsteady on few labelled subjects)
    threshold: float | None = 0.3
    class_weight: str = "balanced"
    with_magnitude: bool = True
    strategy: str = "mixed"  # pipeline.core.review_queue.STRATEGIES
    miss_rate: float = 0.1  # a movement the annotator misses: no where yes is right
    unsure_rate: float = 0.05  # an interval the annotator is unsure of
    mark_extent: bool = True  # a yes marks the movement's onset and offset
    finetune_epochs: int = FINETUNE_EPOCHS  # > 0: each round fine-tunes the last; 0: scratch
    extent: bool = True  # models with the extent head, micro spots on its profile (shipped)
    # also figures at a review budget: the best micro spots that fit in this fraction of
    # each test video (as `mespot spot --budget`), the same footage for every model
    budget: float | None = None

    def __post_init__(self) -> None:
        for name in ("labelled", "test", "rounds", "per_round", "seeds", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {list(STRATEGIES)}, got {self.strategy!r}")
        if isinstance(self.finetune_epochs, bool) or not isinstance(self.finetune_epochs, int):
            raise ValueError(f"finetune_epochs must be an integer, got {self.finetune_epochs!r}")
        if self.finetune_epochs < 0:
            raise ValueError(f"finetune_epochs must be >= 0, got {self.finetune_epochs}")
        for name in ("miss_rate", "unsure_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.budget is not None and not 0.0 < self.budget <= 1.0:
            raise ValueError(f"budget must be in (0, 1], got {self.budget}")
        if not isinstance(self.extent, bool):
            raise ValueError(f"extent must be true or false, got {self.extent!r}")
        if self.class_weight not in CLASS_WEIGHTS:
            raise ValueError(f"class_weight must be one of {CLASS_WEIGHTS}")

    def model_config(self, seed: int) -> ModelConfig:
        return ModelConfig(
            epochs=self.epochs,
            class_weight=self.class_weight,
            with_magnitude=self.with_magnitude,
            seed=seed,
            extent=self.extent,  # timestep labels: ground truth's, or a yes's extent
        )

    def to_dict(self) -> dict[str, Any]:
        return configs.to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "") -> FeedbackConfig:
        return configs.from_dict(cls, d, source=source)


@dataclass(frozen=True)
class Split:
    labelled: tuple[str, ...]
    feedback: tuple[str, ...]
    test: tuple[str, ...]

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in asdict(self).items()}


def split_subjects(subjects: Iterable[str], labelled: int, test: int) -> Split:
    """Sorted subjects: the first ``labelled``, the last ``test``, feedback in between."""
    names = sorted(set(subjects))
    if labelled < 1 or test < 1:
        raise ValueError(f"need >= 1 labelled and >= 1 test subject, got {labelled}, {test}")
    if len(names) < labelled + test + 1:
        raise ValueError(
            f"{len(names)} subjects with ground truth ({', '.join(names) or 'none'}) are too few "
            f"for {labelled} labelled + {test} test + at least 1 feedback subject"
        )
    return Split(
        tuple(names[:labelled]), tuple(names[labelled : len(names) - test]), tuple(names[-test:])
    )


# --- summaries ------------------------------------------------------------------------------

#: Figures averaged over seeds, as paths into a row (see cluster.run.feedback).
FIGURES = (
    ("reviewed",),
    ("yes",),
    ("confirmed",),
    ("auc",),
    ("threshold",),
    ("footage",),
    *((rule, m) for rule in RULES for m in ("recall", "precision", "f1")),
    # at the review budget (FeedbackConfig.budget), where there is one
    ("at_budget", "footage"),
    *(("at_budget", rule, m) for rule in RULES for m in ("recall", "precision", "f1")),
)


def _get(row: Mapping, path: tuple[str, ...]):
    """The figure at ``path`` in ``row``; None where the row has none (e.g. a row written
    before the figure was recorded)."""
    for p in path:
        if not isinstance(row, Mapping) or p not in row:
            return None
        row = row[p]
    return row


def mean_std(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """Mean and sample standard deviation (0 for one value) of the values that are not None."""
    v = np.asarray([x for x in values if x is not None], np.float64)
    if not len(v):
        return {"mean": None, "std": None, "n": 0}
    std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return {"mean": float(v.mean()), "std": std, "n": len(v)}


def summarise(rows: Sequence[Mapping]) -> list[dict]:
    """Per round: mean ± std over the seeds that reached it of every figure in FIGURES."""
    out = []
    for r in sorted({row["round"] for row in rows}):
        mine = [row for row in rows if row["round"] == r]
        entry: dict[str, Any] = {"round": r, "seeds": len(mine)}
        for path in FIGURES:
            entry[".".join(path)] = mean_std(_get(row, path) for row in mine)
        out.append(entry)
    return out


def summarise_reference(rows: Sequence[Mapping]) -> dict:
    return {
        ".".join(path): mean_std(_get(row, path) for row in rows)
        for path in FIGURES
        if path[0] not in ("reviewed", "yes", "confirmed")  # review figures: rounds only
    }


def _pm(stat: Mapping, digits: int = 3) -> str:
    if stat["mean"] is None:
        return "-"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def curve_markdown(
    summary: Sequence[Mapping], reference: Mapping, control: Mapping | None = None
) -> list[str]:
    """One table row per round (mean ± std over seeds), then the full-ground-truth row and
    (``control``) the row of the model trained as long without verdicts."""
    rules = list(RULES)
    head = ["round", "seeds", "reviewed", "yes", "GT confirmed"]
    head += [f"{m} ({rule})" for rule in rules for m in ("recall", "precision", "F1")]
    head += ["AUC", "threshold"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in summary:
        cells = [str(e["round"]), str(e["seeds"])]
        cells += [_pm(e["reviewed"], 1), _pm(e["yes"], 1), _pm(e["confirmed"])]
        cells += [_pm(e[f"{rule}.{m}"]) for rule in rules for m in ("recall", "precision", "f1")]
        cells += [_pm(e["auc"]), _pm(e["threshold"])]
        out.append("| " + " | ".join(cells) + " |")
    for name, ref in ((CONTROL, control), ("all labelled", reference)):
        if ref:
            cells = [name, str(ref["auc"]["n"]), "-", "-", "-"]
            cells += [_pm(ref[f"{r}.{m}"]) for r in rules for m in ("recall", "precision", "f1")]
            cells += [_pm(ref["auc"]), _pm(ref["threshold"])]
            out.append("| " + " | ".join(cells) + " |")
    return out


def budget_markdown(
    summary: Sequence[Mapping], reference: Mapping, control: Mapping | None = None
) -> list[str]:
    """The table of the figures at the review budget (``at_budget``): one row per round,
    then the control and the reference, as :func:`curve_markdown`; [] without them."""
    if not summary or summary[0]["at_budget.footage"]["mean"] is None:
        return []
    rules = list(RULES)
    head = ["round", "reviewed", "footage"]
    head += [f"{m} ({rule})" for rule in rules for m in ("recall", "precision", "F1")]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    metrics = ("recall", "precision", "f1")
    rows = [(str(e["round"]), _pm(e["reviewed"], 1), e) for e in summary]
    rows += [(name, "-", ref) for name, ref in ((CONTROL, control), ("all labelled", reference))]
    for name, reviewed, e in rows:
        if e:
            cells = [name, reviewed, _pm(e["at_budget.footage"])]
            cells += [_pm(e[f"at_budget.{r}.{m}"]) for r in rules for m in metrics]
            out.append("| " + " | ".join(cells) + " |")
    return out


def plot_curve(
    summary: Sequence[Mapping],
    reference: Mapping,
    path: str | PathLike[str],
    title: str = "Annotator feedback",
    control: Mapping | None = None,
    budget: float | None = None,
) -> Path:
    """Recall and precision on the test subjects vs intervals reviewed, one panel per rule
    (and, with a ``budget`` whose figures the summary holds, a second row of panels: at
    that review budget).

    Lines are the mean over seeds, bands mean ± std; dashed lines the reference trained
    with the feedback subjects' full ground truth, dotted ones (``control``) the model
    trained as long without verdicts.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rules = list(RULES)
    panels = [("", "at the threshold")]
    if budget is not None and summary and summary[0]["at_budget.footage"]["mean"] is not None:
        panels.append(("at_budget.", f"at a review budget of {budget:g}"))
    fig = Figure(figsize=(5 * len(rules), 4 * len(panels)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    x = np.asarray([e["reviewed"]["mean"] for e in summary], np.float64)
    for i, ((at, where), rule) in enumerate(itertools.product(panels, rules)):
        ax = fig.add_subplot(len(panels), len(rules), i + 1)
        for metric, color in (("recall", "tab:blue"), ("precision", "tab:orange")):
            stats = [e[f"{at}{rule}.{metric}"] for e in summary]
            m = np.asarray([s["mean"] for s in stats], np.float64)
            sd = np.asarray([s["std"] for s in stats], np.float64)
            ax.plot(x, m, marker="o", color=color, label=metric)
            ax.fill_between(x, m - sd, m + sd, color=color, alpha=0.2, linewidth=0)
            for ref, style, what in ((reference, "--", "all GT"), (control, ":", "no verdicts")):
                level = ref.get(f"{at}{rule}.{metric}", {}).get("mean") if ref else None
                if level is not None:
                    ax.axhline(level, color=color, linestyle=style, linewidth=1,
                               label=f"{metric}, {what}")  # fmt: skip
        ax.set(xlabel="intervals reviewed (feedback subjects)", ylim=(0, 1.02))
        ax.set_ylabel("test subjects: mean ± std over seeds")
        ax.set_title(f"{title}: rule {rule}, {where}", fontsize="medium")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", bbox_inches="tight")
    return out
