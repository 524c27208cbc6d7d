"""TensorRT back end: builds, caches and runs one engine per LivePortrait network.

Engines are built from the exported ONNX files (:mod:`engines.liveportrait.backend`), with
``warping_gather.onnx`` standing in for ``warping.onnx`` because TensorRT's GridSample layer
is 4-D only. With ``fp16`` the big convolutional networks run in half precision, except the
layers whose precision matters (see :func:`keeps_fp32`); the motion extractor and the small
stitching MLPs are always built in fp32.

A built engine only runs on the GPU model and TensorRT version that built it, so engines are
cached per GPU, compute capability, TensorRT version, precision and ONNX file content (see
:func:`engine_relpath`); anything else changing means a rebuild, a match means none.

``tensorrt`` and ``torch`` are imported lazily. Device memory and the CUDA stream come from
torch, so neither pycuda nor cuda-python is needed. The build uses TensorRT 10's weakly typed
network API (8.6 works too); TensorRT 11 removed it, so there only fp32 engines are built.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engines.errors import EngineUnavailable, ModelMissing
from engines.liveportrait.backend import (
    NETWORKS,
    RENDER_NETWORKS,
    checked_onnx_path,
    onnx_path,
    write_atomically,
)
from engines.model_cache import SIDECAR_SUFFIX, cached_sha256, check_sha256, user_model_dir

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

RECIPE = 1
"""Version of the build recipe (precision policy, flags); bump it to rebuild cached engines."""

INSTALL_HINT = 'pip install "tensorrt>=10,<11"'
"""TensorRT 10 for CUDA 12 (``tensorrt-cu11`` for CUDA 11); TensorRT 11 has no fp16 flag."""

FP32_NETWORKS = frozenset({"motion", "stitching", "lip", "eye"})
"""Always built in fp32: the motion extractor's pose bins go through softmax expectations, and
the stitching MLPs are tiny (fp16 would save nothing) and feed keypoint geometry."""

_SAMPLER_LAYER_TYPES = frozenset({"GATHER", "UNARY", "ELEMENTWISE", "SOFTMAX", "REDUCE", "SELECT"})
"""TensorRT layer types of the gather sampler (gather, floor, index and weight arithmetic,
clamps) and of the dense-motion math around it (gaussian heatmaps, softmax masks)."""

_WORKSPACE_BYTES = 4 << 30


# --- Pure helpers (no GPU, no tensorrt) ---------------------------------------------------


def engine_network(network: str) -> str:
    """The exported network a TensorRT engine for ``network`` is built from."""
    return "warping_gather" if network == "warping" else network


def network_precision(network: str, fp16: bool) -> str:
    """``"fp16"`` or ``"fp32"``: the builder precision of ``network`` when ``fp16`` is asked."""
    return "fp16" if fp16 and network not in FP32_NETWORKS else "fp32"


def keeps_fp32(network: str, layer_type: str, op: str = "") -> bool:
    """Whether a layer stays in fp32 inside an fp16 engine.

    ``layer_type`` is the name of the TensorRT ``LayerType`` (``"GATHER"``, ``"ACTIVATION"``,
    ...); ``op`` names the activation or unary operation (``"SIGMOID"``, ``"CLIP"``,
    ``"FLOOR"``) and is empty for other layers. Convolutions, normalisations and the
    non-linearities of the conv stacks run in fp16.
    """
    if network in FP32_NETWORKS:
        return True
    if network in ("warping", "warping_gather"):
        # In fp16 a coordinate near 64 has a resolution of 1/32 voxel: the sampler's
        # floor and interpolation weights (and the softmax/exp before them) need fp32.
        return layer_type in _SAMPLER_LAYER_TYPES or (layer_type == "ACTIVATION" and op == "CLIP")
    if network == "generator":
        # Its final sigmoid: fp16 here is behind the "black frames" users report.
        return layer_type == "ACTIVATION" and op == "SIGMOID"
    return False


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "gpu"


def engine_relpath(
    network: str,
    *,
    gpu_name: str,
    capability: tuple[int, int],
    trt_version: str,
    precision: str,
    onnx_sha256: str,
) -> Path:
    """Where an engine lives inside the cache: one folder per GPU and TensorRT version.

    E.g. ``NVIDIA-GeForce-RTX-3090-sm86-trt10.3.0/generator-fp16-<sha16>-r1.engine``.
    """
    folder = f"{_slug(gpu_name)}-sm{capability[0]}{capability[1]}-trt{_slug(trt_version)}"
    return Path(folder) / f"{network}-{precision}-{onnx_sha256[:16]}-r{RECIPE}.engine"


def default_cache_dir() -> Path:
    return user_model_dir() / "liveportrait" / "trt"


def grid_sample_nodes(model: Any) -> list[str]:
    """Names (or ``op#index``) of every GridSample node of an ``onnx.ModelProto``.

    Looks into sub-graphs (If/Loop bodies) and model-local functions too.
    """
    found: list[str] = []

    def visit(nodes: Any) -> None:
        for index, node in enumerate(nodes):
            if node.op_type == "GridSample":
                found.append(node.name or f"GridSample#{index}")
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    visit(attribute.g.node)
                for graph in attribute.graphs:
                    visit(graph.node)

    visit(model.graph.node)
    for function in model.functions:
        visit(function.node)
    return found


def check_no_grid_sample(path: Path) -> None:
    """Refuse an ONNX file with a GridSample node: TensorRT cannot run the 5-D ones."""
    try:
        onnx = importlib.import_module("onnx")
    except ImportError as exc:
        raise EngineUnavailable(
            "Building TensorRT engines needs the onnx package: run `pip install onnx`."
        ) from exc
    nodes = grid_sample_nodes(onnx.load(str(path), load_external_data=False))
    if nodes:
        raise EngineUnavailable(
            f"{path} has GridSample node(s) {', '.join(nodes[:3])}; TensorRT's GridSample is "
            "4-D only. Export the warping network with the gather-based sampler "
            f"(engines.liveportrait.sampler) as {path.parent / 'warping_gather.onnx'}."
        )


def validate_inputs(network: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Check names and shapes against :data:`NETWORKS`; return contiguous float32 arrays."""
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}; expected one of {sorted(NETWORKS)}")
    expected = NETWORKS[network].inputs
    if set(inputs) != set(expected):
        raise ValueError(
            f"{network} takes inputs {sorted(expected)}, got {sorted(inputs)}"
            f" (missing {sorted(set(expected) - set(inputs))},"
            f" unexpected {sorted(set(inputs) - set(expected))})"
        )
    arrays: dict[str, np.ndarray] = {}
    for name, shape in expected.items():
        array = np.asarray(inputs[name])
        if array.shape != shape:
            raise ValueError(f"{network} input {name!r} must have shape {shape}, got {array.shape}")
        arrays[name] = np.ascontiguousarray(array, dtype=np.float32)
    return arrays


