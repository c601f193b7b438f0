"""Readers of the corpora users bring (SAMM, CAS(ME)^2, generic footage) and the SAMM workbook.

Each reader returns a ``Corpus``: one ``VideoRecord`` per video that opened, the ground-truth
``Annotation``s (frames 0-based into the decoded sequence, inclusive; see
``schemas.tables``) and a ``Skipped`` entry, with its reason, for every row or video left
out. Bad rows never stop a read; a workbook or CSV whose sheet or columns are missing does
(ValueError naming the file, sheet and columns).

Workbook frames are 1-based frame NUMBERS as in the file names; they become indices by
subtracting the folder's first frame number. Rules shared by both workbooks: a non-integer
frame rounds half up (12.5 -> 13); onset 0 is taken as the first frame (with a note); an
apex of -1 or 0 means no apex; a non-numeric onset/offset, offset < onset or an unknown
type skips the row; so does an interval outside its video.

Rows are then checked against each other (``corpus.check_annotation_rows``, all readers). An
exact duplicate, a row with the same video, onset, offset, apex, type and action units as an
earlier row (the movement name, notes and row number may differ), is dropped with a warning
and a Skipped entry naming it and the row it repeats, so an interval written twice counts
once. Distinct rows of one type in one video whose intervals overlap are all kept, and each
pair is listed in ``Corpus.notes`` (things kept but worth a look).

Each layout is described in its reader's module: ``samm`` (SAMM long videos, ``read_samm``),
``casme2`` (CAS(ME)^2, ``read_casme2``) and ``generic`` (one folder or video file with a CSV
of intervals, ``read_generic``). ``corpus`` holds ``Corpus`` and the helpers the readers
share; ``workbook`` the SAMM names and ``samm_workbook``, a writer of that layout.
"""

from pipeline.datasets.casme2 import read_casme2
from pipeline.datasets.corpus import Corpus, VideoKey, annotations_by_video
from pipeline.datasets.generic import read_generic
from pipeline.datasets.samm import read_samm
from pipeline.datasets.workbook import (
    SAMM_COLUMNS,
    SAMM_COLUMNS_ALL,
    SAMM_FIELDS,
    SAMM_HEADER_ROW,
    SAMM_SHEET,
    SAMM_TYPES,
    SAMM_WORKBOOK,
    samm_workbook,
)

__all__ = [
    "SAMM_COLUMNS",
    "SAMM_COLUMNS_ALL",
    "SAMM_FIELDS",
    "SAMM_HEADER_ROW",
    "SAMM_SHEET",
    "SAMM_TYPES",
    "SAMM_WORKBOOK",
    "Corpus",
    "VideoKey",
    "annotations_by_video",
    "read_casme2",
    "read_generic",
    "read_samm",
    "samm_workbook",
]
