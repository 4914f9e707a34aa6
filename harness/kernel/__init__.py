"""Kernels: what an image is, Debian kernel packages, resolution into the cache."""
