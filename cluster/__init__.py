"""mespot's system: CLI (cli/), stores (store/), jobs and executors (run/), review (review/)."""
