"""The bundled obs plugin against a real OBS Studio: each action read back over our own connection."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from conductor.plugins.abi import EventContext, RequestTemplate
from conductor.plugins.loader import LoadedPlugin, LoadOptions, load_plugin, resolve_plugin
from conductor.plugins.runtime import PluginHost
from conductor.signing import SignaturePolicy, TrustStore
from tests.obs_studio import PASSWORD, ObsStudio, free_port

pytestmark = pytest.mark.usefixtures("obs_studio")


def obs_plugin(
    host: PluginHost, tmp_path: Path, url: str, password: str = PASSWORD, spec: str = "obs"
) -> LoadedPlugin:
    options = LoadOptions(
        SignaturePolicy.TRUSTED,
        TrustStore(tmp_path / "none.toml"),
        plugin_config={"url": url, "password": password},
        extra_hosts=(url,),
    )
    return load_plugin(host, resolve_plugin(spec), options)


def act(loaded: LoadedPlugin, action: str, **params: Any) -> tuple[int | None, str]:
    result = loaded.plugin.execute(
        RequestTemplate({"action": action, **params}).render(EventContext())
    )
    assert result.error is None, result.error
    return result.code, " | ".join(text for _, text in result.output.logs)


@pytest.fixture
def obs(host: PluginHost, tmp_path: Path, obs_studio: ObsStudio) -> LoadedPlugin:
    return obs_plugin(host, tmp_path, obs_studio.url)


def test_the_bundled_plugin_is_trusted_without_a_key(obs: LoadedPlugin) -> None:
    assert obs.verdict.bundled and obs.verdict.accepted
    assert obs.metadata.hosts == ("ws://127.0.0.1:4455",)


def test_switch_scene(obs: LoadedPlugin, obs_studio: ObsStudio) -> None:
    with obs_studio.client() as client:
        client.call("SetCurrentProgramScene", sceneName="Scene A")
        assert act(obs, "switch_scene", scene_name="Scene B")[0] == 0
        assert client.call("GetCurrentProgramScene")["currentProgramSceneName"] == "Scene B"
        assert act(obs, "switch_scene", scene_name="Scene A")[0] == 0
        assert client.call("GetCurrentProgramScene")["currentProgramSceneName"] == "Scene A"


def test_mute_and_volume(obs: LoadedPlugin, obs_studio: ObsStudio) -> None:
    with obs_studio.client() as client:
        assert act(obs, "mute", source_name="Mic")[0] == 0
        assert client.call("GetInputMute", inputName="Mic")["inputMuted"] is True
        assert act(obs, "unmute", source_name="Mic")[0] == 0
        assert client.call("GetInputMute", inputName="Mic")["inputMuted"] is False
        assert act(obs, "toggle_mute", source_name="Mic")[0] == 0
        assert client.call("GetInputMute", inputName="Mic")["inputMuted"] is True
        assert act(obs, "set_volume", source_name="Mic", volume_db=-12.0)[0] == 0
        assert abs(client.call("GetInputVolume", inputName="Mic")["inputVolumeDb"] + 12.0) < 0.1


def test_toggle_source_in_the_current_scene(obs: LoadedPlugin, obs_studio: ObsStudio) -> None:
    with obs_studio.client() as client:
        client.call("SetCurrentProgramScene", sceneName="Scene A")
        item = client.call("GetSceneItemId", sceneName="Scene A", sourceName="Banner")[
            "sceneItemId"
        ]
        before = client.call("GetSceneItemEnabled", sceneName="Scene A", sceneItemId=item)[
            "sceneItemEnabled"
        ]
        assert act(obs, "toggle_source", source_name="Banner")[0] == 0
        after = client.call("GetSceneItemEnabled", sceneName="Scene A", sceneItemId=item)[
            "sceneItemEnabled"
        ]
        assert after is (not before)
        assert act(obs, "toggle_source", source_name="Banner", scene_name="Scene A")[0] == 0
        assert (
            client.call("GetSceneItemEnabled", sceneName="Scene A", sceneItemId=item)[
                "sceneItemEnabled"
            ]
            is before
        )


def test_recording_is_confirmed_and_written(obs: LoadedPlugin, obs_studio: ObsStudio) -> None:
    before = set(obs_studio.recordings.iterdir())
    code, log = act(obs, "start_recording")
    assert code == 0 and "recording started" in log
    with obs_studio.client() as client:
        assert client.call("GetRecordStatus")["outputActive"] is True
        time.sleep(1)
        code, log = act(obs, "stop_recording")
        assert code == 0 and "recording stopped" in log
        assert client.call("GetRecordStatus")["outputActive"] is False
    written = set(obs_studio.recordings.iterdir()) - before
    assert len(written) == 1 and next(iter(written)).suffix == ".mkv"


def test_replay_buffer_and_studio_mode(obs: LoadedPlugin, obs_studio: ObsStudio) -> None:
    with obs_studio.client() as client:
        assert act(obs, "toggle_replay_buffer")[0] == 0
        deadline = time.monotonic() + 5
        while (
            not client.call("GetReplayBufferStatus")["outputActive"] and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert client.call("GetReplayBufferStatus")["outputActive"] is True
        assert act(obs, "save_replay_buffer")[0] == 0
        assert act(obs, "toggle_replay_buffer")[0] == 0
        studio = client.call("GetStudioModeEnabled")["studioModeEnabled"]
        assert act(obs, "toggle_studio_mode")[0] == 0
        assert client.call("GetStudioModeEnabled")["studioModeEnabled"] is (not studio)
        assert act(obs, "toggle_studio_mode")[0] == 0


def test_a_stream_that_cannot_connect_is_reported(obs: LoadedPlugin) -> None:
    code, log = act(obs, "start_streaming")
    assert code == 1 and "streaming did not start" in log


def test_obs_errors_carry_code_and_comment(obs: LoadedPlugin) -> None:
    code, log = act(obs, "switch_scene", scene_name="No Such Scene")
    assert code == 1 and "OBS error 600 on SetCurrentProgramScene" in log and "No Such Scene" in log


def test_bad_requests_return_3_naming_the_problem_and_listing_the_actions(
    obs: LoadedPlugin,
) -> None:
    code, log = act(obs, "switch_scene")
    assert code == 3
    assert log.startswith('obs: switch_scene: missing or invalid param "scene_name"; actions: ')
    assert "switch_scene(scene_name), start_recording," in log
    assert "toggle_source(source_name, scene_name?)" in log
    code, log = act(obs, "dance")
    assert code == 3 and log.startswith('obs: unknown action "dance"; actions: switch_scene(')


@pytest.mark.parametrize("spec", ["conductor_wasm_obs_control", "conductor_wasm_obs_control.wasm"])
def test_the_product_pages_file_name_drives_real_obs(
    host: PluginHost, tmp_path: Path, obs_studio: ObsStudio, spec: str
) -> None:
    loaded = obs_plugin(host, tmp_path, obs_studio.url, spec=spec)
    assert loaded.plugin.name == "obs" and loaded.verdict.bundled
    with obs_studio.client() as client:
        client.call("SetCurrentProgramScene", sceneName="Scene A")
        assert act(loaded, "switch_scene", scene_name="Scene B")[0] == 0
        assert client.call("GetCurrentProgramScene")["currentProgramSceneName"] == "Scene B"


def test_wrong_password(host: PluginHost, tmp_path: Path, obs_studio: ObsStudio) -> None:
    code, log = act(
        obs_plugin(host, tmp_path, obs_studio.url, password="wrong"),
        "switch_scene",
        scene_name="Scene A",
    )
    assert code == 1 and "refused the password" in log


def test_obs_not_running(host: PluginHost, tmp_path: Path) -> None:
    started = time.monotonic()
    code, log = act(
        obs_plugin(host, tmp_path, f"ws://127.0.0.1:{free_port()}"), "switch_scene", scene_name="A"
    )
    assert code == 1 and "cannot reach OBS" in log and time.monotonic() - started < 2


def test_obs_killed_between_events_and_restarted(host: PluginHost, tmp_path: Path) -> None:
    studio = ObsStudio(tmp_path / "obs")
    studio.start()
    try:
        obs = obs_plugin(host, tmp_path, studio.url)
        assert act(obs, "switch_scene", scene_name="Scene B")[0] == 0
        studio.kill()
        code, log = act(obs, "switch_scene", scene_name="Scene A")
        assert code == 1 and ("cannot reach OBS" in log or "closed" in log)
        studio.stop()
        studio.start()
        assert act(obs, "switch_scene", scene_name="Scene B")[0] == 0
        with studio.client() as client:
            assert client.call("GetCurrentProgramScene")["currentProgramSceneName"] == "Scene B"
    finally:
        studio.stop()
