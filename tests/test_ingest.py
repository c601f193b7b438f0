"""Session discovery under a prefix: video files, frame folders, subject folders, links."""

import shutil
from pathlib import Path

from cluster.ingest import discover_sessions

DATA = Path(__file__).parent / "data"


def test_discovers_sessions_and_subjects(tiny_corpus, tmp_path):
    src = tmp_path / "incoming"
    (src / "alice").mkdir(parents=True)
    shutil.copy(DATA / "no_face.mp4", src / "alice" / "monday.mp4")
    (src / "bob_0917").symlink_to(tiny_corpus / "SAMM_longvideos" / "006_1")
    (src / "README.txt").write_text("not a session")
    (src / ".hidden").mkdir()
    corpus = discover_sessions(str(src), dataset="lab", fps=50)
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
    corpus = discover_sessions(str(src))
    assert [v.video for v in corpus.videos] == ["clip"]  # the video knows its frame rate
    (skip,) = corpus.skipped
    assert skip.what.endswith("s1") and "fps is required" in skip.reason
