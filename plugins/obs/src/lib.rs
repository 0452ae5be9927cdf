//! OBS Studio control over obs-websocket 5: one authenticated WebSocket per instance, kept across
//! calls and re-opened once when OBS closed it; replies matched by requestId; recording and
//! streaming changes confirmed through their status, not the immediate reply.

use std::cell::RefCell;

use conductor_plugin::{
    bad_request, config_get, export_plugin, json, log_error, log_info, optional, required, requested_action,
    ws_close, ws_connect, ws_recv, ws_send_text, Action, HostError, Metadata, Plugin, Request, CLOSED,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

struct Obs;

const FAILED: i32 = 1;
const DEFAULT_URL: &str = "ws://127.0.0.1:4455";
const REPLY_TIMEOUT_MS: i32 = 3000;
const CONFIRM_ATTEMPTS: u32 = 40;

const SOURCE: &[conductor_plugin::Param] = &[required("source_name")];

const ACTIONS: &[Action] = &[
    Action::new("switch_scene", "Make a scene the program scene").params(&[required("scene_name")]),
    Action::new("start_recording", "Start recording (confirmed by OBS's status)"),
    Action::new("stop_recording", "Stop recording (confirmed by OBS's status)"),
    Action::new("toggle_recording", "Start or stop recording"),
    Action::new("pause_recording", "Pause the recording"),
    Action::new("resume_recording", "Resume a paused recording"),
    Action::new("start_streaming", "Start streaming (confirmed by OBS's status)"),
    Action::new("stop_streaming", "Stop streaming (confirmed by OBS's status)"),
    Action::new("toggle_streaming", "Start or stop streaming"),
    Action::new("toggle_mute", "Mute or unmute an audio source").params(SOURCE),
    Action::new("mute", "Mute an audio source").params(SOURCE),
    Action::new("unmute", "Unmute an audio source").params(SOURCE),
    Action::new("set_volume", "Set a source's volume in dB (0 is full, -100 silent)")
        .params(&[required("source_name"), required("volume_db")]),
    Action::new("toggle_source", "Show or hide a source in a scene (default: the current scene)")
        .params(&[required("source_name"), optional("scene_name")]),
    Action::new("toggle_replay_buffer", "Start or stop the replay buffer"),
    Action::new("save_replay_buffer", "Save the replay buffer to a file"),
    Action::new("toggle_studio_mode", "Turn studio mode on or off"),
];

thread_local! {
    static HANDLE: RefCell<Option<i32>> = RefCell::new(None);
    static NEXT_ID: RefCell<u64> = RefCell::new(1);
}

enum Failure {
    BadRequest(String),
    Obs(String),
    Closed(String),
}

impl From<HostError> for Failure {
    fn from(error: HostError) -> Self {
        if error.code == CLOSED {
            Failure::Closed(error.message)
        } else {
            Failure::Obs(format!("connection: {}", error.message))
        }
    }
}

fn authentication(password: &str, salt: &str, challenge: &str) -> String {
    let secret = base64::encode(Sha256::digest(format!("{}{}", password, salt).as_bytes()));
    base64::encode(Sha256::digest(format!("{}{}", secret, challenge).as_bytes()))
}

fn receive_json(handle: i32) -> Result<Value, Failure> {
    let bytes = ws_recv(handle, REPLY_TIMEOUT_MS)?;
    serde_json::from_slice(&bytes).map_err(|e| Failure::Obs(format!("OBS sent something that is not JSON: {}", e)))
}

fn open() -> Result<i32, Failure> {
    let url = config_get("url").ok().flatten().unwrap_or_else(|| DEFAULT_URL.to_string());
    let handle = ws_connect(&url, &[]).map_err(|e| Failure::Obs(format!("cannot reach OBS at {}: {}", url, e.message)))?;
    let hello = receive_json(handle)?;
    if hello["op"] != 0 {
        return Err(Failure::Obs("OBS did not say Hello".into()));
    }
    let mut identify = json!({"op": 1, "d": {"rpcVersion": 1, "eventSubscriptions": 0}});
    if let Some(auth) = hello["d"].get("authentication") {
        let password = config_get("password").ok().flatten().unwrap_or_default();
        let salt = auth["salt"].as_str().unwrap_or("");
        let challenge = auth["challenge"].as_str().unwrap_or("");
        identify["d"]["authentication"] = json!(authentication(&password, salt, challenge));
    }
    ws_send_text(handle, &identify.to_string())?;
    match receive_json(handle) {
        Ok(reply) if reply["op"] == 2 => Ok(handle),
        Ok(_) => Err(Failure::Obs("OBS did not confirm identification".into())),
        Err(Failure::Closed(message)) if message.contains("4009") => {
            Err(Failure::Obs("OBS refused the password (close code 4009): check [plugins.config.obs] password".into()))
        }
        Err(other) => Err(other),
    }
}

fn connection() -> Result<i32, Failure> {
    if let Some(handle) = HANDLE.with(|h| *h.borrow()) {
        return Ok(handle);
    }
    let handle = open()?;
    HANDLE.with(|h| *h.borrow_mut() = Some(handle));
    Ok(handle)
}

fn forget_connection() {
    if let Some(handle) = HANDLE.with(|h| h.borrow_mut().take()) {
        let _ = ws_close(handle);
    }
}

fn request_once(request_type: &str, data: &Value) -> Result<Value, Failure> {
    let handle = connection()?;
    let id = NEXT_ID.with(|n| {
        let id = *n.borrow();
        *n.borrow_mut() += 1;
        id
    })
    .to_string();
    let message = json!({"op": 6, "d": {"requestType": request_type, "requestId": id, "requestData": data}});
    ws_send_text(handle, &message.to_string())?;
    loop {
        let reply = receive_json(handle)?;
        if reply["op"] != 7 || reply["d"]["requestId"] != json!(id) {
            continue; // events and other replies interleave with ours
        }
        let status = &reply["d"]["requestStatus"];
        if status["result"] == true {
            return Ok(reply["d"]["responseData"].clone());
        }
        let code = status["code"].as_i64().unwrap_or(0);
        let comment = status["comment"].as_str().unwrap_or("no comment");
        return Err(Failure::Obs(format!("OBS error {} on {}: {}", code, request_type, comment)));
    }
}

/// A request, re-opening the connection once if OBS closed it (restarted, say).
fn request(request_type: &str, data: Value) -> Result<Value, Failure> {
    match request_once(request_type, &data) {
        Err(Failure::Closed(_)) => {
            forget_connection();
            request_once(request_type, &data)
        }
        other => other,
    }
}

fn param<'a>(request: &'a Request, key: &str) -> Result<&'a str, Failure> {
    request.str(key).ok_or_else(|| Failure::BadRequest(format!("missing or invalid param {:?}", key)))
}

