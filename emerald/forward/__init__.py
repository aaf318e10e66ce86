"""Forward testing: the recorder (signal log), outcome labels, per-signal performance."""
