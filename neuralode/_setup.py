"""Process-wide JAX settings, made in one explicit call by the entry point."""

import jax


def configure_jax(x64: bool, cache_dir=None, min_compile_s: float = 0.5) -> None:
    """Turn on 64-bit mode if `x64`, and keep compiled functions that took at least
    `min_compile_s` to compile in the persistent cache `cache_dir` (`None`: no cache)."""
    if x64:
        jax.config.update("jax_enable_x64", True)
    if cache_dir is not None:
        jax.config.update("jax_compilation_cache_dir", str(cache_dir))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_s)


def device_used() -> str:
    """The device JAX computes on, as `<platform>: <kind>` (`cpu: cpu`, `gpu: NVIDIA H200`)."""
    device = jax.devices()[0]
    return f"{device.platform}: {device.device_kind}"
