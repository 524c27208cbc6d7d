"""A private PulseAudio server for tests: a null sink ``vsink`` whose monitor is a real-time mic.

``pulse_server()`` starts ``pulseaudio`` in user mode (also as root) with its own runtime
directory and socket, and yields the environment clients need. Sound played into ``vsink``
(``play_wav``) comes out of the ``vsink.monitor`` source, which is the default source, so
PortAudio's ALSA device ``pulse`` records it (``libasound2-plugins`` provides that device).
``sounddevice_via(server)`` points this process's PortAudio at the server.

The null sink only renders (and its monitor only delivers) while something plays into it, so a
"keep-alive" stream of silence is played for as long as the server runs.

Debian packages: pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SINK = "vsink"
_TOOLS = ("pulseaudio", "pactl", "paplay", "pacat")
_START_TIMEOUT = 10.0


class PulseServer(dict[str, str]):
    """The environment variables a client needs to reach the server, plus control of it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "native"
        super().__init__(
            PULSE_SERVER=f"unix:{self.socket}",
            PULSE_CLIENTCONFIG=str(directory / "client.conf"),
            PULSE_COOKIE=str(directory / "cookie"),
        )
        (directory / "client.conf").write_text("autospawn = no\n")
        self._server: subprocess.Popen[bytes] | None = None
        self._keep_alive: subprocess.Popen[bytes] | None = None

    @property
    def client_env(self) -> dict[str, str]:
        """This process's environment with the server's variables."""
        return {**os.environ, **self}

    @property
    def log(self) -> str:
        """What the server printed so far."""
        path = self.directory / "pulseaudio.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        """Start the server and wait until ``pactl info`` answers (fails the test otherwise)."""
        runtime = self.directory / "runtime"
        runtime.mkdir(exist_ok=True)
        env = {
            **os.environ,
            # Its own home, runtime and state directories: nothing of the user's is touched,
            # and root may run a user-mode server.
            "HOME": str(self.directory),
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_CONFIG_HOME": str(self.directory / "config"),
            "PULSE_RUNTIME_PATH": str(runtime),
            "PULSE_STATE_PATH": str(self.directory / "state"),
        }
        command = [
            "pulseaudio",
            "-n",  # no default.pa: only the modules below
            "--daemonize=no",
            "--system=no",
            "--use-pid-file=no",
            "--exit-idle-time=-1",
            "--disable-shm=yes",
            "--log-target=stderr",
            "-L",
            f"module-native-protocol-unix auth-anonymous=1 socket={self.socket}",
            "-L",
            f"module-null-sink sink_name={SINK}",
        ]
        with open(self.directory / "pulseaudio.log", "ab") as log:
            self._server = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._answers():
            if self._server.poll() is not None:
                pytest.fail(f"pulseaudio exited with {self._server.returncode}:\n{self.log}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"pulseaudio did not answer within {_START_TIMEOUT} s:\n{self.log}")
            time.sleep(0.05)
        self._pactl("set-default-source", f"{SINK}.monitor")
        # The null sink renders (and its monitor records) only while something plays into it.
        with open("/dev/zero", "rb") as zeros:
            self._keep_alive = subprocess.Popen(
                [
                    "pacat",
                    "--playback",
                    "-d",
                    SINK,
                    "--format=s16le",
                    "--rate=16000",
                    "--channels=1",
                ],
                env=self.client_env,
                stdin=zeros,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def kill(self) -> None:
        """Kill the server (SIGKILL, as a crash would) and the keep-alive stream."""
        for process in (self._keep_alive, self._server):
            if process is not None and process.poll() is None:
                process.kill()
            if process is not None:
                process.wait(5)
        self._keep_alive = self._server = None

    def play_wav(self, path: str | os.PathLike[str]) -> subprocess.Popen[bytes]:
        """Start playing a WAV into the null sink in the background (``paplay -d vsink``)."""
        return subprocess.Popen(
            ["paplay", "-d", SINK, str(path)],
            env=self.client_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def _answers(self) -> bool:
        result = subprocess.run(
            ["pactl", "info"], env=self.client_env, capture_output=True, timeout=5, check=False
        )
        return result.returncode == 0

    def _pactl(self, *args: str) -> None:
        subprocess.run(["pactl", *args], env=self.client_env, check=True, capture_output=True)


@contextmanager
def pulse_server() -> Iterator[PulseServer]:
    """A running private PulseAudio server; skips the test if PulseAudio is not installed."""
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"PulseAudio is not installed (missing {', '.join(missing)}): "
            "apt-get install pulseaudio pulseaudio-utils"
        )
    directory = Path(tempfile.mkdtemp(prefix="pulse-test-"))
    server = PulseServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def sounddevice_via(server: PulseServer) -> Iterator[None]:
    """Point this process's PortAudio at ``server``; its ALSA device ``pulse`` then records from
    ``vsink.monitor``. PortAudio lists devices when it starts, so it is restarted here (and again
    afterwards); skips when the ``pulse`` device does not appear (libasound2-plugins missing)."""
    try:
        import sounddevice as sd
    except OSError as exc:
        pytest.skip(f"PortAudio is missing ({exc}): apt-get install libportaudio2")
    saved = {key: os.environ.get(key) for key in server}
    os.environ.update(server)
    try:
        sd._terminate()
        sd._initialize()
        names = [d["name"] for d in sd.query_devices() if d["max_input_channels"] > 0]
        if "pulse" not in names:
            pytest.skip(
                f"PortAudio has no 'pulse' input (inputs: {names}): "
                "apt-get install libasound2-plugins"
            )
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        sd._terminate()
        sd._initialize()
