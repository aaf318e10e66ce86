"""Strategies: decision kernels (signal values -> intents), their parameters and TOML configs."""

from emerald.strategy.base import StrategyDef, load_config

__all__ = ["StrategyDef", "load_config"]
