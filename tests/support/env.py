"""The environment tests run the engine with."""

#: Fast defaults for tests: a 0.3 s simulated generation polled every 0.05 s.
FAST_ENV = {
    "VEOTUI_SIM_SECONDS": "0.3",
    "VEOTUI_POLL_INTERVAL": "0.05",
    "VEOTUI_RETRY_BASE_SECONDS": "0.01",
    "VEOTUI_GENERATOR": "sim",
    "VEOTUI_CONFIG": "/nonexistent/veotui-test-config.toml",
}
