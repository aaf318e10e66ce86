"""The vectorised backtester: compiled loops over the execution kernels, results, statistics, sweeps."""
