"""The engine: config, triggers, actions, the dispatcher and per-plugin workers."""
