"""Promo War-Room: real-time command center for e-commerce promotions."""

__version__ = "0.1.0"
