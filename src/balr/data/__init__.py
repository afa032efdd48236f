"""Datasets, vector files and stores, trial lists and Kaldi interop.

The names below are imported from their modules on first use (PEP 562), so that a module of
this package (`balr.data.vectors`, `balr.data.provenance`) is usable without the dataset's
torch or the item readers' pandas (`balr compare`).
"""

from importlib import import_module

#: public name -> the module of this package that defines it
_MODULE_OF = {
    "AudioDataset": "dataset",
    "DatasetItem": "items",
    "Trials": "trials",
    "load_trials": "trials",
    "VectorStore": "vectors",
    "VectorStoreWriter": "vectors",
    "as_ba_counts": "vectors",
    "read_vector": "vectors",
    "write_vector": "vectors",
    "write_vector_store": "vectors",
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULE_OF])
