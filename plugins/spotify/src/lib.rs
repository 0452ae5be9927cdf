//! Spotify control through the Web API. The access token comes from the refresh token in
//! `[plugins.config.spotify]` and is kept in the instance until it expires; a 401 refreshes once
//! and retries; a 429 waits for Retry-After when that fits, or fails naming it.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conductor_plugin::{
    bad_request, config_get, export_plugin, http_request, json, log_error, log_info, optional, required,
    requested_action, Action, HttpRequest, HttpResponse, Metadata, Plugin, Request,
};
use serde_json::Value;

struct Spotify;

const FAILED: i32 = 1;
const API: &str = "https://api.spotify.com";
const ACCOUNTS: &str = "https://accounts.spotify.com";
const MAX_RETRY_AFTER_S: u64 = 2;
const VOLUME_STEP: i64 = 10;

/// The reference's action names, with the product page's (`next`, `previous`, `volume`) as aliases.
const ACTIONS: &[Action] = &[
    Action::new("play_pause", "Pause when playing, else play"),
    Action::new("play", "Start or resume playback"),
    Action::new("pause", "Pause playback"),
    Action::new("next_track", "Skip to the next track").aliases(&["next"]),
    Action::new("previous_track", "Go back to the previous track").aliases(&["previous"]),
    Action::new("volume_up", "Raise the volume by 10"),
    Action::new("volume_down", "Lower the volume by 10"),
    Action::new("set_volume", "Set the volume, 0-100").params(&[required("volume")]).aliases(&["volume"]),
    Action::new("adjust_volume", "Change the volume by delta, -100 to 100").params(&[required("delta")]),
    Action::new("shuffle", "Toggle shuffle"),
    Action::new("repeat", "Set repeat to track, context or off; without mode, cycle off, context, track")
        .params(&[optional("mode")]),
    Action::new("play_playlist", "Play a playlist, album or artist by its spotify: URI").params(&[required("uri")]),
    Action::new("like_current_track", "Save the playing track to Liked Songs"),
];

thread_local! {
    static TOKEN: RefCell<Option<(String, u64)>> = RefCell::new(None);
}

