"""Small types and pure rules: intervals, windows, labels, spotting, metrics, records, verdicts."""
