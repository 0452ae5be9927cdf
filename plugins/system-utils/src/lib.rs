//! System Utils: notifications, clipboard, screenshots, volume, URLs, screen lock, media keys and
//! user-defined commands, through the host's `system` and `exec` functions.

use conductor_plugin::{exec, export_plugin, json, log_error, log_info, system, Metadata, Plugin, Request};
use serde_json::Value;

struct SystemUtils;

const BAD_REQUEST: i32 = 3;
const FAILED: i32 = 1;

fn op(request: Value) -> Result<Value, i32> {
    system(&request).map_err(|error| {
        log_error(&format!("system-utils: {}", error));
        FAILED
    })
}

fn required_str<'a>(request: &'a Request, key: &str) -> Result<&'a str, i32> {
    request.str(key).ok_or_else(|| {
        log_error(&format!("system-utils: missing or invalid param {:?}", key));
        BAD_REQUEST
    })
}

fn percent_param(request: &Request, key: &str) -> Result<i64, i32> {
    match request.int(key) {
        Some(value) if (0..=100).contains(&value) => Ok(value),
        _ => {
            log_error(&format!("system-utils: param {:?} must be an integer 0-100", key));
            Err(BAD_REQUEST)
        }
    }
}

fn change_volume(request: &Request, sign: i64) -> Result<(), i32> {
    let step = request.int("step").unwrap_or(5);
    if !(1..=100).contains(&step) {
        log_error("system-utils: param \"step\" must be an integer 1-100");
        return Err(BAD_REQUEST);
    }
    let current = op(json!({"op": "volume.get"}))?;
    let percent = current.get("percent").and_then(Value::as_i64).unwrap_or(50);
    let target = (percent + sign * step).clamp(0, 100);
    op(json!({"op": "volume.set", "percent": target}))?;
    log_info(&format!("volume {} -> {}%", percent, target));
    Ok(())
}

fn run_command(request: &Request) -> Result<(), i32> {
    let name = required_str(request, "name")?;
    let table = match conductor_plugin::config_get("commands") {
        Ok(Some(text)) => serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let argv: Vec<String> = match table.get(name).and_then(Value::as_array) {
        Some(items) if !items.is_empty() => items.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => {
            log_error(&format!("system-utils: no command {:?} in [plugins.config.system-utils] commands", name));
            return Err(BAD_REQUEST);
        }
    };
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    match exec(&args, None) {
        Ok(result) => {
            log_info(&format!("{}: exit {}{}", name, result.status, if result.stdout.is_empty() { String::new() } else { format!(": {}", result.stdout.trim_end()) }));
            if result.status == 0 { Ok(()) } else { Err(FAILED) }
        }
        Err(error) => {
            log_error(&format!("system-utils: run_command {}: {}", name, error));
            Err(FAILED)
        }
    }
}

fn dispatch(request: &Request) -> Result<(), i32> {
    let action = request.str("action").unwrap_or("");
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
            op(json!({"op": "volume.set", "percent": percent_param(request, "percent")?}))?;
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
        "media" => {
            let media = required_str(request, "media_action")?;
            op(json!({"op": "media", "action": media}))?;
        }
        "run_command" => run_command(request)?,
        other => {
            log_error(&format!("system-utils: unknown action {:?}", other));
            return Err(BAD_REQUEST);
        }
    }
    Ok(())
}

impl Plugin for SystemUtils {
    fn metadata() -> Metadata {
        Metadata {
            name: "system-utils".into(),
            version: "1.0.0".into(),
            description: "Notifications, clipboard, screenshots, volume, URLs, screen lock, media keys and commands".into(),
            author: "Conductor".into(),
            license: "MIT".into(),
            capabilities: vec!["SystemControl".into(), "Subprocess".into()],
            ..Default::default()
        }
    }

    fn execute(request: Request) -> i32 {
        match dispatch(&request) {
            Ok(()) => 0,
            Err(code) => code,
        }
    }
}

export_plugin!(SystemUtils);
