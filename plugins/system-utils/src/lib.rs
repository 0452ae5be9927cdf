//! System Utils: notifications, clipboard, screenshots, volume, brightness, URLs, screen lock,
//! sleep, media keys, keystrokes, typing and user-defined commands, through the host's `system`
//! and `exec` functions.

use conductor_plugin::{
    bad_request, exec, export_plugin, json, log_error, log_info, optional, required, requested_action, system,
    Action, Metadata, Plugin, Request,
};
use serde_json::Value;

struct SystemUtils;

const FAILED: i32 = 1;
const STEP: &[conductor_plugin::Param] = &[optional("step")];

/// The reference's action names, with the product page's (`notification`, `lock`) as aliases.
const ACTIONS: &[Action] = &[
    Action::new("show_notification", "Show a desktop notification")
        .params(&[required("title"), optional("message")])
        .aliases(&["notification"]),
    Action::new("copy_to_clipboard", "Put text on the clipboard").params(&[required("text")]),
    Action::new("take_screenshot", "Save a PNG of the screen in the plugin's data directory")
        .params(&[optional("filename")]),
    Action::new("volume_up", "Raise the system volume by step (default 5)").params(STEP),
    Action::new("volume_down", "Lower the system volume by step (default 5)").params(STEP),
    Action::new("set_volume", "Set the system volume, percent 0-100").params(&[required("percent")]),
    Action::new("mute_system", "Mute the system output"),
    Action::new("unmute_system", "Unmute the system output"),
    Action::new("toggle_mute", "Mute or unmute the system output"),
    Action::new("open_url", "Open an http(s) address in the default browser").params(&[required("url")]),
    Action::new("lock_screen", "Lock the screen").aliases(&["lock"]),
    Action::new("media", "Media key: media_action play-pause, next, previous or stop")
        .params(&[required("media_action")]),
    Action::new("run_command", "Run a command named in [plugins.config.system-utils] commands")
        .params(&[required("name")]),
    Action::new("brightness", "Set the screen brightness to percent 0-100, or change it by delta")
        .params(&[optional("percent"), optional("delta")]),
    Action::new("sleep", "Suspend the computer"),
    Action::new("send_keys", "Press a key combination such as ctrl+shift+m").params(&[required("combo")]),
    Action::new("type_text", "Type text as keystrokes").params(&[required("text")]),
];

/// A param problem: the plugin logs it with the action's name and the list of actions.
struct BadParam(String);

/// Why an action did not happen: a bad request (code 3) or a failure already logged (code 1).
enum Failure {
    BadRequest(BadParam),
    Failed,
}

impl From<BadParam> for Failure {
    fn from(problem: BadParam) -> Self {
        Failure::BadRequest(problem)
    }
}

/// One `system` op; a host error is logged here (it names the tools tried) and fails the action.
fn op(request: Value) -> Result<Value, Failure> {
    system(&request).map_err(|error| {
        log_error(&format!("system-utils: {}: {}", request["op"].as_str().unwrap_or("?"), error));
        Failure::Failed
    })
}

fn required_str<'a>(request: &'a Request, key: &str) -> Result<&'a str, BadParam> {
    match request.params.get(key) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(BadParam(format!("param {:?} must be a string, not {}", key, other))),
        None => Err(BadParam(format!("missing param {:?}", key))),
    }
}

/// An integer param within `low..=high`; `Ok(None)` when absent.
fn int_in(request: &Request, key: &str, low: i64, high: i64) -> Result<Option<i64>, BadParam> {
    match request.params.get(key) {
        None => Ok(None),
        Some(value) => match value.as_i64() {
            Some(number) if (low..=high).contains(&number) => Ok(Some(number)),
            _ => Err(BadParam(format!("param {:?} must be an integer {} to {}, not {}", key, low, high, value))),
        },
    }
}

fn required_int(request: &Request, key: &str, low: i64, high: i64) -> Result<i64, BadParam> {
    int_in(request, key, low, high)?.ok_or_else(|| BadParam(format!("missing param {:?}", key)))
}

/// The `percent` field of a `*.get` op's answer.
fn current_percent(answer: &Value, what: &str) -> Result<i64, Failure> {
    answer.get("percent").and_then(Value::as_i64).ok_or_else(|| {
        log_error(&format!("system-utils: the host reported no current {} percent: {}", what, answer));
        Failure::Failed
    })
}

fn change_volume(request: &Request, sign: i64) -> Result<(), Failure> {
    let step = int_in(request, "step", 1, 100)?.unwrap_or(5);
    let percent = current_percent(&op(json!({"op": "volume.get"}))?, "volume")?;
    let target = (percent + sign * step).clamp(0, 100);
    op(json!({"op": "volume.set", "percent": target}))?;
    log_info(&format!("volume {} -> {}%", percent, target));
    Ok(())
}

