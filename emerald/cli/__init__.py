"""Thin command-line layer: parse -> call the library -> print -> exit code."""
