"""mespot orchestration: CLI, storage, Ray."""
