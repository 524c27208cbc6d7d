"""VirtualCameraSink against a fake pyvirtualcam backend that records what it is sent."""

from __future__ import annotations

import glob
import logging
import platform
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import pytest

pyvirtualcam = pytest.importorskip("pyvirtualcam")
from pyvirtualcam import camera as pvc_camera  # noqa: E402
from pyvirtualcam.util import decode_fourcc  # noqa: E402

from avatar_app.live.virtual_camera import (  # noqa: E402
    ColourBars,
    VirtualCameraSink,
    open_fix,
    virtual_camera_backends,
)
from avatar_app.pipeline.frames import RenderedFrame  # noqa: E402
from engines.errors import DeviceError  # noqa: E402

WIDTH, HEIGHT, FPS = 64, 48, 30
BACKEND = "avatar-test"
RED = (255, 0, 0)
BLUE = (0, 0, 255)


class RecordingBackend:
    """A pyvirtualcam backend (the duck-typed interface of ``pyvirtualcam.Backend``)."""

    instances: ClassVar[list[RecordingBackend]] = []
    failures_to_come: ClassVar[int] = 0

    def __init__(
        self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw: Any
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.fourcc = fourcc
        self._device = device or "fake-camera"
        self.frames: list[np.ndarray] = []
        self.flat_shapes: set[tuple[int, ...]] = set()
        self.closed = False
        self._lock = threading.Lock()
        RecordingBackend.instances.append(self)

    def send(self, frame: np.ndarray) -> None:
        # pyvirtualcam hands backends a flat, C-contiguous uint8 array in the chosen format.
        with self._lock:
            if RecordingBackend.failures_to_come > 0:
                RecordingBackend.failures_to_come -= 1
                raise OSError("device went away")
            self.flat_shapes.add(frame.shape)
            self.frames.append(frame.reshape(self.height, self.width, 3).copy())

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return self._device

    def native_fourcc(self) -> int:
        return self.fourcc

    def snapshot(self) -> list[np.ndarray]:
        with self._lock:
            return list(self.frames)


@pytest.fixture
def backend() -> Iterator[type[RecordingBackend]]:
    """Registers the recording backend for one test, then removes it from pyvirtualcam."""
    RecordingBackend.instances = []
    RecordingBackend.failures_to_come = 0
    pyvirtualcam.register_backend(BACKEND, RecordingBackend)
    yield RecordingBackend
    del pvc_camera.BACKENDS[BACKEND]


def _sink(**kw: Any) -> VirtualCameraSink:
    return VirtualCameraSink(WIDTH, HEIGHT, FPS, backend=BACKEND, **kw)


def _solid(colour: tuple[int, int, int]) -> np.ndarray:
    frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    frame[:] = colour
    return frame


def _frame(rgb: np.ndarray) -> RenderedFrame:
    now = time.monotonic_ns()
    return RenderedFrame(rgb, due_ns=now, heard_ns=now)


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_red_arrives_as_red_in_rgb_order(backend: type[RecordingBackend]) -> None:
    with _sink() as sink:
        sink.submit(_frame(_solid(RED)))
        fake = backend.instances[0]
        _wait_for(lambda: any((f == RED).all() for f in fake.snapshot()))
    assert decode_fourcc(fake.fourcc) == pyvirtualcam.PixelFormat.RGB.value
    assert fake.flat_shapes == {(HEIGHT * WIDTH * 3,)}
    red = next(f for f in fake.snapshot() if (f == RED).all())
    assert red.dtype == np.uint8
    assert red.shape == (HEIGHT, WIDTH, 3)
    assert tuple(red[0, 0]) == RED


def test_sends_at_about_the_frame_rate_and_repeats_the_last_frame(
    backend: type[RecordingBackend],
) -> None:
    with _sink() as sink:
        sink.submit(_frame(_solid(BLUE)))
        time.sleep(1.0)
    stats = sink.stats()
    frames = backend.instances[0].snapshot()
    assert 20 <= len(frames) <= 40
    assert stats["sent"] == len(frames)
    assert stats["repeated"] >= 10
    blue_from = next(i for i, f in enumerate(frames) if (f == BLUE).all())
    assert all((f == BLUE).all() for f in frames[blue_from:])


def test_shows_a_placeholder_before_the_first_frame(backend: type[RecordingBackend]) -> None:
    with _sink():
        fake = backend.instances[0]
        _wait_for(lambda: len(fake.snapshot()) >= 2)
    first = fake.snapshot()[0]
    assert first.shape == (HEIGHT, WIDTH, 3)
    assert len(np.unique(first)) == 1


def test_latency_stats_are_populated(backend: type[RecordingBackend]) -> None:
    with _sink() as sink:
        assert sink.stats()["latency_ms_p50"] is None
        for colour in (RED, BLUE, RED):
            sink.submit(_frame(_solid(colour)))
            time.sleep(0.1)
        _wait_for(lambda: sink.stats()["latency_ms_p50"] is not None)
        stats = sink.stats()
    p50, p95 = stats["latency_ms_p50"], stats["latency_ms_p95"]
    assert p50 is not None and p95 is not None
    assert 0 <= p50 <= p95 < 1000


def test_a_failing_send_is_counted_and_the_sink_keeps_going(
    backend: type[RecordingBackend], caplog: pytest.LogCaptureFixture
) -> None:
    backend.failures_to_come = 5
    with caplog.at_level(logging.WARNING), _sink() as sink:
        _wait_for(lambda: sink.stats()["sent"] >= 3)
        sink.submit(_frame(_solid(RED)))
        fake = backend.instances[0]
        _wait_for(lambda: any((f == RED).all() for f in fake.snapshot()))
        assert sink.running
        stats = sink.stats()
    assert stats["errors"] == 5
    assert "send failed" in caplog.text


def test_test_pattern_moves_and_ignores_submitted_frames(
    backend: type[RecordingBackend],
) -> None:
    with _sink(test_pattern=True) as sink:
        sink.submit(_frame(_solid(RED)))
        fake = backend.instances[0]
        _wait_for(lambda: len(fake.snapshot()) >= 6)
        stats = sink.stats()
    frames = fake.snapshot()
    assert not np.array_equal(frames[0], frames[5])
    assert not any((f == RED).all() for f in frames)
    assert stats["repeated"] == 0


def test_colour_bars_are_in_rgb_order() -> None:
    bars = ColourBars(700, 100, FPS).next()
    # Bar 5 of 7 is red and bar 6 blue; sample their upper middle, away from the labels.
    assert tuple(bars[50, 550]) == RED
    assert tuple(bars[50, 650]) == BLUE


def test_stop_is_idempotent_and_closes_the_camera(backend: type[RecordingBackend]) -> None:
    sink = _sink()
    sink.start()
    assert sink.backend_name == BACKEND
    assert sink.device_name == "fake-camera"
    sink.stop()
    sink.stop()
    assert not sink.running
    assert backend.instances[0].closed


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((HEIGHT, WIDTH, 3), np.float32),
        np.zeros((HEIGHT, WIDTH), np.uint8),
        np.zeros((HEIGHT, WIDTH, 4), np.uint8),
        np.zeros((HEIGHT + 2, WIDTH, 3), np.uint8),
    ],
    ids=["float", "grey", "rgba", "wrong-size"],
)
def test_submit_rejects_frames_of_the_wrong_kind(frame: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        _sink().submit(RenderedFrame(frame, 0))


def test_the_fake_backend_is_listed(backend: type[RecordingBackend]) -> None:
    assert BACKEND in virtual_camera_backends()


def test_unknown_backend_is_a_device_error() -> None:
    with pytest.raises(DeviceError, match="Unknown virtual camera backend"):
        VirtualCameraSink(WIDTH, HEIGHT, FPS, backend="no-such-backend").start()


@pytest.mark.skipif(
    platform.system() != "Linux" or bool(glob.glob("/dev/video*")),
    reason="needs a Linux machine without video devices",
)
def test_default_backend_without_a_device_names_the_fix() -> None:
    assert virtual_camera_backends() == ["v4l2loopback"]
    sink = VirtualCameraSink(WIDTH, HEIGHT, FPS)
    with pytest.raises(DeviceError) as caught:
        sink.start()
    message = str(caught.value)
    assert "modprobe v4l2loopback" in message
    assert "video` group" in message
    assert "/dev/video[0-99]" in message  # pyvirtualcam's own words
    assert not sink.running


@pytest.mark.parametrize("system", ["Windows", "Darwin"])
def test_the_fix_elsewhere_points_to_obs(system: str) -> None:
    assert "OBS Studio 30 or newer" in open_fix(system)
