"""videopoet's core: tensors in, tensors out. `from model import VideoPoet`.

Heavy imports (torch) happen on first use of an attribute, so importing the package is instant.
"""

__version__ = "0.1.0"

_LAZY = {
    "VideoPoet": ".pipeline",
    "VideoTokenizer": ".tokenizer",
    "PrefixLM": ".transformer",
    "TextEncoder": ".text",
    "sample": ".sampling",
    "Preset": ".config",
    "SamplingOptions": ".config",
    "load_preset": ".config",
    "list_presets": ".config",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(name)
