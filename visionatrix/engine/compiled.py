"""``torch.compile`` for the heavy networks, opt-in (``VIX_COMPILE``), warmed up beside the work.

Compiling pays on a GPU (an SDXL UNet step at 1024x1024 on an H200: 61 ms eager, 35 ms compiled,
23 ms with CUDA graphs) but the compile takes minutes, and a compiled network fuses operations,
so its results may differ from eager in the last bits: hence a setting, off by default.

``WarmCompiled`` keeps the first task off the compile's critical path: its calls run the eager
network while a side thread compiles it and runs the compiled one once on the same inputs; once
that has finished, calls go to the compiled network. A compile that fails (an operation the
compiler cannot trace) leaves the eager network in place, with a warning. The worker points
Inductor's on-disk caches at ``MODELS_DIR/.cache/torch_compile``, so a restarted worker finds
its kernels ready instead of compiling again.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from visionatrix.errors import InvalidInput

log = logging.getLogger(__name__)

# Inductor's modes, and "eager": traced by Dynamo but run as is (checks that a network traces)
MODES = ("default", "reduce-overhead", "max-autotune", "eager")
OPTION = "compile"  # RunEnv.options key: the mode, or absent
_OFF = ("", "0", "off", "false", "no")
_ON = ("1", "on", "true", "yes")


def compile_mode(setting: str) -> str | None:
    """``VIX_COMPILE`` as a ``torch.compile`` mode; None when off."""
    value = (setting or "").strip().lower()
    if value in _OFF:
        return None
    if value in _ON:
        return "default"
    if value not in MODES:
        raise InvalidInput(f"VIX_COMPILE={setting!r}: expected off, on or one of {', '.join(MODES)}")
    return value


class WarmCompiled:
    """Calls ``module`` until its compiled twin has been built and run once, then the twin.

    Anything else (``config``, ``parameters()``, ``dtype``) is the module's own."""

    def __init__(self, module: Any, mode: str, backend: str | None = None) -> None:
        self.module = module
        self.mode = mode
        self.backend = backend or ("eager" if mode == "eager" else "inductor")
        self.failed: str | None = None
        self._compiled: Any = None
        self._started = False
        self._lock = threading.Lock()
        self._settled = threading.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        compiled = self._compiled
        if compiled is not None:
            return compiled(*args, **kwargs)
        self._warm_up(args, kwargs)
        return self.module(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the compile has ended (either way) within ``timeout`` seconds."""
        return self._settled.wait(timeout)

    def _warm_up(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._compile, args=(args, kwargs), daemon=True, name="compile").start()

    def _compile(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        import torch

        name = type(self.module).__name__
        try:
            options = {"backend": self.backend} | ({"mode": self.mode} if self.backend == "inductor" else {})
            compiled = torch.compile(self.module, **options)
            with torch.inference_mode():
                compiled(*args, **kwargs)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self._compiled = compiled
            log.info("%s compiled (%s); later calls use it", name, self.mode, extra={"action": "compiled"})
        except Exception as exc:  # any failure keeps the eager network, which works
            self.failed = f"{type(exc).__name__}: {exc}"
            log.warning("%s could not be compiled; staying eager: %s", name, self.failed)
        finally:
            self._settled.set()


def maybe_compiled(module: Any, options: dict[str, Any]) -> Any:
    """``module`` wrapped for compiling when the run's options ask for it, else itself."""
    mode = options.get(OPTION)
    return WarmCompiled(module, mode) if mode else module
