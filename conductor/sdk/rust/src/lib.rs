//! Conductor plugin SDK: implement [`Plugin`] and call [`export_plugin!`]; the macro provides the
//! exports the host needs (`alloc`, `dealloc`, `init`, `execute`). Host functions are wrapped in
//! safe functions returning `Result<_, HostError>`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub mod host;
pub use host::*;
pub use serde_json::json;

/// What a plugin says about itself (returned from `init`).
#[derive(Serialize, Clone, Debug, Default)]
pub struct Metadata {
    pub name: String,
    pub version: String,
    pub description: String,
    pub author: String,
    pub license: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// What the request's `action` param may name; `plugin inspect` lists them.
    #[serde(skip_serializing_if = "<[Action]>::is_empty")]
    pub actions: &'static [Action],
}

/// One action of a plugin: its name, other names it answers to, its params and what it does.
#[derive(Serialize, Clone, Copy, Debug)]
pub struct Action {
    pub name: &'static str,
    #[serde(skip_serializing_if = "<[&str]>::is_empty")]
    pub aliases: &'static [&'static str],
    pub params: &'static [Param],
    pub description: &'static str,
}

/// A param of an [`Action`].
#[derive(Serialize, Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub required: bool,
}

impl Action {
    /// An action without aliases or params.
    pub const fn new(name: &'static str, description: &'static str) -> Action {
        Action { name, aliases: &[], params: &[], description }
    }
    pub const fn params(self, params: &'static [Param]) -> Action {
        Action { params, ..self }
    }
    pub const fn aliases(self, aliases: &'static [&'static str]) -> Action {
        Action { aliases, ..self }
    }
}

/// A param the action needs.
pub const fn required(name: &'static str) -> Param {
    Param { name, required: true }
}

/// A param the action can do without.
pub const fn optional(name: &'static str) -> Param {
    Param { name, required: false }
}

/// The return code for a request the plugin cannot act on: unknown action, missing or bad param.
pub const BAD_REQUEST: i32 = 3;

/// The action `name` names, by its own name or an alias.
pub fn find_action(actions: &'static [Action], name: &str) -> Option<&'static Action> {
    actions.iter().find(|action| action.name == name || action.aliases.contains(&name))
}

/// One line listing the actions with their params (`?` marks an optional one) and aliases,
/// e.g. `play, set_volume(volume) or volume, take_screenshot(filename?)`.
pub fn list_actions(actions: &[Action]) -> String {
    let entries: Vec<String> = actions
        .iter()
        .map(|action| {
            let mut entry = action.name.to_string();
            if !action.params.is_empty() {
                let params: Vec<String> = action
                    .params
                    .iter()
                    .map(|p| format!("{}{}", p.name, if p.required { "" } else { "?" }))
                    .collect();
                entry.push_str(&format!("({})", params.join(", ")));
            }
            for alias in action.aliases {
                entry.push_str(&format!(" or {}", alias));
            }
            entry
        })
        .collect();
    entries.join(", ")
}

/// The request's `action`, resolved through aliases; otherwise logs why (naming what was asked
/// and listing the actions) and gives [`BAD_REQUEST`].
pub fn requested_action(plugin: &str, actions: &'static [Action], request: &Request) -> Result<&'static Action, i32> {
    let reason = match request.params.get("action") {
        None => "missing param \"action\"".to_string(),
        Some(Value::String(name)) => match find_action(actions, name) {
            Some(action) => return Ok(action),
            None => format!("unknown action {:?}", name),
        },
        Some(other) => format!("param \"action\" must be a string, not {}", other),
    };
    Err(bad_request(plugin, actions, &reason))
}

/// Logs `plugin: reason; actions: …` at error level and gives [`BAD_REQUEST`].
pub fn bad_request(plugin: &str, actions: &[Action], reason: &str) -> i32 {
    log_error(&format!("{}: {}; actions: {}", plugin, reason, list_actions(actions)));
    BAD_REQUEST
}

/// The event that fired the mapping (the request's `context`).
#[derive(Deserialize, Clone, Debug, Default)]
pub struct Context {
    #[serde(default)]
    pub trigger: String,
    pub note: Option<u8>,
    pub velocity: Option<u8>,
    pub channel: Option<u8>,
    pub cc: Option<u8>,
    pub value: Option<i32>,
    #[serde(default)]
    pub current_mode: u32,
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub timestamp: u64,
    #[serde(default)]
    pub device: String,
}

/// A request: the mapping's params plus the event context.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub params: Map<String, Value>,
    pub context: Context,
}

impl Request {
    /// Parse the request JSON the host wrote.
    pub fn parse(bytes: &[u8]) -> Result<Request, String> {
        let mut params: Map<String, Value> =
            serde_json::from_slice(bytes).map_err(|e| format!("request is not a JSON object: {}", e))?;
        let context = match params.remove("context") {
            Some(value) => serde_json::from_value(value).map_err(|e| format!("bad context: {}", e))?,
            None => Context::default(),
        };
        Ok(Request { params, context })
    }

    /// A string param, if present.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.params.get(key).and_then(Value::as_str)
    }

    /// An integer param, if present.
    pub fn int(&self, key: &str) -> Option<i64> {
        self.params.get(key).and_then(Value::as_i64)
    }

    /// All params as a typed struct.
    pub fn params_as<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_value(Value::Object(self.params.clone())).map_err(|e| e.to_string())
    }
}