fn output_active(status_request: &str) -> Result<bool, Failure> {
    Ok(request(status_request, json!({}))?["outputActive"].as_bool().unwrap_or(false))
}

/// Start/stop/toggle only queue work in OBS: poll the status until it shows the change.
fn confirm(status_request: &str, want: bool, what: &str) -> Result<(), Failure> {
    for _ in 0..CONFIRM_ATTEMPTS {
        if output_active(status_request)? == want {
            log_info(&format!("obs: {} {}", what, if want { "started" } else { "stopped" }));
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Err(Failure::Obs(format!("{} did not {} (OBS status still shows it {})", what,
        if want { "start" } else { "stop" }, if want { "stopped" } else { "active" })))
}

fn output(request_type: &str, status_request: &str, what: &str, want: Option<bool>) -> Result<(), Failure> {
    let target = match want {
        Some(value) => value,
        None => !output_active(status_request)?,
    };
    request(request_type, json!({}))?;
    confirm(status_request, target, what)
}

fn dispatch(action: &str, req: &Request) -> Result<(), Failure> {
    match action {
        "switch_scene" => {
            request("SetCurrentProgramScene", json!({"sceneName": param(req, "scene_name")?}))?;
        }
        "start_recording" => output("StartRecord", "GetRecordStatus", "recording", Some(true))?,
        "stop_recording" => output("StopRecord", "GetRecordStatus", "recording", Some(false))?,
        "toggle_recording" => output("ToggleRecord", "GetRecordStatus", "recording", None)?,
        "pause_recording" => {
            request("PauseRecord", json!({}))?;
        }
        "resume_recording" => {
            request("ResumeRecord", json!({}))?;
        }
        "start_streaming" => output("StartStream", "GetStreamStatus", "streaming", Some(true))?,
        "stop_streaming" => output("StopStream", "GetStreamStatus", "streaming", Some(false))?,
        "toggle_streaming" => output("ToggleStream", "GetStreamStatus", "streaming", None)?,
        "toggle_mute" => {
            let muted = request("ToggleInputMute", json!({"inputName": param(req, "source_name")?}))?;
            log_info(&format!("obs: {} muted: {}", param(req, "source_name")?, muted["inputMuted"]));
        }
        "mute" | "unmute" => {
            request("SetInputMute", json!({"inputName": param(req, "source_name")?, "inputMuted": action == "mute"}))?;
        }
        "set_volume" => {
            let volume = req.params.get("volume_db").and_then(Value::as_f64)
                .ok_or_else(|| Failure::BadRequest("missing or invalid param \"volume_db\"".into()))?;
            request("SetInputVolume", json!({"inputName": param(req, "source_name")?, "inputVolumeDb": volume}))?;
        }
        "toggle_source" => {
            let source = param(req, "source_name")?;
            let scene = match req.str("scene_name") {
                Some(scene) => scene.to_string(),
                None => request("GetCurrentProgramScene", json!({}))?["currentProgramSceneName"]
                    .as_str().unwrap_or("").to_string(),
            };
            let id = request("GetSceneItemId", json!({"sceneName": scene, "sourceName": source}))?["sceneItemId"].clone();
            let enabled = request("GetSceneItemEnabled", json!({"sceneName": scene, "sceneItemId": id}))?
                ["sceneItemEnabled"].as_bool().unwrap_or(false);
            request("SetSceneItemEnabled", json!({"sceneName": scene, "sceneItemId": id, "sceneItemEnabled": !enabled}))?;
            log_info(&format!("obs: {} in {} is now {}", source, scene, if enabled { "hidden" } else { "shown" }));
        }
        "toggle_replay_buffer" => {
            request("ToggleReplayBuffer", json!({}))?;
        }
        "save_replay_buffer" => {
            request("SaveReplayBuffer", json!({}))?;
        }
        "toggle_studio_mode" => {
            let enabled = request("GetStudioModeEnabled", json!({}))?["studioModeEnabled"].as_bool().unwrap_or(false);
            request("SetStudioModeEnabled", json!({"studioModeEnabled": !enabled}))?;
        }
        other => return Err(Failure::Obs(format!("action {:?} is listed but not implemented", other))),
    }
    Ok(())
}

impl Plugin for Obs {
    fn metadata() -> Metadata {
        Metadata {
            name: "obs".into(),
            version: "1.0.0".into(),
            description: "OBS Studio control over obs-websocket 5".into(),
            author: "Conductor".into(),
            license: "MIT".into(),
            capabilities: vec!["Network".into()],
            hosts: vec![DEFAULT_URL.into()],
            actions: ACTIONS,
            ..Default::default()
        }
    }

    fn execute(request: Request) -> i32 {
        let action = match requested_action("obs", ACTIONS, &request) {
            Ok(action) => action,
            Err(code) => return code,
        };
        match dispatch(action.name, &request) {
            Ok(()) => 0,
            Err(Failure::BadRequest(message)) => bad_request("obs", ACTIONS, &format!("{}: {}", action.name, message)),
            Err(Failure::Closed(message)) => {
                log_error(&format!("obs: the connection closed: {}", message));
                forget_connection();
                FAILED
            }
            Err(Failure::Obs(message)) => {
                log_error(&format!("obs: {}", message));
                if message.starts_with("cannot reach") || message.starts_with("connection") {
                    forget_connection(); // the next event opens a fresh connection
                }
                FAILED
            }
        }
    }

    fn shutdown() {
        forget_connection();
    }
}

export_plugin!(Obs);
