"""The SAMM long-videos workbook: its file, sheet and column names, and a writer of the layout."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence

import openpyxl

SAMM_WORKBOOK = "SAMM_LongVideos_V2_Release.xlsx"
SAMM_SHEET = "FACS_Movement_Only"
SAMM_COLUMNS = ("Filename", "Onset", "Apex", "Offset", "Type")  # the ones read needs
#: Every column of the sheet, in SAMM's order (what writers of the layout put in row 10).
SAMM_COLUMNS_ALL = (
    "Subject",
    "Filename",
    "Inducement Code",
    "Onset",
    "Apex",
    "Offset",
    "Duration",
    "Type",
    "Action Units",
    "Notes",
)
SAMM_HEADER_ROW = 10  # 1-based, as in SAMM: rows 1-9 are titles
SAMM_TYPES = {"micro": "Micro - 1/2", "macro": "Macro"}  # Type values writers use
SAMM_FIELDS = {
    "onset": "Onset",
    "offset": "Offset",
    "apex": "Apex",
    "kind": "Type",
    "action_units": "Action Units",
}


def samm_workbook(rows: Sequence[Sequence], titles: Sequence[str] = ()) -> bytes:
    """An .xlsx in the SAMM long-videos layout that :func:`read_samm` reads.

    Sheet ``SAMM_SHEET``; ``titles`` in rows 1.., the header (``SAMM_COLUMNS_ALL``) in row
    ``SAMM_HEADER_ROW``, then ``rows`` in that column order. openpyxl stamps the save time
    into docProps and the zip entries; both are pinned so the same rows give the same bytes.
    """
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = SAMM_SHEET
    for r, title in enumerate(titles[: SAMM_HEADER_ROW - 1], start=1):
        ws.cell(r, 1, title)
    for col, name in enumerate(SAMM_COLUMNS_ALL, start=1):
        ws.cell(SAMM_HEADER_ROW, col, name)
    for r, row in enumerate(rows, start=SAMM_HEADER_ROW + 1):
        for col, value in enumerate(row, start=1):
            ws.cell(r, col, value)
    buf = io.BytesIO()
    wb.save(buf)
    pinned = io.BytesIO()
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(pinned, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*",
                    rb"\g<1>2000-01-01T00:00:00Z",
                    data,
                )
            dst.writestr(
                zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)),
                data,
                zipfile.ZIP_DEFLATED,
            )
    return pinned.getvalue()
