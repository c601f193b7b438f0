"""Where outputs go: any fsspec URI (a local path by default), written atomically.

Every file is written under a temporary name beside its destination and renamed when
complete, so a crash never leaves a file that looks finished. (On object stores a
rename is a copy then a delete: readers still never see a partial object.)
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import url_to_fs


@dataclass(frozen=True)
class Store:
    """A root folder on some filesystem; paths below it are joined with '/'."""

    fs: fsspec.AbstractFileSystem
    root: str

    @classmethod
    def open(cls, uri: str, **storage_options) -> Store:
        fs, root = url_to_fs(str(uri), **storage_options)
        return cls(fs, root.rstrip("/"))

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self.path(*parts))

    def _atomic_put(self, data: bytes, dest: str) -> None:
        parent = dest.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}-{dest.rsplit('/', 1)[1]}"
        with self.fs.open(tmp, "wb") as f:
            f.write(data)
        try:
            self.fs.mv(tmp, dest)
        except BaseException:
            self.fs.rm(tmp)
            raise

    def write_parquet(self, table: pa.Table, *parts: str) -> str:
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        dest = self.path(*parts)
        self._atomic_put(buf.getvalue(), dest)
        return dest

    def read_parquet(self, *parts: str) -> pa.Table:
        with self.fs.open(self.path(*parts), "rb") as f:
            return pq.read_table(f)

    def write_text(self, text: str, *parts: str) -> str:
        dest = self.path(*parts)
        self._atomic_put(text.encode(), dest)
        return dest

    def read_text(self, *parts: str) -> str:
        with self.fs.open(self.path(*parts), "rb") as f:
            return f.read().decode()

    def write_json(self, obj, *parts: str) -> str:
        return self.write_text(json.dumps(obj, indent=2, default=str) + "\n", *parts)
