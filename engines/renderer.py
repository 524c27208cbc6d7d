"""The renderer contract and the registry of renderers.

A renderer turns one portrait into a controllable face: ``prepare`` runs once per portrait,
``render`` once per frame. Renderers register by name; ``create_renderer("auto")`` tries each
in registration order and, when all fail, raises one error listing every reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from engines.controls import FaceControls
from engines.errors import EngineUnavailable
from engines.face.landmarker import FaceLandmarks


class Renderer(Protocol):
    name: str

    def prepare(self, portrait_rgb: np.ndarray, landmarks: FaceLandmarks | None = None) -> Any:
        """Analyse the portrait once (HxWx3 uint8 RGB); detect the face unless given."""
        ...

    def render(self, prepared: Any, controls: FaceControls) -> np.ndarray:
        """One frame: HxWx3 uint8 RGB, the portrait's size, for any controls (clamped)."""
        ...


_FACTORIES: dict[str, Callable[[], Renderer]] = {}


def register_renderer(name: str, factory: Callable[[], Renderer]) -> None:
    """Register a factory; it raises EngineUnavailable when it cannot run here."""
    _FACTORIES[name] = factory


def renderer_names() -> list[str]:
    _register_builtin()
    return list(_FACTORIES)


def create_renderer(name: str = "auto") -> Renderer:
    _register_builtin()
    if name != "auto":
        if name not in _FACTORIES:
            raise EngineUnavailable(
                f"Unknown engine {name!r}. Did you mean one of: {', '.join(_FACTORIES)}?"
            )
        return _FACTORIES[name]()
    reasons = []
    for candidate, factory in _FACTORIES.items():
        try:
            return factory()
        except EngineUnavailable as exc:
            reasons.append(f"  {candidate}: {exc}")
    raise EngineUnavailable("No engine can run here:\n" + "\n".join(reasons))


def _register_builtin() -> None:
    if "mesh" not in _FACTORIES:
        from engines.mesh.renderer import MeshRenderer

        register_renderer("mesh", MeshRenderer)
    if "liveportrait" not in _FACTORIES:
        from engines.liveportrait import renderer as liveportrait

        register_renderer("liveportrait", liveportrait.create_onnxruntime)
        register_renderer("liveportrait-trt", liveportrait.create_tensorrt)