/// `percent` sets the brightness, `delta` changes it from what the host reports; one of them.
fn brightness(request: &Request) -> Result<(), Failure> {
    let percent = int_in(request, "percent", 0, 100)?;
    let delta = int_in(request, "delta", -100, 100)?;
    let target = match (percent, delta) {
        (Some(percent), None) => percent,
        (None, Some(delta)) => {
            let current = current_percent(&op(json!({"op": "brightness.get"}))?, "brightness")?;
            (current + delta).clamp(0, 100)
        }
        _ => return Err(BadParam("give either param \"percent\" (0-100) or param \"delta\" (-100 to 100)".into()).into()),
    };
    op(json!({"op": "brightness.set", "percent": target}))?;
    log_info(&format!("brightness {}%", target));
    Ok(())
}

fn run_command(request: &Request) -> Result<(), Failure> {
    let name = required_str(request, "name")?;
    let table = match conductor_plugin::config_get("commands") {
        Ok(Some(text)) => serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let argv: Vec<String> = match table.get(name).and_then(Value::as_array) {
        Some(items) if !items.is_empty() => items.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => {
            return Err(BadParam(format!("no command {:?} in [plugins.config.system-utils] commands", name)).into());
        }
    };
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    match exec(&args, None) {
        Ok(result) => {
            log_info(&format!("{}: exit {}{}", name, result.status, if result.stdout.is_empty() { String::new() } else { format!(": {}", result.stdout.trim_end()) }));
            if result.status == 0 { Ok(()) } else { Err(Failure::Failed) }
        }
        Err(error) => {
            log_error(&format!("system-utils: run_command {}: {}", name, error));
            Err(Failure::Failed)
        }
    }
}

fn dispatch(action: &str, request: &Request) -> Result<(), Failure> {
    match action {
        "show_notification" => {
            let title = required_str(request, "title")?;
            op(json!({"op": "notify", "title": title, "body": request.str("message").unwrap_or("")}))?;
        }
        "copy_to_clipboard" => {
            op(json!({"op": "clipboard.set", "text": required_str(request, "text")?}))?;
        }
        "take_screenshot" => {
            let mut call = json!({"op": "screenshot"});
            if let Some(name) = request.str("filename") {
                call["filename"] = json!(name);
            }
            let result = op(call)?;
            log_info(&format!("screenshot saved as {}", result.get("file").and_then(Value::as_str).unwrap_or("?")));
        }
        "volume_up" => change_volume(request, 1)?,
        "volume_down" => change_volume(request, -1)?,
        "set_volume" => {
            op(json!({"op": "volume.set", "percent": required_int(request, "percent", 0, 100)?}))?;
        }
        "mute_system" => {
            op(json!({"op": "volume.mute", "mute": true}))?;
        }
        "unmute_system" => {
            op(json!({"op": "volume.mute", "mute": false}))?;
        }
        "toggle_mute" => {
            op(json!({"op": "volume.mute", "mute": "toggle"}))?;
        }
        "open_url" => {
            op(json!({"op": "open_url", "url": required_str(request, "url")?}))?;
        }
        "lock_screen" => {
            op(json!({"op": "lock_screen"}))?;
        }
        "brightness" => brightness(request)?,
        "sleep" => {
            op(json!({"op": "sleep"}))?;
        }
        "send_keys" => {
            op(json!({"op": "keys", "combo": required_str(request, "combo")?}))?;
        }
        "type_text" => {
            op(json!({"op": "type", "text": required_str(request, "text")?}))?;
        }
        "media" => {
            let media = required_str(request, "media_action")?;
            op(json!({"op": "media", "action": media}))?;
        }
        "run_command" => run_command(request)?,
        other => {
            log_error(&format!("system-utils: action {:?} is listed but not implemented", other));
            return Err(Failure::Failed);
        }
    }
    Ok(())
}

impl Plugin for SystemUtils {
    fn metadata() -> Metadata {
        Metadata {
            name: "system-utils".into(),
            version: "1.0.0".into(),
            description: "Notifications, clipboard, screenshots, volume, brightness, URLs, screen lock, sleep, media keys, keystrokes and commands".into(),
            author: "Conductor".into(),
            license: "MIT".into(),
            capabilities: vec!["SystemControl".into(), "Subprocess".into()],
            actions: ACTIONS,
            ..Default::default()
        }
    }

    fn execute(request: Request) -> i32 {
        let action = match requested_action("system-utils", ACTIONS, &request) {
            Ok(action) => action,
            Err(code) => return code,
        };
        match dispatch(action.name, &request) {
            Ok(()) => 0,
            Err(Failure::BadRequest(BadParam(reason))) => {
                bad_request("system-utils", ACTIONS, &format!("{}: {}", action.name, reason))
            }
            Err(Failure::Failed) => FAILED,
        }
    }
}

export_plugin!(SystemUtils);
