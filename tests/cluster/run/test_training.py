"""LOSO training, spotting and evaluation end to end on the tiny corpus."""

import json
import shutil
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from cluster.cli import main
from pipeline.core.spotting import REVIEW_FLOOR
from schemas import SPOTTED_INTERVALS, WINDOW_PREDICTIONS, validate_table

pytestmark = pytest.mark.slow


def table(path: Path):
    return ds.dataset(path, format="parquet").to_table()


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory):
    store = tmp_path_factory.mktemp("train") / "store"
    assert (
        main(["extract", str(tiny_corpus), str(store), "--executor", "local", "--no-progress"]) == 0
    )
    assert main(["train", str(store), "--epochs", "2", "--executor", "local", "--no-progress"]) == 0
    (model_dir,) = (store / "models").iterdir()
    return store, model_dir.name


def test_loso_writes_a_model_per_fold_and_held_out_predictions(trained):
    store, model_id = trained
    folds = sorted(p.name for p in (store / "models" / model_id).iterdir())
    assert folds == ["all", "fold=006", "fold=007"]
    for f in folds:
        assert {p.name for p in (store / "models" / model_id / f).iterdir()} == {
            "model.json",
            "model.keras",
            "extent.keras",  # the extent head (ModelConfig.extent, on by default)
        }
    preds = table(store / "predictions" / f"model={model_id}")
    validate_table(preds, WINDOW_PREDICTIONS)
    steps = preds.column("step_scores").to_pylist()  # one score per timestep of each window
    assert all(len(q) == len(steps[0]) > 1 and all(0 <= v <= 1 for v in q) for q in steps)
    feats = table(store / "features")
    assert preds.num_rows == sum(feats.column("face_found").to_pylist())
    # Every window is scored by the fold that held its subject out.
    assert preds.column("fold").to_pylist() == preds.column("subject").to_pylist()


def test_the_final_model_spots_at_its_own_threshold(trained, tmp_path, capsys):
    from cluster.store import Store
    from cluster.store.models import load_model, record_spotting

    store, model_id = trained
    model = load_model(str(store / "models" / model_id / "all"))
    # The tiny corpus holds no micro-movement: nothing to choose a threshold by.
    assert model.spotting == {} and model.threshold == 0.5
    assert model.extent_model is not None  # extent.keras travels with the model
    # A threshold recorded after training (as `mespot train` does once the folds are
    # back) loads with the model and leaves its id alone.
    record_spotting(Store.open(str(store)), model_id, {"threshold": 0.7})
    again = load_model(str(store / "models" / model_id / "all"))
    assert again.threshold == 0.7 and again.model_id == model.model_id
    assert main(["spot", str(store / "models" / model_id / "all"), str(store), str(tmp_path)]) == 0
    assert f"model {model_id}, threshold 0.7 (the model's own): " in capsys.readouterr().out
    from cluster.store.parquet import spotting_thresholds

    # recorded beside the intervals, for the review page's queue
    assert spotting_thresholds(Store.open(str(tmp_path)), model_id) == {"*": 0.7}
    fold = load_model(str(store / "models" / model_id / "fold=006"))
    assert fold.spotting == {} and fold.threshold == 0.5


def test_from_model_fine_tunes_each_fold_from_the_same_subjects_fold(trained, capsys):
    store, model_id = trained
    args = ["train", str(store), "--executor", "local", "--no-progress", "--finetune-epochs", "1"]
    assert main([*args, "--from-model", "lstm-nope"]) == 2
    assert "has no model 'lstm-nope' to fine-tune" in capsys.readouterr().err
    assert main([*args, "--from-model", model_id]) == 0
    out = capsys.readouterr().out
    assert f"fine-tuned from model {model_id} for 1 epochs" in out
    new = {p.name for p in (store / "models").iterdir()} - {model_id}
    assert len(new) == 1  # a model of its own, beside the base
    (new_id,) = new
    for fold in ("fold=006", "fold=007", "all"):
        base = json.loads((store / "models" / model_id / fold / "model.json").read_text())
        info = json.loads((store / "models" / new_id / fold / "model.json").read_text())
        assert info["training"]["fine_tuned_from"] == base["model_id"]
        assert info["training"]["epochs"] == 1 and info["config"] == base["config"]
    shutil.rmtree(store / "models" / new_id)  # the other tests expect one model
    shutil.rmtree(store / "predictions" / f"model={new_id}")


