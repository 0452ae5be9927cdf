//! Safe wrappers for the host functions of import module `conductor` (SPEC §8).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[link(wasm_import_module = "conductor")]
extern "C" {
    #[link_name = "log"]
    fn host_log(level: i32, pointer: *const u8, length: usize) -> i32;
    #[link_name = "config_get"]
    fn host_config_get(pointer: *const u8, length: usize) -> i64;
    #[link_name = "error_message"]
    fn host_error_message() -> i64;
    #[link_name = "http_request"]
    fn host_http_request(pointer: *const u8, length: usize) -> i64;
    #[link_name = "ws_connect"]
    fn host_ws_connect(pointer: *const u8, length: usize) -> i64;
    #[link_name = "ws_send"]
    fn host_ws_send(handle: i32, pointer: *const u8, length: usize, flags: i32) -> i32;
    #[link_name = "ws_recv"]
    fn host_ws_recv(handle: i32, timeout_ms: i32) -> i64;
    #[link_name = "ws_close"]
    fn host_ws_close(handle: i32) -> i32;
    #[link_name = "exec"]
    fn host_exec(pointer: *const u8, length: usize) -> i64;
    #[link_name = "system"]
    fn host_system(pointer: *const u8, length: usize) -> i64;
}

/// A host function's error: its code (see the constants) and the host's explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    pub code: i64,
    pub message: String,
}

// Host error codes, as conductor/plugins/host/codes.py defines them (a test checks that they agree).
pub const OK: i64 = 0;
pub const DENIED: i64 = -1;
pub const INVALID: i64 = -2;
pub const TIMEOUT: i64 = -3;
pub const IO: i64 = -4;
pub const TOO_BIG: i64 = -5;
pub const NO_MEMORY: i64 = -6;
pub const NOT_FOUND: i64 = -7;
pub const FAULT: i64 = -8;
pub const UNSUPPORTED: i64 = -9;
pub const CLOSED: i64 = -10;

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "host error {}: {}", self.code, self.message)
    }
}

fn take_answer(result: i64) -> Vec<u8> {
    if result <= 0 {
        return Vec::new();
    }
    let pointer = (result >> 32) as usize as *mut u8;
    let length = (result & 0xffff_ffff) as usize;
    // The host wrote the answer into a buffer from our own alloc(length): we own it now.
    unsafe { Vec::from_raw_parts(pointer, length, length.max(1)) }
}

fn check(result: i64) -> Result<Vec<u8>, HostError> {
    if result < 0 {
        let message = String::from_utf8_lossy(&take_answer(unsafe { host_error_message() })).into_owned();
        return Err(HostError { code: result, message });
    }
    Ok(take_answer(result))
}

fn call_json<T: for<'de> Deserialize<'de>>(
    function: unsafe extern "C" fn(*const u8, usize) -> i64,
    argument: &impl Serialize,
) -> Result<T, HostError> {
    let bytes = serde_json::to_vec(argument).map_err(|e| HostError { code: INVALID, message: e.to_string() })?;
    let answer = check(unsafe { function(bytes.as_ptr(), bytes.len()) })?;
    serde_json::from_slice(&answer).map_err(|e| HostError { code: INVALID, message: format!("bad answer: {}", e) })
}

pub fn log(level: i32, text: &str) {
    unsafe { host_log(level, text.as_ptr(), text.len()) };
}
pub fn log_debug(text: &str) {
    log(0, text)
}
pub fn log_info(text: &str) {
    log(1, text)
}
pub fn log_warn(text: &str) {
    log(2, text)
}
pub fn log_error(text: &str) {
    log(3, text)
}

/// A value from `[plugins.config.<plugin>]`: `Ok(None)` when the key is not set. Strings come back
/// as text; other values as their JSON.
pub fn config_get(key: &str) -> Result<Option<String>, HostError> {
    match check(unsafe { host_config_get(key.as_ptr(), key.len()) }) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(error) if error.code == NOT_FOUND => Ok(None),
        Err(error) => Err(error),
    }
}

#[derive(Serialize, Clone, Debug, Default)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
}

impl HttpRequest {
    pub fn new(method: &str, url: &str) -> Self {
        HttpRequest { method: method.to_string(), url: url.to_string(), ..Default::default() }
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    pub fn body(mut self, body: &str) -> Self {
        self.body = Some(body.to_string());
        self
    }
    pub fn json(self, value: &Value) -> Self {
        self.header("Content-Type", "application/json").body(&value.to_string())
    }
}

#[derive(Deserialize, Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub url: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub body_base64: Option<String>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> &str {
        self.body.as_deref().unwrap_or("")
    }
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(self.text()).ok()
    }
}

/// One HTTP(S) exchange (Network capability, approved hosts). 4xx/5xx are answers, not errors.
pub fn http_request(request: &HttpRequest) -> Result<HttpResponse, HostError> {
    call_json(host_http_request, request)
}

/// Open a WebSocket; the handle stays valid across `execute` calls.
pub fn ws_connect(url: &str, headers: &[(String, String)]) -> Result<i32, HostError> {
    let argument = serde_json::json!({"url": url, "headers": headers});
    let bytes = argument.to_string();
    let result = unsafe { host_ws_connect(bytes.as_ptr(), bytes.len()) };
    if result < 0 {
        return Err(check(result).unwrap_err());
    }
    Ok(result as i32)
}

pub fn ws_send_text(handle: i32, text: &str) -> Result<(), HostError> {
    check(unsafe { host_ws_send(handle, text.as_ptr(), text.len(), 0) } as i64).map(|_| ())
}

/// The next message, `Err(TIMEOUT)` when none came in time, `Err(CLOSED)` after a close.
pub fn ws_recv(handle: i32, timeout_ms: i32) -> Result<Vec<u8>, HostError> {
    check(unsafe { host_ws_recv(handle, timeout_ms) })
}

pub fn ws_close(handle: i32) -> Result<(), HostError> {
    check(unsafe { host_ws_close(handle) } as i64).map(|_| ())
}

#[derive(Deserialize, Clone, Debug)]
pub struct ExecResult {
    pub status: i32,
    pub truncated: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Run a declared and approved command (Subprocess capability); no shell.
pub fn exec(argv: &[&str], stdin: Option<&str>) -> Result<ExecResult, HostError> {
    call_json(host_exec, &serde_json::json!({"argv": argv, "stdin": stdin}))
}

/// A desktop operation (SystemControl capability), e.g. `system(&json!({"op": "notify", ...}))`.
pub fn system(request: &Value) -> Result<Value, HostError> {
    call_json(host_system, request)
}
