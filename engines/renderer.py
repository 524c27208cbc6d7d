"""The renderer contract and the registry of renderers.

A renderer turns one portrait into a controllable face: ``prepare`` runs once per portrait,
``render`` once per frame. Renderers register by name; ``create_renderer("auto")`` tries each
in registration order and, when all fail, raises one error listing every reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import numpy as np

from engines.controls import FaceControls
from engines.errors import AvatarError, EngineUnavailable
from engines.face.landmarker import FaceLandmarks

Prepared = TypeVar("Prepared")


class Renderer(Protocol[Prepared]):
    """Generic over what ``prepare`` returns, so ``render`` only takes what its own ``prepare``
    made (``MeshRenderer`` is a ``Renderer[PreparedMesh]``)."""

    name: str

    def prepare(self, portrait_rgb: np.ndarray, landmarks: FaceLandmarks | None = None) -> Prepared:
        """Analyse the portrait once (HxWx3 uint8 RGB); detect the face unless given."""
        ...

    def render(self, prepared: Prepared, controls: FaceControls) -> np.ndarray:
        """One frame: HxWx3 uint8 RGB, the portrait's size, for any controls (clamped)."""
        ...


# The registry picks engines by name at run time, so their prepared types are not known here;
# ``ReadyPortrait`` (avatar_app.pipeline.portrait) binds a renderer to its own prepared value.
AnyRenderer = Renderer[Any]
_FACTORIES: dict[str, Callable[[], AnyRenderer]] = {}
_CHECKS: dict[str, Callable[[], None]] = {}


def register_renderer(
    name: str, factory: Callable[[], AnyRenderer], check: Callable[[], None] | None = None
) -> None:
    """Register a factory; it raises EngineUnavailable when it cannot run here. ``check``, if
    given, raises the same without loading anything (for pickers that list every engine)."""
    _FACTORIES[name] = factory
    if check is not None:
        _CHECKS[name] = check


def unavailable_reason(name: str) -> str | None:
    """Why engine ``name`` cannot run here, or None when it can (cheap where it has a check)."""
    _register_builtin()
    try:
        _CHECKS.get(name, lambda: None)() if name in _CHECKS else create_renderer(name)
    except AvatarError as exc:
        return str(exc)
    return None


def renderer_names() -> list[str]:
    _register_builtin()
    return list(_FACTORIES)


def create_renderer(name: str = "auto") -> AnyRenderer:
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

        register_renderer(
            "liveportrait", liveportrait.create_onnxruntime, liveportrait.check_onnxruntime
        )
        register_renderer(
            "liveportrait-trt", liveportrait.create_tensorrt, liveportrait.check_tensorrt
        )
