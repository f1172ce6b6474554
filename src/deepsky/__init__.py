"""deepsky: reproducible lecture experiments."""
__version__ = "0.1.0"