def _prune_stale(engine: Path) -> None:
    """Remove engines of the same network and precision built from older ONNX files."""
    network, precision = engine.name.split("-")[:2]
    for old in engine.parent.glob(f"{network}-{precision}-*.engine"):
        if old != engine:
            old.unlink(missing_ok=True)
            _digest_path(old).unlink(missing_ok=True)
            old.with_name(old.name + SIDECAR_SUFFIX).unlink(missing_ok=True)


def _digest_path(engine: Path) -> Path:
    """Where the SHA-256 of a built engine is recorded, to check it before every load."""
    return engine.with_name(engine.name + ".sha256")


def _record_digest(engine: Path, serialized: Any) -> None:
    digest = hashlib.sha256(memoryview(serialized)).hexdigest()
    write_atomically(_digest_path(engine), (digest + "\n").encode())


def _checked_engine(engine: Path) -> bool:
    """True if a cached ``engine`` matches the SHA-256 recorded when it was built; False if it
    has no record (an older cache: build it again); ModelMissing if it was changed since."""
    try:
        recorded = _digest_path(engine).read_text().strip()
    except OSError:
        return False
    check_sha256(
        engine,
        recorded,
        f"Delete {engine} (it is rebuilt on the next start, or by `avatar-app engines build-trt`).",
    )
    return True


