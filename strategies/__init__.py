"""The strategies shipped with EMERALD: one module (``StrategyDef``) and one TOML config each."""
