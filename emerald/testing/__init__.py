"""Test helpers that ship with the package: tiny tape builders and hypothesis strategies."""