# --- TensorRT and CUDA --------------------------------------------------------------------


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or :class:`EngineUnavailable` saying how to install it."""
    try:
        return importlib.import_module("tensorrt")
    except (ImportError, OSError) as exc:
        raise EngineUnavailable(
            f"TensorRT is not installed ({exc}): run `{INSTALL_HINT}` (the CUDA 12 build; "
            "`tensorrt-cu11` for CUDA 11), or use the onnxruntime back end."
        ) from exc


def _import_cuda_torch() -> Any:
    try:
        torch = importlib.import_module("torch")
    except ImportError as exc:
        raise EngineUnavailable(
            "The TensorRT back end uses PyTorch for GPU memory: run "
            "`pip install 'avatar-app[gpu]'` with a CUDA build of torch."
        ) from exc
    if not torch.cuda.is_available():
        if torch.version.cuda is None:
            reason = "this PyTorch is a CPU-only build; install a CUDA build of torch"
        else:
            reason = "no CUDA GPU is visible; check the NVIDIA driver with `nvidia-smi`"
        raise EngineUnavailable(f"TensorRT needs an NVIDIA GPU: {reason}.")
    return torch


@dataclass(frozen=True)
class _Gpu:
    name: str
    capability: tuple[int, int]
    total_memory: int


def _current_gpu(torch: Any) -> _Gpu:
    properties = torch.cuda.get_device_properties(torch.cuda.current_device())
    return _Gpu(properties.name, (properties.major, properties.minor), properties.total_memory)


_LOGGER: Any = None


def _trt_logger(trt: Any) -> Any:
    """One logger for every builder and runtime: keeps errors for messages, forwards the rest."""
    global _LOGGER
    if _LOGGER is None:

        class _Logger(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.errors: list[str] = []

            def log(self, severity: Any, message: str) -> None:
                level = int(severity)  # INTERNAL_ERROR 0, ERROR 1, WARNING 2, INFO 3, VERBOSE 4
                if level <= 1:
                    self.errors.append(message)
                    log.error("TensorRT: %s", message)
                elif level == 2:
                    log.warning("TensorRT: %s", message)
                else:
                    log.debug("TensorRT: %s", message)

        _LOGGER = _Logger()
    return _LOGGER


def _layer_op(trt: Any, layer: Any, layer_type: str) -> str:
    """The activation or unary operation of a layer (``"SIGMOID"``, ``"FLOOR"``), else ``""``."""
    # The Python bindings hand out plain ILayer objects; setting __class__ is the usual way to
    # reach the subclass's attributes (Polygraphy and Torch-TensorRT do it). Note that
    # IActivationLayer.type is the ActivationType, shadowing ILayer.type.
    if layer_type == "ACTIVATION":
        layer.__class__ = trt.IActivationLayer
        return str(layer.type.name)
    if layer_type == "UNARY":
        layer.__class__ = trt.IUnaryLayer
        return str(layer.op.name)
    return ""


def _pin_fp32_layers(trt: Any, network_def: Any, network: str) -> int:
    """Set precision and output types to fp32 on the layers :func:`keeps_fp32` picks."""
    pinned = 0
    for index in range(network_def.num_layers):
        layer = network_def.get_layer(index)
        layer_type = layer.type.name
        if not keeps_fp32(network, layer_type, _layer_op(trt, layer, layer_type)):
            continue
        outputs = [layer.get_output(i) for i in range(layer.num_outputs)]
        if not outputs or any(tensor.dtype != trt.float32 for tensor in outputs):
            continue  # integer or boolean index math is exact already
        layer.precision = trt.float32
        for i in range(layer.num_outputs):
            layer.set_output_type(i, trt.float32)
        pinned += 1
    return pinned


def _build_serialized(
    trt: Any, onnx_file: Path, network: str, precision: str, workspace: int
) -> Any:
    """Parse one ONNX file and build its engine; returns TensorRT's serialized host memory."""
    logger = _trt_logger(trt)
    logger.errors.clear()
    builder = trt.Builder(logger)
    explicit_batch = int(trt.__version__.split(".")[0]) < 10  # the default from TensorRT 10 on
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) if explicit_batch else 0
    network_def = builder.create_network(flags)
    parser = trt.OnnxParser(network_def, logger)
    if not parser.parse_from_file(str(onnx_file)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineUnavailable(
            f"TensorRT {trt.__version__} cannot parse {onnx_file}:\n  "
            + "\n  ".join(errors or ["(no parser message)"])
            + "\nRe-export the networks, or update TensorRT."
        )
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default; fp32 here means fp32
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
        log.info("%s: %d layers kept in fp32", network, _pin_fp32_layers(trt, network_def, network))
    serialized = builder.build_serialized_network(network_def, config)
    if serialized is None:
        raise EngineUnavailable(
            f"TensorRT {trt.__version__} failed to build the {network} engine from {onnx_file}:"
            "\n  "
            + "\n  ".join(logger.errors[-5:] or ["(no error message)"])
            + "\nFree GPU memory (close other GPU programs) and retry, or try without fp16."
        )
    return serialized


def _supports_fp16(trt: Any) -> bool:
    return hasattr(trt.BuilderFlag, "FP16") and hasattr(
        trt.BuilderFlag, "PREFER_PRECISION_CONSTRAINTS"
    )


def build_engines(
    onnx_dir: Path,
    cache_dir: Path | None = None,
    *,
    fp16: bool = True,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Build (or find in the cache) one serialized engine per network of ``RENDER_NETWORKS``.

    Returns network name -> engine file. Raises :class:`ModelMissing` for a missing ONNX file
    and :class:`EngineUnavailable` when TensorRT or a GPU is missing or a build fails.
    """
    say = progress or log.info
    trt = import_tensorrt()
    torch = _import_cuda_torch()
    gpu = _current_gpu(torch)
    if fp16 and not _supports_fp16(trt):
        say(f"TensorRT {trt.__version__} has no fp16 builder flag; building fp32 engines.")
        fp16 = False
    sources = {network: onnx_path(onnx_dir, engine_network(network)) for network in RENDER_NETWORKS}
    missing = [str(path) for path in sources.values() if not path.is_file()]
    if missing:
        raise ModelMissing(
            f"No exported LivePortrait network at {', '.join(missing)}: run "
            "`avatar-app engines export liveportrait` first."
        )
    for network in RENDER_NETWORKS:  # each as the export's manifest records it
        checked_onnx_path(onnx_dir, engine_network(network))
    root = cache_dir if cache_dir is not None else default_cache_dir()
    workspace = min(_WORKSPACE_BYTES, gpu.total_memory // 2)
    engines: dict[str, Path] = {}
    for network in RENDER_NETWORKS:
        source = sources[network]
        precision = network_precision(network, fp16)
        engine = root / engine_relpath(
            network,
            gpu_name=gpu.name,
            capability=gpu.capability,
            trt_version=trt.__version__,
            precision=precision,
            onnx_sha256=cached_sha256(source),
        )
        engines[network] = engine
        if engine.is_file() and _checked_engine(engine):
            say(f"{network}: cached {precision} engine {engine}")
            continue
        check_no_grid_sample(source)
        say(f"{network}: building a {precision} engine from {source.name} (can take minutes)")
        start = time.monotonic()
        serialized = _build_serialized(trt, source, network, precision, workspace)
        try:
            write_atomically(engine, serialized)
            _record_digest(engine, serialized)
        except OSError as exc:
            raise EngineUnavailable(
                f"Cannot write the TensorRT engine {engine} ({exc}): free disk space or pass "
                "another cache folder."
            ) from exc
        _prune_stale(engine)
        say(f"{network}: built in {time.monotonic() - start:.0f} s -> {engine}")
    return engines


# --- Running ------------------------------------------------------------------------------


@dataclass
class _Loaded:
    engine: Any
    context: Any
    inputs: dict[str, tuple[Any, Any]]
    """Input name -> (pinned host tensor, device tensor)."""
    outputs: dict[str, tuple[Any, Any]]


class TensorRTBackend:
    """Runs the LivePortrait networks with TensorRT engines (built or cached on creation)."""

    name = "tensorrt"

    def __init__(
        self,
        onnx_dir: Path,
        cache_dir: Path | None = None,
        fp16: bool = True,
        *,
        progress: Progress | None = None,
    ) -> None:
        trt = import_tensorrt()
        torch = _import_cuda_torch()
        self._trt = trt
        self._torch = torch
        paths = build_engines(onnx_dir, cache_dir, fp16=fp16, progress=progress)
        self._runtime = trt.Runtime(_trt_logger(trt))
        self._device = torch.device("cuda", torch.cuda.current_device())
        self._stream = torch.cuda.Stream(device=self._device)
        self._loaded = {network: self._load(network, path) for network, path in paths.items()}
        self._loaded["warping_gather"] = self._loaded["warping"]
        self._chain_warping_into_generator()
        self._resident: dict[tuple[str, str], np.ndarray] = {}
        precision = "fp16" if fp16 and _supports_fp16(trt) else "fp32"
        self._providers = [f"TensorRT {trt.__version__} {precision} on {_current_gpu(torch).name}"]

    @property
    def providers(self) -> list[str]:
        return list(self._providers)

    def _load(self, network: str, path: Path) -> _Loaded:
        trt, torch = self._trt, self._torch
        engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        context = engine.create_execution_context() if engine is not None else None
        if context is None:
            raise EngineUnavailable(
                f"Cannot load the TensorRT engine {path}: delete {path.parent} and run "
                "`avatar-app engines build-trt` to rebuild it."
            )
        expected = NETWORKS[engine_network(network)]
        loaded = _Loaded(engine, context, {}, {})
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            shape = tuple(engine.get_tensor_shape(name))
            want = (expected.inputs if is_input else expected.outputs).get(name)
            if shape != want or engine.get_tensor_dtype(name) != trt.float32:
                raise EngineUnavailable(
                    f"The engine {path} has tensor {name!r} {shape} "
                    f"{engine.get_tensor_dtype(name)}, expected {want} float32: re-export the "
                    f"networks, delete {path.parent} and rebuild the engines."
                )
            device = torch.empty(shape, dtype=torch.float32, device=self._device)
            host = torch.empty(shape, dtype=torch.float32, pin_memory=True)
            context.set_tensor_address(name, device.data_ptr())
            (loaded.inputs if is_input else loaded.outputs)[name] = (host, device)
        if set(loaded.inputs) != set(expected.inputs) or set(loaded.outputs) != set(
            expected.outputs
        ):
            raise EngineUnavailable(
                f"The engine {path} has inputs {sorted(loaded.inputs)} and outputs "
                f"{sorted(loaded.outputs)}, expected {sorted(expected.inputs)} and "
                f"{sorted(expected.outputs)}: re-export the networks and rebuild the engines."
            )
        return loaded

    def _chain_warping_into_generator(self) -> None:
        """Let the generator read the warping output where it lies on the GPU."""
        _, warped = self._loaded["warping"].outputs["warped"]
        generator = self._loaded["generator"]
        host, _ = generator.inputs["warped"]
        generator.inputs["warped"] = (host, warped)
        generator.context.set_tensor_address("warped", warped.data_ptr())

    def run(self, network: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one engine. Read-only inputs already on the GPU are not copied again: the
        portrait's feature volume and keypoints (made read-only by the renderer) and a warping
        output handed straight to the generator."""
        arrays = validate_inputs(network, inputs)
        loaded = self._loaded.get(network)
        if loaded is None:
            raise ValueError(f"no TensorRT engine for {network!r}; have {sorted(self._loaded)}")
        with self._torch.cuda.stream(self._stream):
            for name, array in arrays.items():
                if self._resident.get((network, name)) is inputs[name]:
                    continue
                host, device = loaded.inputs[name]
                host.numpy()[...] = array
                device.copy_(host, non_blocking=True)
                if not inputs[name].flags.writeable:
                    self._resident[(network, name)] = inputs[name]
                else:
                    self._resident.pop((network, name), None)
            if not loaded.context.execute_async_v3(self._stream.cuda_stream):
                raise EngineUnavailable(f"TensorRT failed to run the {network} engine.")
            for host, device in loaded.outputs.values():
                host.copy_(device, non_blocking=True)
        self._stream.synchronize()
        outputs = {name: host.numpy().copy() for name, (host, _) in loaded.outputs.items()}
        if network in ("warping", "warping_gather"):
            warped = outputs["warped"]
            warped.setflags(write=False)  # its twin already sits in the generator's input
            self._resident[("generator", "warped")] = warped
        return outputs

    def close(self) -> None:
        """Free the execution contexts, engines and GPU buffers (idempotent)."""
        for loaded in self._loaded.values():
            loaded.context = None  # a context must go before its engine
        self._loaded = {}
