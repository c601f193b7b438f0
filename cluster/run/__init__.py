"""The jobs (extract, ingest, train, spot, evaluate, feedback, demo) and their executors."""
