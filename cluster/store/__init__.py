"""Stores: where tables, models and verdicts live (any fsspec URI), and the paths inside them."""

from cluster.store.store import Store, StoreError

__all__ = ["Store", "StoreError"]