def test_evaluate_writes_the_report_for_both_methods(trained, capsys):
    store, model_id = trained
    assert main(["evaluate", str(store)]) == 0
    out = capsys.readouterr().out
    for method in ("LSTM", "baseline"):
        for rule in ("coverage", "iou"):
            assert any(method in line and f"| {rule} |" in line for line in out.splitlines())
    report = store / "reports" / model_id
    data = json.loads((report / "report.json").read_text())
    assert data["model_id"] == model_id and set(data["auc"]) == {
        f"LSTM ({model_id})",
        "baseline (feature difference)",
    }
    assert (report / "roc.png").stat().st_size > 1000
    assert "| coverage |" in (report / "report.md").read_text()
    for mid in (model_id, "baseline-moilanen"):
        validate_table(table(store / "intervals" / f"model={mid}"), SPOTTED_INTERVALS)
    md = (report / "report.md").read_text()
    assert "LSTM micro spots: runs of the extent head's profile" in md
    # window-long spots on request, reported in a folder of their own
    assert main(["evaluate", str(store), "--window-spots"]) == 0
    md = (store / "reports" / f"{model_id}+window-spots" / "report.md").read_text()
    assert "LSTM micro spots: window-long (greedy NMS)" in md
    assert main(["evaluate", str(store), "--budget", "0.1"]) == 0
    md = (store / "reports" / f"{model_id}+budget-0.1" / "report.md").read_text()
    assert "the best within 0.1 of each video." in md
    assert f"LSTM threshold {REVIEW_FLOOR:g} (micro" in md  # drawn from the review floor


def test_spot_new_videos_with_the_all_subjects_model(trained, tiny_corpus, tmp_path, capsys):
    store, model_id = trained
    new = tmp_path / "new"
    shutil.copytree(tiny_corpus / "SAMM_longvideos" / "006_1", new / "session1")
    feats = tmp_path / "feats"
    assert (
        main(
            ["ingest", str(new), str(feats), "--fps", "50", "--executor", "local", "--no-progress"]
        )
        == 0
    )
    out = tmp_path / "out"
    model = store / "models" / model_id / "all"
    assert main(["spot", str(model), str(feats), str(out), "--threshold", "0.0"]) == 0
    (intervals_dir,) = (out / "intervals").iterdir()
    spots = table(intervals_dir)
    validate_table(spots, SPOTTED_INTERVALS)
    # threshold 0: every window is a detection; NMS keeps non-overlapping ones.
    assert spots.num_rows >= 1 and set(spots.column("video").to_pylist()) == {"session1"}
    printed = capsys.readouterr().out
    assert "threshold 0: " in printed and "intervals spotted" in printed
    # Without --threshold, the model's own.
    from cluster.store.models import load_model

    own = load_model(str(model)).threshold
    assert main(["spot", str(model), str(feats), str(tmp_path / "out2")]) == 0
    assert f"threshold {own:.3g} (the model's own): " in capsys.readouterr().out
    # A review budget: at threshold 0, only the best micro spots within a tenth of the video
    budget = ["--threshold", "0.0", "--budget", "0.1"]
    assert main(["spot", str(model), str(feats), str(tmp_path / "out3"), *budget]) == 0
    assert "micro spots within 0.1 of each video" in capsys.readouterr().out
    (kept_dir,) = (tmp_path / "out3" / "intervals").iterdir()
    kept = table(kept_dir).to_pylist()
    n_frames = table(feats / "videos").column("n_frames").to_pylist()[0]
    micro_kept = [r for r in kept if r["kind"] == "micro"]
    micro_all = [r for r in spots.to_pylist() if r["kind"] == "micro"]
    assert sum(r["end_frame"] - r["start_frame"] + 1 for r in micro_kept) <= 0.1 * n_frames
    best = sorted((r["score"] for r in micro_all), reverse=True)[: len(micro_kept)]
    assert sorted((r["score"] for r in micro_kept), reverse=True) == best
    # Without --threshold, a budget draws its spots down to the review floor.
    assert main(["spot", str(model), str(feats), str(tmp_path / "out5"), "--budget", "0.1"]) == 0
    floor = f"threshold {REVIEW_FLOOR:g} (the review floor), micro spots within 0.1"
    assert floor in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad:
        main(["spot", str(model), str(feats), str(tmp_path / "o4"), "--budget", "2"])
    assert bad.value.code == 2
    assert "fraction in (0, 1]" in capsys.readouterr().err


