//! The log filter of this process, changeable at run time (OPS-10): the binary installs a function that
//! swaps its `tracing` filter; `POST /api/log-level` (administrators) calls it. One per process, like
//! the `tracing` subscriber itself.

use std::sync::{Mutex, OnceLock};

/// Why the log level could not be changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogLevelError {
    /// Not a `tracing` filter.
    #[error("level: '{filter}' is not a log filter such as info, debug or arca_raft=debug,info: {reason}")]
    Invalid { filter: String, reason: String },
    /// This process did not install a changeable filter (e.g. a node inside a test process).
    #[error("the log level of this process cannot be changed at run time")]
    Unavailable,
}

/// Replaces the process's log filter; the binary provides it.
pub type Reload = Box<dyn Fn(&str) -> Result<(), LogLevelError> + Send + Sync>;

struct Control {
    reload: Reload,
    current: Mutex<String>,
}

static CONTROL: OnceLock<Control> = OnceLock::new();

/// Makes the level changeable through [`set`]; `initial` is the filter in force. Once per process
/// (a second call is ignored).
pub fn install(initial: &str, reload: Reload) {
    let _ = CONTROL.set(Control { reload, current: Mutex::new(initial.to_string()) });
}

/// The filter in force, if it can be changed.
pub fn current() -> Option<String> {
    CONTROL.get().map(|c| c.current.lock().unwrap_or_else(|p| p.into_inner()).clone())
}

/// Replaces the filter; refused when it does not parse (the old one stays).
pub fn set(filter: &str) -> Result<(), LogLevelError> {
    let control = CONTROL.get().ok_or(LogLevelError::Unavailable)?;
    let mut current = control.current.lock().unwrap_or_else(|p| p.into_inner());
    (control.reload)(filter)?;
    *current = filter.to_string();
    Ok(())
}