enum Failure {
    BadRequest(String),
    Failed(String),
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn setting(key: &str) -> Option<String> {
    config_get(key).ok().flatten().filter(|v| !v.is_empty())
}

fn form_escape(value: &str) -> String {
    value.bytes().map(|b| match b {
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
        _ => format!("%{:02X}", b),
    }).collect()
}

fn refresh() -> Result<String, Failure> {
    let refresh_token = setting("refresh_token")
        .ok_or_else(|| Failure::Failed("no refresh_token in [plugins.config.spotify]; run `conductor plugin setup spotify`".into()))?;
    let client_id = setting("client_id")
        .ok_or_else(|| Failure::Failed("no client_id in [plugins.config.spotify]".into()))?;
    let accounts = setting("accounts_base").unwrap_or_else(|| ACCOUNTS.to_string());
    let mut body = format!("grant_type=refresh_token&refresh_token={}", form_escape(&refresh_token));
    let mut request = HttpRequest::new("POST", &format!("{}/api/token", accounts.trim_end_matches('/')))
        .header("Content-Type", "application/x-www-form-urlencoded");
    match setting("client_secret") {
        Some(secret) => {
            let basic = base64::encode(format!("{}:{}", client_id, secret));
            request = request.header("Authorization", &format!("Basic {}", basic));
        }
        None => body.push_str(&format!("&client_id={}", form_escape(&client_id))), // PKCE clients
    }
    let response = http_request(&request.body(&body)).map_err(|e| Failure::Failed(format!("token refresh: {}", e)))?;
    if response.status != 200 {
        return Err(Failure::Failed(format!("token refresh failed with HTTP {}: {}", response.status, response.text())));
    }
    let document = response.json().unwrap_or(Value::Null);
    let token = document["access_token"].as_str()
        .ok_or_else(|| Failure::Failed("token refresh answered without an access_token".into()))?.to_string();
    let expires = now_s() + document["expires_in"].as_u64().unwrap_or(3600).saturating_sub(30);
    TOKEN.with(|t| *t.borrow_mut() = Some((token.clone(), expires)));
    Ok(token)
}

fn access_token() -> Result<String, Failure> {
    let cached = TOKEN.with(|t| t.borrow().clone());
    match cached {
        Some((token, expires)) if expires > now_s() => Ok(token),
        _ => refresh(),
    }
}

fn send(method: &str, path: &str, body: Option<&Value>, token: &str) -> Result<HttpResponse, Failure> {
    let api = setting("api_base").unwrap_or_else(|| API.to_string());
    let mut request = HttpRequest::new(method, &format!("{}{}", api.trim_end_matches('/'), path))
        .header("Authorization", &format!("Bearer {}", token));
    request = match body {
        Some(value) => request.json(value),
        None if method != "GET" => request.header("Content-Length", "0").body(""),
        None => request,
    };
    http_request(&request).map_err(|e| Failure::Failed(format!("{} {}: {}", method, path, e)))
}

/// One Web API call: refresh once on 401, wait out a short 429, and explain the usual failures.
fn call(method: &str, path: &str, body: Option<&Value>) -> Result<HttpResponse, Failure> {
    let mut response = send(method, path, body, &access_token()?)?;
    if response.status == 401 {
        response = send(method, path, body, &refresh()?)?;
    }
    if response.status == 429 {
        let wait = response.header("Retry-After").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(1);
        if wait > MAX_RETRY_AFTER_S {
            return Err(Failure::Failed(format!("rate limited by Spotify: Retry-After {} s", wait)));
        }
        std::thread::sleep(Duration::from_secs(wait));
        response = send(method, path, body, &access_token()?)?;
        if response.status == 429 {
            return Err(Failure::Failed(format!("rate limited by Spotify: Retry-After {} s", wait)));
        }
    }
    if response.status == 404 && response.text().contains("NO_ACTIVE_DEVICE") {
        return Err(Failure::Failed("no active device: start playback in a Spotify app first".into()));
    }
    if response.status >= 400 {
        let reason = response.json().and_then(|v| v["error"]["message"].as_str().map(String::from))
            .unwrap_or_else(|| response.text().chars().take(200).collect());
        return Err(Failure::Failed(format!("{} {} failed with HTTP {}: {}", method, path, response.status, reason)));
    }
    Ok(response)
}

fn player() -> Result<Value, Failure> {
    let response = call("GET", "/v1/me/player", None)?;
    if response.status == 204 || response.text().is_empty() {
        return Err(Failure::Failed("no active device: start playback in a Spotify app first".into()));
    }
    Ok(response.json().unwrap_or(Value::Null))
}

fn set_volume(percent: i64) -> Result<(), Failure> {
    let percent = percent.clamp(0, 100);
    call("PUT", &format!("/v1/me/player/volume?volume_percent={}", percent), None)?;
    log_info(&format!("spotify: volume {}%", percent));
    Ok(())
}

fn int_param(request: &Request, key: &str, low: i64, high: i64) -> Result<i64, Failure> {
    match (request.params.get(key), request.int(key)) {
        (None, _) => Err(Failure::BadRequest(format!("missing param {:?} (an integer {} to {})", key, low, high))),
        (_, Some(value)) if (low..=high).contains(&value) => Ok(value),
        (Some(value), _) => Err(Failure::BadRequest(format!("param {:?} must be an integer {} to {}, not {}", key, low, high, value))),
    }
}

fn dispatch(action: &str, request: &Request) -> Result<(), Failure> {
    match action {
        "play_pause" => {
            let playing = player()?["is_playing"].as_bool().unwrap_or(false);
            call("PUT", if playing { "/v1/me/player/pause" } else { "/v1/me/player/play" }, None)?;
            log_info(if playing { "spotify: paused" } else { "spotify: playing" });
        }
        "play" => {
            call("PUT", "/v1/me/player/play", None)?;
        }
        "pause" => {
            call("PUT", "/v1/me/player/pause", None)?;
        }
        "next_track" => {
            call("POST", "/v1/me/player/next", None)?;
        }
        "previous_track" => {
            call("POST", "/v1/me/player/previous", None)?;
        }
        "volume_up" | "volume_down" | "adjust_volume" => {
            let delta = match action {
                "volume_up" => VOLUME_STEP,
                "volume_down" => -VOLUME_STEP,
                _ => int_param(request, "delta", -100, 100)?,
            };
            let current = player()?["device"]["volume_percent"].as_i64().unwrap_or(50);
            set_volume(current + delta)?;
        }
        "set_volume" => set_volume(int_param(request, "volume", 0, 100)?)?,
        "shuffle" => {
            let state = !player()?["shuffle_state"].as_bool().unwrap_or(false);
            call("PUT", &format!("/v1/me/player/shuffle?state={}", state), None)?;
            log_info(&format!("spotify: shuffle {}", if state { "on" } else { "off" }));
        }
        "repeat" => {
            let mode = match request.str("mode") {
                Some(mode @ ("track" | "context" | "off")) => mode.to_string(),
                Some(other) => return Err(Failure::BadRequest(format!("param \"mode\" {:?} is not track, context or off", other))),
                None => match player()?["repeat_state"].as_str().unwrap_or("off") {
                    "off" => "context".to_string(),
                    "context" => "track".to_string(),
                    _ => "off".to_string(),
                },
            };
            call("PUT", &format!("/v1/me/player/repeat?state={}", mode), None)?;
            log_info(&format!("spotify: repeat {}", mode));
        }
        "play_playlist" => {
            let uri = request.str("uri").ok_or_else(|| Failure::BadRequest("missing param \"uri\" (a spotify: URI string)".into()))?;
            call("PUT", "/v1/me/player/play", Some(&json!({"context_uri": uri})))?;
        }
        "like_current_track" => {
            let current = call("GET", "/v1/me/player/currently-playing", None)?;
            let id = current.json().and_then(|v| v["item"]["id"].as_str().map(String::from))
                .ok_or_else(|| Failure::Failed("nothing is playing".into()))?;
            call("PUT", &format!("/v1/me/tracks?ids={}", id), None)?;
            log_info(&format!("spotify: liked track {}", id));
        }
        other => return Err(Failure::Failed(format!("action {:?} is listed but not implemented", other))),
    }
    Ok(())
}

impl Plugin for Spotify {
    fn metadata() -> Metadata {
        Metadata {
            name: "spotify".into(),
            version: "1.0.0".into(),
            description: "Spotify playback control through the Web API".into(),
            author: "Conductor".into(),
            license: "MIT".into(),
            capabilities: vec!["Network".into()],
            hosts: vec![API.into(), ACCOUNTS.into()],
            actions: ACTIONS,
            ..Default::default()
        }
    }

    fn execute(request: Request) -> i32 {
        let action = match requested_action("spotify", ACTIONS, &request) {
            Ok(action) => action,
            Err(code) => return code,
        };
        match dispatch(action.name, &request) {
            Ok(()) => 0,
            Err(Failure::BadRequest(message)) => {
                bad_request("spotify", ACTIONS, &format!("{}: {}", action.name, message))
            }
            Err(Failure::Failed(message)) => {
                log_error(&format!("spotify: {}", message));
                FAILED
            }
        }
    }
}

export_plugin!(Spotify);
