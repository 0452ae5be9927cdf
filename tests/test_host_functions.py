"""Host functions of module `conductor` against real loopback servers and real processes."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conductor.plugins.abi import EventContext, RequestTemplate
from conductor.plugins.capabilities import Capability
from conductor.plugins.host._state import HostCallError
from conductor.plugins.host.codes import Code
from conductor.plugins.host.http import parse_request as parse_http_request
from conductor.plugins.limits import Limits
from conductor.plugins.loader import LoadedPlugin
from conductor.plugins.runtime import PluginHost
from tests.plugin_helpers import load_unsigned
from tests.servers import WebSocketServer

ALL = frozenset({Capability.NETWORK, Capability.SUBPROCESS, Capability.SYSTEM_CONTROL})
DENIED, INVALID, TIMEOUT, IO, TOO_BIG, NOT_FOUND, FAULT, CLOSED = (
    Code.DENIED,
    Code.INVALID,
    Code.TIMEOUT,
    Code.IO,
    Code.TOO_BIG,
    Code.NOT_FOUND,
    Code.FAULT,
    Code.CLOSED,
)


def probe(
    host: PluginHost, tmp_path: Path, limits: Limits | None = None, **options: Any
) -> LoadedPlugin:
    options.setdefault("approvals", ALL)
    return load_unsigned(host, "host_probe", tmp_path, limits, **options)


def call(
    loaded: LoadedPlugin, fn: str, arg: Any = None, **extra: Any
) -> tuple[int | None, str, str | None]:
    """Run one host function through the probe: (code, logged text, error)."""
    params: dict[str, Any] = {"fn": fn, **extra}
    if arg is not None:
        params["arg"] = arg if isinstance(arg, str) else json.dumps(arg)
    result = loaded.plugin.execute(RequestTemplate(params).render(EventContext()))
    text = result.output.logs[-1][1] if result.output.logs else ""
    return result.code, text, result.error


def answer(text: str) -> Any:
    assert text.startswith("answer "), text
    body = text.split(" ", 2)[2]
    return json.loads(body) if body[:1] in "{[0123456789-" else body


# -- ungated -------------------------------------------------------------------------------


def test_config_get_and_error_message(host: PluginHost, tmp_path: Path) -> None:
    loaded = probe(
        host, tmp_path, plugin_config={"token": "abc", "volume": 5, "commands": {"hi": ["echo"]}}
    )
    assert call(loaded, "config_get", "token")[:2] == (0, "answer 3 abc")
    assert answer(call(loaded, "config_get", "volume")[1]) == 5
    assert answer(call(loaded, "config_get", "commands")[1]) == {"hi": ["echo"]}
    code, text, _ = call(loaded, "config_get", "nope")
    assert (
        code == NOT_FOUND and "config key 'nope' is not set in [plugins.config.host_probe]" in text
    )


def test_secrets_are_redacted_in_logs_and_errors(
    host: PluginHost, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    loaded = probe(
        host, tmp_path, plugin_config={"token": "s3cr3t-value"}, secrets=frozenset({"s3cr3t-value"})
    )
    code, text, _ = call(loaded, "config_get", "token")
    assert code == 0 and text == "answer 12 ***"  # the plugin got it; its log line shows ***
    code, text, _ = call(loaded, "http_request", {"url": "http://127.0.0.1:9/?t=s3cr3t-value"})
    assert code == DENIED
    assert "s3cr3t-value" not in caplog.text and "/?t=***" in caplog.text


def test_out_of_bounds_pointers_to_every_function_are_faults(
    host: PluginHost, tmp_path: Path
) -> None:
    loaded = load_unsigned(host, "host_oob", tmp_path, approvals=ALL)
    result = loaded.plugin.execute(b"{}")
    assert result.code == 0, result
    good = probe(host, tmp_path)
    assert call(good, "config_get", "missing")[0] == NOT_FOUND


# -- capability gate -------------------------------------------------------------------------


def test_every_gated_function_is_denied_without_its_grant(
    host: PluginHost, tmp_path: Path, http_server, caplog: pytest.LogCaptureFixture
) -> None:
    loaded = probe(host, tmp_path, approvals=frozenset())  # Network is low risk: auto-granted
    assert loaded.plugin.granted == {Capability.NETWORK}
    code, text, _ = call(loaded, "exec", {"argv": ["echo", "hi"]})
    assert code == DENIED and "Subprocess capability is not granted" in text
    code, text, _ = call(loaded, "system", {"op": "notify", "title": "x"})
    assert code == DENIED and "SystemControl" in text
    assert "conductor plugin grant host_probe Subprocess" in caplog.text
    assert "conductor plugin grant host_probe SystemControl" in caplog.text
    for _ in range(3):
        call(loaded, "exec", {"argv": ["echo"]})
    assert caplog.text.count("exec denied") == 1  # once per plugin, function and minute
    assert call(loaded, "config_get", "x")[0] == NOT_FOUND  # the same instance goes on serving


# -- HTTP ------------------------------------------------------------------------------------


def test_http_allowed_host(host: PluginHost, tmp_path: Path, http_server) -> None:
    loaded = probe(host, tmp_path, extra_hosts=(http_server.url,))
    code, text, _ = call(
        loaded,
        "http_request",
        {
            "method": "POST",
            "url": f"{http_server.url}/echo?a=1",
            "headers": [["X-Test", "yes"]],
            "body": "payload",
        },
    )
    assert code == 0, text
    response = answer(text)
    assert response["status"] == 200 and response["url"] == f"{http_server.url}/echo?a=1"
    echoed = json.loads(response["body"])
    assert echoed["method"] == "POST" and echoed["body"] == "payload" and echoed["query"] == "a=1"
    assert echoed["headers"]["X-Test"] == "yes"
    binary = answer(call(loaded, "http_request", {"url": f"{http_server.url}/binary"})[1])
    import base64

    assert base64.b64decode(binary["body_base64"]) == bytes(range(256))
    missing = answer(call(loaded, "http_request", {"url": f"{http_server.url}/missing"})[1])
    assert missing["status"] == 404 and missing["body"] == "not here"  # an answer, not an error


@pytest.mark.parametrize("variant", ["other-port", "other-scheme", "undeclared-host"])
def test_http_denials_contact_nothing(
    host: PluginHost, tmp_path: Path, http_server, other_http_server, variant: str
) -> None:
    loaded = probe(host, tmp_path, extra_hosts=(http_server.url,))
    url = {
        "other-port": f"{other_http_server.url}/hello",
        "other-scheme": f"https://127.0.0.1:{http_server.port}/hello",
        "undeclared-host": f"http://localhost:{http_server.port}/hello",
    }[variant]
    code, text, _ = call(loaded, "http_request", {"url": url})
    assert code == DENIED, text
    assert "[plugins.hosts]" in text
    assert http_server.recorded.connections == 0 and other_http_server.recorded.connections == 0
    assert call(loaded, "http_request", {"url": f"{http_server.url}/hello"})[0] == 0


def test_declared_plain_http_host_needs_approval(host: PluginHost, tmp_path: Path) -> None:
    loaded = probe(host, tmp_path)
    code, text, _ = call(loaded, "http_request", {"url": "http://127.0.0.1:1/"})
    assert code == DENIED and "declared but not approved" in text
    assert "conductor plugin grant host_probe Network --host http://127.0.0.1:1" in text


def test_redirect_to_an_unlisted_host_is_never_reached(
    host: PluginHost, tmp_path: Path, http_server, other_http_server
) -> None:
    http_server.routes["/go"] = lambda h, _: h._send(
        302, b"", {"Location": f"{other_http_server.url}/hello"}
    )
    loaded = probe(host, tmp_path, extra_hosts=(http_server.url,))
    code, _, _ = call(loaded, "http_request", {"url": f"{http_server.url}/go"})
    assert code == DENIED and other_http_server.recorded.connections == 0


def test_redirects_drop_credentials_across_origins(
    host: PluginHost, tmp_path: Path, http_server, other_http_server
) -> None:
    http_server.routes["/same"] = lambda h, _: h._send(302, b"", {"Location": "/echo"})
    http_server.routes["/cross"] = lambda h, _: h._send(
        307, b"", {"Location": f"{other_http_server.url}/echo"}
    )
    loaded = probe(host, tmp_path, extra_hosts=(http_server.url, other_http_server.url))
    secret = [["Authorization", "Bearer t0ken"], ["Cookie", "id=1"], ["X-Keep", "1"]]
    same = answer(
        call(loaded, "http_request", {"url": f"{http_server.url}/same", "headers": secret})[1]
    )
    assert json.loads(same["body"])["headers"]["Authorization"] == "Bearer t0ken"
    cross = answer(
        call(
            loaded,
            "http_request",
            {
                "url": f"{http_server.url}/cross",
                "headers": secret,
                "method": "POST",
                "body": "kept by 307",
            },
        )[1]
    )
    headers = json.loads(cross["body"])["headers"]
    assert "Authorization" not in headers and "Cookie" not in headers and headers["X-Keep"] == "1"
    assert json.loads(cross["body"])["body"] == "kept by 307"
    assert cross["url"] == f"{other_http_server.url}/echo"
    http_server.routes["/loop"] = lambda h, _: h._send(302, b"", {"Location": "/loop"})
    code, text, _ = call(loaded, "http_request", {"url": f"{http_server.url}/loop"})
    assert code == IO and "more than 5 redirects" in text


def test_a_trickling_server_is_cut_at_the_deadline(
    host: PluginHost, tmp_path: Path, http_server
) -> None:
    loaded = probe(host, tmp_path, Limits(timeout_ms=400), extra_hosts=(http_server.url,))
    started = time.monotonic()
    result = loaded.plugin.execute(
        RequestTemplate(
            {"fn": "http_request", "arg": json.dumps({"url": f"{http_server.url}/trickle"})}
        ).render(EventContext())
    )
    elapsed = time.monotonic() - started
    assert result.code == TIMEOUT or (result.error and "wall-clock" in result.error)
    assert elapsed < 0.8  # 1000 bytes at 20/s would take 50 s
    own_timeout = call(
        probe(host, tmp_path, extra_hosts=(http_server.url,)),
        "http_request",
        {"url": f"{http_server.url}/trickle", "timeout_ms": 200},
    )
    assert own_timeout[0] == TIMEOUT


def test_response_over_the_cap(host: PluginHost, tmp_path: Path, http_server) -> None:
    loaded = probe(host, tmp_path, extra_hosts=(http_server.url,))
    code, text, _ = call(loaded, "http_request", {"url": f"{http_server.url}/big"})
    assert code == TOO_BIG and "over 4194304 bytes" in text
    # A request body over 1 MiB cannot even reach the host inside a 1 MiB request: check the parser.
    with pytest.raises(HostCallError) as caught:
        parse_http_request(
            {"url": f"{http_server.url}/echo", "method": "POST", "body": "x" * (1024 * 1024 + 1)}
        )
    assert caught.value.code == TOO_BIG


def test_tls_is_verified_against_the_local_ca(
    host: PluginHost, tmp_path: Path, https_server, local_ca, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"https://localhost:{https_server.port}"
    loaded = probe(host, tmp_path, extra_hosts=(url,))
    code, text, _ = call(loaded, "http_request", {"url": f"{url}/hello"})
    assert code == IO and "TLS certificate verification failed (CERTIFICATE_VERIFY_FAILED" in text
    monkeypatch.setenv("SSL_CERT_FILE", str(local_ca.ca_file))
    code, text, _ = call(loaded, "http_request", {"url": f"{url}/hello"})
    assert code == 0 and answer(text)["body"] == '{"hello": "world"}'


def test_unknown_dns_name(host: PluginHost, tmp_path: Path) -> None:
    loaded = probe(host, tmp_path, extra_hosts=("http://no-such-host.invalid",))
    code, text, _ = call(loaded, "http_request", {"url": "http://no-such-host.invalid/"})
    assert code in (IO, TIMEOUT) and "no-such-host.invalid" in text


def test_malformed_requests_are_invalid(host: PluginHost, tmp_path: Path) -> None:
    loaded = probe(host, tmp_path)
    for arg in (
        "not json",
        "[1]",
        {"url": 5},
        {"url": "ftp://x/"},
        {"url": "http://a/", "method": "BREW"},
        {"url": "http://a/", "headers": [["a"]]},
        {"url": "http://a/", "body_base64": "%%%"},
    ):
        assert call(loaded, "http_request", arg)[0] == INVALID, arg


def test_a_guest_looping_on_http_request_ends_at_its_deadline(
    host: PluginHost, tmp_path: Path, http_server
) -> None:
    loaded = probe(
        host, tmp_path, Limits(timeout_ms=500, max_fuel=10**12), extra_hosts=(http_server.url,)
    )
    started = time.monotonic()
    code, _, error = call(loaded, "http_request", {"url": f"{http_server.url}/hello"}, repeat=-1)
    assert time.monotonic() - started < 1.5
    assert code == TIMEOUT or (error is not None and "wall-clock limit of 500 ms" in error)
    assert call(probe(host, tmp_path), "config_get", "x")[0] == NOT_FOUND


# -- WebSockets ------------------------------------------------------------------------------


def ws_probe(host: PluginHost, tmp_path: Path, server: WebSocketServer) -> LoadedPlugin:
    return probe(host, tmp_path, extra_hosts=(server.url,))


def test_websocket_message_across_two_calls_and_ping_while_idle(
    host: PluginHost, tmp_path: Path, ws_server: WebSocketServer
) -> None:
    loaded = ws_probe(host, tmp_path, ws_server)
    handle, text, _ = call(loaded, "ws_connect", {"url": ws_server.url})
    assert handle == 1, text
    assert call(loaded, "ws_send", "hello", handle=1)[0] == 0
    code, text, _ = call(loaded, "ws_recv", handle=1, timeout_ms=2000)  # a second execute call
    assert (code, text) == (0, "answer 11 echo: hello")
    assert call(loaded, "ws_send", "ping", handle=1)[0] == 0
    time.sleep(0.5)  # idle: the server pings now, and the client answers between calls
    assert call(loaded, "ws_recv", handle=1, timeout_ms=2000)[1] == "answer 6 pinged"
    assert ws_server.pongs == 1
    assert call(loaded, "ws_recv", handle=1, timeout_ms=100)[0] == TIMEOUT
    assert call(loaded, "ws_send", "still open", handle=1)[0] == 0
    assert call(loaded, "ws_recv", handle=1, timeout_ms=2000)[1] == "answer 16 echo: still open"


def test_websocket_peer_close_and_our_close(
    host: PluginHost, tmp_path: Path, ws_server: WebSocketServer
) -> None:
    loaded = ws_probe(host, tmp_path, ws_server)
    assert call(loaded, "ws_connect", {"url": ws_server.url})[0] == 1
    call(loaded, "ws_send", "close", handle=1)
    code, text, _ = call(loaded, "ws_recv", handle=1, timeout_ms=2000)
    assert code == CLOSED and "closed by the peer" in text
    assert call(loaded, "ws_close", handle=1)[0] == 0
    assert call(loaded, "ws_recv", handle=1, timeout_ms=10)[0] == INVALID  # the handle is freed


def test_websocket_queue_overflow_closes_rather_than_drops(
    host: PluginHost, tmp_path: Path, ws_server: WebSocketServer
) -> None:
    loaded = ws_probe(host, tmp_path, ws_server)
    call(loaded, "ws_connect", {"url": ws_server.url})
    call(loaded, "ws_send", "flood 400", handle=1)
    deadline = time.monotonic() + 5
    while not ws_server.close_codes and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ws_server.close_codes == [1009]
    received = [call(loaded, "ws_recv", handle=1, timeout_ms=500) for _ in range(257)]
    assert [text for _, text, _ in received[:2]] == ["answer 7 flood 0", "answer 7 flood 1"]
    assert received[256][0] == CLOSED and "overflow" in received[256][1]


def test_websocket_handle_limit_and_cleanup_on_discard(
    host: PluginHost, tmp_path: Path, ws_server: WebSocketServer
) -> None:
    loaded = ws_probe(host, tmp_path, ws_server)
    assert [call(loaded, "ws_connect", {"url": ws_server.url})[0] for _ in range(4)] == [1, 2, 3, 4]
    code, text, _ = call(loaded, "ws_connect", {"url": ws_server.url})
    assert code == TOO_BIG and "at most 4" in text
    loaded.plugin.discard()
    deadline = time.monotonic() + 5
    while len(ws_server.close_codes) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ws_server.close_codes == [1000] * 4
    assert (
        call(loaded, "ws_recv", handle=1, timeout_ms=10)[0] == INVALID
    )  # a fresh instance, no handles


def test_websocket_denied_host(
    host: PluginHost, tmp_path: Path, ws_server: WebSocketServer
) -> None:
    loaded = probe(host, tmp_path)
    code, _, _ = call(loaded, "ws_connect", {"url": ws_server.url})
    assert code == DENIED and ws_server.connections == 0


# -- exec ------------------------------------------------------------------------------------


def test_exec_listed_approved_and_without_a_shell(host: PluginHost, tmp_path: Path) -> None:
    loaded = probe(host, tmp_path, extra_commands=("echo",))
    code, text, _ = call(loaded, "exec", {"argv": ["echo", "$HOME; ls *"]})
    assert code == 0 and answer(text) == {
        "status": 0,
        "truncated": False,
        "stdout": "$HOME; ls *\n",
        "stderr": "",
    }
    code, text, _ = call(loaded, "exec", {"argv": ["cat"], "stdin": "from stdin"})
    assert code == DENIED and "'cat' is not approved" in text  # declared, not approved
    code, text, _ = call(loaded, "exec", {"argv": ["ls", "/"]})
    assert code == DENIED and "not in the plugin's metadata commands" in text


def test_exec_runs_in_the_data_dir_with_a_minimal_environment(
    host: PluginHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONDUCTOR_TEST_SECRET", "do-not-pass")
    loaded = probe(host, tmp_path, extra_commands=("env", "sh"))
    environment = answer(call(loaded, "exec", {"argv": ["env"]})[1])["stdout"]
    names = {line.split("=", 1)[0] for line in environment.splitlines()}
    assert names <= {
        "PATH",
        "LANG",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "XDG_RUNTIME_DIR",
        "DBUS_SESSION_BUS_ADDRESS",
    }
    assert "do-not-pass" not in environment
    cwd = answer(call(loaded, "exec", {"argv": ["sh", "-c", "pwd"]})[1])["stdout"].strip()
    assert cwd.endswith("conductor/plugin-data/host_probe")


def test_exec_output_is_truncated(host: PluginHost, tmp_path: Path) -> None:
    loaded = probe(host, tmp_path, extra_commands=("sh",))
    code, text, _ = call(loaded, "exec", {"argv": ["sh", "-c", "yes x | head -c 200000"]})
    assert code == 0
    assert text.split(" ", 2)[2].startswith('{"status":0,"truncated":true,"stdout":"x\\nx\\nx')


def test_exec_kills_the_process_group_at_the_deadline(host: PluginHost, tmp_path: Path) -> None:
    loaded = probe(host, tmp_path, extra_commands=("sh",))
    started = time.monotonic()
    code, _, _ = call(
        loaded, "exec", {"argv": ["sh", "-c", "sleep 31.25 & sleep 31.25; wait"], "timeout_ms": 300}
    )
    assert code == TIMEOUT and time.monotonic() - started < 1.5
    time.sleep(0.2)
    leftover = subprocess.run(["pgrep", "-f", "sleep 31.25"], capture_output=True, text=True).stdout
    assert leftover.strip() == ""


# -- threads ---------------------------------------------------------------------------------


def test_failures_in_one_plugins_host_calls_never_surface_in_another(
    host: PluginHost, tmp_path: Path
) -> None:
    failing = probe(host, tmp_path)
    good = load_unsigned(host, "good", tmp_path)
    errors: list[str] = []

    def fail_many() -> None:
        code, _, error = call(failing, "config_get", "missing", repeat=10_000)
        if code != NOT_FOUND or error:
            errors.append(f"failing plugin: {code} {error}")

    def succeed_many() -> None:
        for _ in range(2000):
            result = good.plugin.execute(b'{"context":{}}')
            if not result.ok:
                errors.append(f"good plugin: {result.error}")

    threads = [threading.Thread(target=fail_many), threading.Thread(target=succeed_many)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