/// Implement this and call `export_plugin!(YourType)`.
pub trait Plugin {
    fn metadata() -> Metadata;
    /// Return 0 for success, anything else is an error code the host reports.
    fn execute(request: Request) -> i32;
    fn shutdown() {}
}

#[doc(hidden)]
pub mod __private {
    use std::cell::RefCell;

    thread_local! {
        static METADATA: RefCell<Vec<u8>> = RefCell::new(Vec::new());
    }

    pub fn alloc(size: i32) -> i32 {
        if size < 0 {
            return 0;
        }
        let mut buffer: Vec<u8> = Vec::with_capacity(size.max(1) as usize);
        let pointer = buffer.as_mut_ptr();
        std::mem::forget(buffer);
        pointer as i32
    }

    pub fn dealloc(pointer: i32, size: i32) {
        if pointer != 0 && size >= 0 {
            unsafe { drop(Vec::from_raw_parts(pointer as *mut u8, 0, size.max(1) as usize)) };
        }
    }

    pub fn init(metadata: &super::Metadata) -> i64 {
        let bytes = serde_json::to_vec(metadata).unwrap_or_default();
        METADATA.with(|cell| {
            *cell.borrow_mut() = bytes;
            let stored = cell.borrow();
            ((stored.as_ptr() as i64) << 32) | stored.len() as i64
        })
    }

    /// The request the host wrote. Its buffer belongs to the host, which keeps it for later
    /// requests and frees it with `dealloc` (SPEC §4): it is only borrowed for this call, never
    /// freed here.
    pub fn request(pointer: i32, length: i32) -> &'static [u8] {
        unsafe { std::slice::from_raw_parts(pointer as *const u8, length.max(0) as usize) }
    }
}

/// Generates the exports for a type implementing [`Plugin`].
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[no_mangle]
        pub extern "C" fn alloc(size: i32) -> i32 {
            $crate::__private::alloc(size)
        }

        #[no_mangle]
        pub extern "C" fn dealloc(pointer: i32, size: i32) {
            $crate::__private::dealloc(pointer, size)
        }

        #[no_mangle]
        pub extern "C" fn init() -> i64 {
            $crate::__private::init(&<$plugin as $crate::Plugin>::metadata())
        }

        #[no_mangle]
        pub extern "C" fn execute(pointer: i32, length: i32) -> i32 {
            match $crate::Request::parse($crate::__private::request(pointer, length)) {
                Ok(request) => <$plugin as $crate::Plugin>::execute(request),
                Err(reason) => {
                    $crate::log_error(&reason);
                    3
                }
            }
        }

        #[no_mangle]
        pub extern "C" fn shutdown() {
            <$plugin as $crate::Plugin>::shutdown()
        }
    };
}
