"""balr: explainable speaker recognition with binary-attribute likelihood ratios."""

__version__ = "0.1.0"
