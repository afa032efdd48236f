"""Datasets, vector files and stores, trial lists and Kaldi interop.

The names below are imported from their modules on first use (PEP 562), so that a module of
this package (`balr.data.vectors`, `balr.data.provenance`) is usable without the dataset's
torch or the item readers' pandas (`balr compare`).
"""

from balr.lazy import lazy_names

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
__getattr__, __dir__ = lazy_names(__name__, _MODULE_OF, globals())
