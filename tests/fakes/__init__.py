"""Fakes for unit tests: a guest that answers from a table, toy kernel images and trees,
synthetic result directories. Tests that use them say so in their names or docstrings."""
