"""Comparing result directories."""
