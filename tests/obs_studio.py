"""A real OBS Studio, headless under Xvfb, for the obs plugin's tests.

Its configuration is written fresh into a temporary XDG_CONFIG_HOME for every start (never the
user's): obs-websocket enabled with a password on a free port, the first-run wizard kept closed,
a small 320x180 canvas, two scenes, a colour source and an audio-capable media source, recording
into a temporary folder, and a stream server on a closed loopback port.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets.sync.client

from tests.desktop import start_xvfb
from tests.midi_helpers import require

OBS_29_VERSION = (
    29 << 24
) | 2  # LastVersion: with FirstRun, keeps the auto-configuration wizard shut
PASSWORD = "conductor-test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _scene(name: str, items: list[str]) -> dict[str, Any]:
    return {
        "id": "scene",
        "versioned_id": "scene",
        "name": name,
        "settings": {
            "id_counter": len(items),
            "custom_size": False,
            "items": [
                {
                    "name": item,
                    "id": index + 1,
                    "visible": True,
                    "locked": False,
                    "pos": {"x": 0, "y": 0},
                    "scale": {"x": 1, "y": 1},
                    "rot": 0,
                    "align": 5,
                    "bounds_type": 0,
                    "bounds_align": 0,
                    "bounds": {"x": 0, "y": 0},
                    "crop_left": 0,
                    "crop_top": 0,
                    "crop_right": 0,
                    "crop_bottom": 0,
                }
                for index, item in enumerate(items)
            ],
        },
    }


class ObsStudio:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.recordings = root / "recordings"
        self.recordings.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.display: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        config = self.root / "config"
        obs = config / "obs-studio"
        (obs / "basic" / "profiles" / "Test").mkdir(parents=True, exist_ok=True)
        (obs / "basic" / "scenes").mkdir(parents=True, exist_ok=True)
        (obs / "global.ini").write_text(
            f"[General]\nFirstRun=true\nLastVersion={OBS_29_VERSION}\nEnableAutoUpdates=false\n"
            "[Basic]\nProfile=Test\nProfileDir=Test\nSceneCollection=Test\nSceneCollectionFile=Test\n"
            f"[OBSWebSocket]\nFirstLoad=false\nServerEnabled=true\nServerPort={self.port}\n"
            f"AlertsEnabled=false\nAuthRequired=true\nServerPassword={PASSWORD}\n"
        )
        (obs / "basic" / "profiles" / "Test" / "basic.ini").write_text(
            "[General]\nName=Test\n[Video]\nBaseCX=320\nBaseCY=180\nOutputCX=320\nOutputCY=180\nFPSType=0\n"
            "FPSCommon=10\n[Output]\nMode=Simple\n[SimpleOutput]\n"
            f"FilePath={self.recordings}\nRecFormat=mkv\nRecQuality=Stream\nRecEncoder=x264\nStreamEncoder=x264\n"
            "VBitrate=300\nABitrate=64\nRecRB=true\nRecRBTime=5\nRecRBSize=64\n"
        )
        (obs / "basic" / "profiles" / "Test" / "service.json").write_text(
            json.dumps(
                {
                    "type": "rtmp_custom",
                    "settings": {
                        "server": "rtmp://127.0.0.1:9/live",
                        "key": "test",
                        "use_auth": False,
                    },
                }
            )
        )
        (obs / "basic" / "scenes" / "Test.json").write_text(
            json.dumps(
                {
                    "name": "Test",
                    "current_scene": "Scene A",
                    "current_program_scene": "Scene A",
                    "scene_order": [{"name": "Scene A"}, {"name": "Scene B"}],
                    "sources": [
                        _scene("Scene A", ["Banner", "Mic"]),
                        _scene("Scene B", []),
                        {
                            "id": "color_source_v3",
                            "versioned_id": "color_source_v3",
                            "name": "Banner",
                            "settings": {"color": 4278190335, "width": 64, "height": 32},
                        },
                        # A media source with no file has audio controls and needs no sound server.
                        {
                            "id": "ffmpeg_source",
                            "versioned_id": "ffmpeg_source",
                            "name": "Mic",
                            "settings": {},
                        },
                    ],
                    "groups": [],
                    "transitions": [],
                    "current_transition": "Fade",
                    "transition_duration": 300,
                }
            )
        )
        return config

    def start(self) -> None:
        self.display, display = start_xvfb(self.root / "xvfb.log", "1024x768x24")
        config = self._write_config()
        proxy = "http://127.0.0.1:9"  # Debian's OBS calls home at start: send it nowhere
        env = {
            **os.environ,
            "DISPLAY": display,
            "XDG_CONFIG_HOME": str(config),
            "HOME": str(self.root),
            "http_proxy": proxy,
            "https_proxy": proxy,
            "HTTP_PROXY": proxy,
            "HTTPS_PROXY": proxy,
            "LIBGL_ALWAYS_SOFTWARE": "1",
        }
        with (self.root / "obs.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "obs",
                    "--multi",
                    "--disable-updater",
                    "--disable-shutdown-check",
                    "--profile",
                    "Test",
                    "--collection",
                    "Test",
                ],
                env=env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"OBS exited: {(self.root / 'obs.log').read_text()[-3000:]}; Xvfb ({display}): "
                    f"{(self.root / 'xvfb.log').read_text()[-2000:]}"
                )
            try:
                with self.client():
                    return
            except (OSError, websockets.exceptions.WebSocketException):
                time.sleep(0.1)
        raise AssertionError("OBS did not open its WebSocket server within 30 s")

    def stop(self) -> None:
        """SIGINT for a clean exit (SIGTERM would skip it); a process that hangs is killed after 3 s."""
        for process in (self.process, self.display):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.process = self.display = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def client(self) -> ObsClient:
        return ObsClient(self.url, PASSWORD)


class ObsClient:
    """Our own obs-websocket client, to read OBS's state back independently of the plugin."""

    def __init__(self, url: str, password: str) -> None:
        self.connection = websockets.sync.client.connect(url, open_timeout=2).__enter__()
        hello = json.loads(self.connection.recv(timeout=2))
        auth = hello["d"]["authentication"]
        secret = base64.b64encode(
            hashlib.sha256((password + auth["salt"]).encode()).digest()
        ).decode()
        answer = base64.b64encode(
            hashlib.sha256((secret + auth["challenge"]).encode()).digest()
        ).decode()
        self.connection.send(
            json.dumps(
                {"op": 1, "d": {"rpcVersion": 1, "authentication": answer, "eventSubscriptions": 0}}
            )
        )
        assert json.loads(self.connection.recv(timeout=2))["op"] == 2
        self.counter = 0

    def __enter__(self) -> ObsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.connection.close()

    def call(self, request_type: str, **data: Any) -> dict[str, Any]:
        self.counter += 1
        request_id = f"test-{self.counter}"
        self.connection.send(
            json.dumps(
                {
                    "op": 6,
                    "d": {
                        "requestType": request_type,
                        "requestId": request_id,
                        "requestData": data,
                    },
                }
            )
        )
        while True:
            reply = json.loads(self.connection.recv(timeout=5))
            if reply["op"] == 7 and reply["d"]["requestId"] == request_id:
                status = reply["d"]["requestStatus"]
                assert status["result"], f"{request_type}: {status}"
                return reply["d"].get("responseData", {})


@pytest.fixture(scope="session")
def obs_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObsStudio]:
    require("obs")
    require("Xvfb")
    studio = ObsStudio(tmp_path_factory.mktemp("obs"))
    studio.start()
    yield studio
    studio.stop()