def test_spot_refuses_features_of_another_layout(trained, tiny_corpus, tmp_path, capsys):
    store, model_id = trained
    feats = tmp_path / "feats6"
    (tmp_path / "cfg.json").write_text(json.dumps({"n_bins": 6}))
    args = ["extract", str(tiny_corpus), str(feats), "--config", str(tmp_path / "cfg.json")]
    assert main([*args, "--executor", "local", "--no-progress"]) == 0
    model = store / "models" / model_id / "all"
    assert main(["spot", str(model), str(feats), str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "model" in err and "6" in err


def readme_blocks(section: str) -> list[str]:
    import re

    text = (Path(__file__).parents[3] / "README.md").read_text()
    body = text.split(section, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


@pytest.mark.parametrize("block", readme_blocks("## Spotted intervals and window scores"))
def test_readme_interval_examples(block, trained):
    store, _model_id = trained
    assert main(["evaluate", str(store)]) == 0
    lines = block.splitlines()
    assert lines[0].startswith("STORE = ")
    scope: dict = {}
    exec("\n".join([f"STORE = {str(store)!r}", *lines[1:]]), scope)
    n_intervals = sum(table(p).num_rows for p in (store / "intervals").iterdir())
    spots, scores = scope["spots"], scope["scores"]
    assert len(spots) == n_intervals
    rows = scores.rows() if hasattr(scores, "rows") else scores
    want = {p.name.split("=", 1)[1]: table(p).num_rows for p in (store / "predictions").iterdir()}
    assert {r[0]: r[1] for r in rows} == want


def test_demo_runs_end_to_end_on_ray(ray_local, tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", str(out), "--subjects", "2", "--seconds", "4", "--epochs", "2", "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    header = "| method | kind | rule | TP | FP | FN | recall | precision | F1 | footage kept |"
    assert header in text
    rows = [line for line in text.splitlines() if line.startswith(("| LSTM", "| baseline"))]
    # The LSTM spots micro and macro and is scored on each and overall; the baseline spots
    # micro-movements only. Two rules each.
    kinds = [row.split(" | ")[1] for row in rows]
    assert kinds == ["micro"] * 2 + ["macro"] * 2 + ["overall"] * 2 + ["micro"] * 2
    assert (out / "store" / "runs").is_dir() and any((out / "store" / "reports").iterdir())
    # A second run reuses the corpus and the extracted features.
    assert main(args) == 0
    assert "0 videos extracted, 2 already done" in capsys.readouterr().out


def test_stacked_folds_train_as_fold_by_fold_does(trained, tmp_path, capsys):
    store, _ = trained
    copy = tmp_path / "store"
    copy.mkdir()
    for part in ("features", "feature_config.json", "videos", "annotations"):
        if (store / part).is_dir():
            shutil.copytree(store / part, copy / part)
        elif (store / part).exists():
            shutil.copy(store / part, copy / part)
    args = ["train", str(copy), "--epochs", "2", "--executor", "local", "--no-progress"]
    assert main([*args, "--stack", "2"]) == 0  # 3 fits in 2 tasks
    (model_dir,) = (copy / "models").iterdir()
    folds = sorted(p.name for p in model_dir.iterdir())
    assert folds == ["all", "fold=006", "fold=007"]
    for f in folds:
        info = json.loads((model_dir / f / "model.json").read_text())
        assert info["training"]["stacked_folds"] in (1, 2)
        assert info["training"]["data_fingerprint"].endswith(f.removeprefix("fold="))
    preds = table(copy / "predictions" / f"model={model_dir.name}")
    assert preds.column("fold").to_pylist() == preds.column("subject").to_pylist()
    assert "2 LOSO folds" in capsys.readouterr().out  # and the model on every subject


def test_folds_are_stacked_in_even_groups():
    from cluster.run.train_stacked import fold_groups

    assert fold_groups(["a", "b", "c", None], 2) == [("a", "c"), ("b", None)]
    assert fold_groups(["a", "b", "c", None], 3) == [("a", "c"), ("b", None)]
    assert fold_groups(["a", "b", None], 8) == [("a", "b", None)]
    with pytest.raises(ValueError, match="stack"):
        fold_groups(["a"], 0)
