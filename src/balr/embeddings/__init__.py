"""Speaker-embedding models behind one interface (see base.py and registry.py).

`batch` runs a model over a dataset (`extract_embeddings`); `extract` is the `balr extract`
job (`extract_dataset_embeddings`: config, model, dataset, shard, batch extraction).
The names below are imported on first use (PEP 562): `balr.embeddings.ge2e_numpy` and
`balr.embeddings.registry` are usable without importing torch.
"""

from importlib import import_module

#: public name -> the module of this package that defines it
_MODULE_OF = {
    "EmbeddingModel": "base",
    "build_embedding_model": "registry",
    "register_embedding_model": "registry",
    "registered_models": "registry",
    "select_model_overrides": "registry",
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
