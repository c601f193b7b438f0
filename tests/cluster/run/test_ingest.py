"""Session discovery under a prefix: video files, frame folders, subject folders, links."""

import shutil
from pathlib import Path

from cluster.run.ingest import discover_sessions
from cluster.store import Store

DATA = Path(__file__).parents[2] / "data"


def test_discovers_sessions_and_subjects(tiny_corpus, tmp_path):
    src = tmp_path / "incoming"
    (src / "alice").mkdir(parents=True)
    shutil.copy(DATA / "no_face.mp4", src / "alice" / "monday.mp4")
    (src / "bob_0917").symlink_to(tiny_corpus / "SAMM_longvideos" / "006_1")
    (src / "README.txt").write_text("not a session")
    (src / ".hidden").mkdir()
    corpus = discover_sessions(Store.open(str(src)), dataset="lab", fps=50)
    found = sorted((v.subject, v.video, v.source_kind) for v in corpus.videos)
    assert found == [("alice", "monday", "video"), ("bob_0917", "bob_0917", "frames")]
    fps = {v.video: v.fps for v in corpus.videos}
    assert fps["bob_0917"] == 50.0 and 23 < fps["monday"] < 25  # the container's own rate
    assert {v.dataset for v in corpus.videos} == {"lab"}
    assert not corpus.skipped


def test_frame_folder_without_fps_is_skipped_with_its_reason(tiny_corpus, tmp_path):
    src = tmp_path / "incoming"
    src.mkdir()
    shutil.copytree(tiny_corpus / "SAMM_longvideos" / "007_1", src / "s1")
    shutil.copy(DATA / "no_face.mp4", src / "clip.mp4")
    corpus = discover_sessions(Store.open(str(src)))
    assert [v.video for v in corpus.videos] == ["clip"]  # the video knows its frame rate
    (skip,) = corpus.skipped
    assert skip.what.endswith("s1") and "fps is required" in skip.reason


def test_unreadable_session_is_reported_and_the_others_go_on(tiny_corpus, tmp_path, capsys):
    import json

    from cluster.cli import main

    src, store = tmp_path / "incoming", tmp_path / "store"
    src.mkdir()
    (src / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    shutil.copytree(tiny_corpus / "SAMM_longvideos" / "006_1", src / "good")
    args = ["ingest", str(src), str(store), "--fps", "50", "--executor", "local", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1 videos extracted" in out and "broken.mp4" in out
    (run,) = (store / "runs").glob("*.json")
    summary = json.loads(run.read_text())
    assert summary["done"] == ["sessions/good/good"]
    (skipped,) = summary["skipped_inputs"]
    assert skipped["what"].endswith("broken.mp4") and "cannot be opened" in skipped["reason"]
