"""Where outputs go: any fsspec URI (a local path by default, s3://bucket/prefix, ...).

Credentials and endpoints come from the standard places only (for S3: the AWS
environment variables such as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_ENDPOINT_URL, or ~/.aws/config and credentials, or an instance/service-account
role), never from command-line arguments that end up in logs and process lists.

Every file is written under a temporary name beside its destination (``.tmp-*.partial``:
the leading dot hides it from pyarrow, the suffix from ``*.parquet`` globs) and renamed
when complete, so a reader never sees a partial file. On object stores the rename is a
server-side copy then a delete; the copy is atomic.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from dataclasses import dataclass

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

TMP_PREFIX = ".tmp-"
TMP_SUFFIX = ".partial"
_WRITABLE: set[tuple[int, str]] = set()  # stores already probed by this process


class StoreError(RuntimeError):
    """The store cannot be used (missing bucket, wrong credentials, not writable)."""


@dataclass(frozen=True)
class Store:
    """A root folder on some filesystem; paths below it are joined with '/'."""

    fs: fsspec.AbstractFileSystem
    root: str
    uri: str = ""

    @classmethod
    def open(cls, uri: str, **storage_options) -> Store:
        fs, root = url_to_fs(str(uri), **storage_options)
        return cls(fs, root.rstrip("/") or "/", str(uri))

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _makedirs(self, folder: str) -> None:
        # Object stores have no folders, and s3fs's makedirs would create a missing
        # *bucket*: a typo must fail, not conjure a bucket.
        if self.is_local:
            self.fs.makedirs(folder, exist_ok=True)

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self.path(*parts))

    def check_exists(self) -> None:
        """Raise StoreError when the store's folder, bucket or prefix does not exist."""
        try:
            found = self.fs.exists(self.root) or self.fs.isdir(self.root)
        except Exception as e:  # an unreachable endpoint, refused credentials
            raise StoreError(f"cannot read store {self.uri or self.root}: {_describe(e)}") from e
        if not found:
            raise StoreError(
                f"store {self.uri or self.root} does not exist (no such folder, bucket or "
                "prefix): check the path, or run `mespot extract` into it first"
            )

    def check_writable(self) -> None:
        """Write and delete a probe object: one clear error before any work starts."""
        if (id(self.fs), self.root) in _WRITABLE:
            return
        probe = self.path(f"{TMP_PREFIX}probe-{uuid.uuid4().hex}{TMP_SUFFIX}")
        try:
            self._makedirs(self.root)
            self.fs.pipe_file(probe, b"ok")
            self.fs.rm(probe)
        except Exception as e:  # botocore/s3fs raise many kinds; all mean "cannot use it"
            raise StoreError(
                f"cannot write to store {self.uri or self.root}: {_describe(e)}"
            ) from e
        _WRITABLE.add((id(self.fs), self.root))

    def _tmp_for(self, dest: str) -> str:
        parent, name = dest.rsplit("/", 1)
        return f"{parent}/{TMP_PREFIX}{uuid.uuid4().hex}-{name}{TMP_SUFFIX}"

    def put_atomic(self, data: bytes, *parts: str) -> str:
        dest = self.path(*parts)
        self._makedirs(dest.rsplit("/", 1)[0])
        tmp = self._tmp_for(dest)
        try:
            self.fs.pipe_file(tmp, data)
        except OSError as e:  # name the file meant, not its temporary name
            if e.errno is None:
                raise
            raise type(e)(e.errno, e.strerror, dest) from e
        try:
            self.fs.mv(tmp, dest)
        except BaseException:
            self.fs.rm(tmp)
            raise
        return dest

    def create_exclusive(self, data: bytes, *parts: str) -> bool:
        """Create a file only if it does not exist: True if this call created it.

        Local disk: O_EXCL. S3: a conditional put (If-None-Match), as s3fs's "xb" mode
        sends. A filesystem without either falls back to check-then-write, which a race
        can defeat; callers keep their commits idempotent for that reason.
        """
        dest = self.path(*parts)
        self._makedirs(dest.rsplit("/", 1)[0])
        try:
            with self.fs.open(dest, "xb") as f:
                f.write(data)
            return True
        except FileExistsError:
            return False
        except (ValueError, NotImplementedError, TypeError):
            if self.fs.exists(dest):
                return False
            self.fs.pipe_file(dest, data)
            return True
        except OSError as e:
            if "PreconditionFailed" in str(e) or "412" in str(e):
                return False
            raise

    def remove(self, *parts: str) -> None:
        try:
            self.fs.rm(self.path(*parts))
        except FileNotFoundError:
            pass

    def write_parquet(self, table: pa.Table, *parts: str) -> str:
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        return self.put_atomic(buf.getvalue(), *parts)

    def read_parquet(self, *parts: str) -> pa.Table:
        with self.fs.open(self.path(*parts), "rb") as f:
            return pq.read_table(f)

    def write_text(self, text: str, *parts: str) -> str:
        return self.put_atomic(text.encode(), *parts)

    def read_text(self, *parts: str) -> str:
        return self.fs.cat_file(self.path(*parts)).decode()

    def write_json(self, obj, *parts: str) -> str:
        return self.write_text(json.dumps(obj, indent=2, default=str) + "\n", *parts)

    def read_json(self, *parts: str):
        return json.loads(self.read_text(*parts))

    def find(self, *parts: str) -> list[str]:
        """Every file below ``parts`` (full paths), or [] when there is none."""
        base = self.path(*parts)
        if not self.fs.exists(base):
            return []
        return sorted(self.fs.find(base))

    def clean_tmp(self, older_than_s: float = 3600.0) -> int:
        """Remove temporary files left by killed runs (old enough not to be in flight)."""
        now, n = time.time(), 0
        for p in self.find():
            name = p.rsplit("/", 1)[-1]
            if not (name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX)):
                continue
            try:
                mtime = self.fs.modified(p).timestamp()
            except (NotImplementedError, OSError, AttributeError):
                continue
            if now - mtime > older_than_s:
                self.fs.rm(p)
                n += 1
        return n


def file_target(uri: str) -> tuple[Store, str]:
    """(the folder's Store, the file name) of a file to write at a path or URI, after
    checking that the folder can be written: one clear error before any work. Write with
    ``folder.put_atomic(data, name)``, which never creates a bucket (fsspec.open would,
    through s3fs's makedirs)."""
    parent, _, name = str(uri).rstrip("/").rpartition("/")
    if not name:
        raise ValueError(f"{uri!r} names no file")
    folder = Store.open(parent or ".")
    folder.check_writable()
    return folder, name


def _describe(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    hints = {
        "NoSuchBucket": "NoSuchBucket",
        "bucket does not exist": "NoSuchBucket",
        "InvalidAccessKeyId": "InvalidAccessKeyId",
        "SignatureDoesNotMatch": "SignatureDoesNotMatch",
        "AccessDenied": "AccessDenied",
        "Access Denied": "AccessDenied",
        "Could not connect": "endpoint unreachable",
    }
    for needle, name in hints.items():
        if needle in text or needle in type(e).__name__:
            return f"{name}: {text}"
    return f"{type(e).__name__}: {text}"
