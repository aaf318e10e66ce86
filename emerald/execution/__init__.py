"""Execution kernels shared by the backtester, the paper broker and the live runner."""
