"""Annotators' review: the session, its HTTP server and page, the export of reviewed intervals."""
