//! The node's logs (OPS-10): `tracing` events to stderr as text or JSON (`log.format`), with the level
//! (`log.level`, or `RUST_LOG`) changeable at run time through `arca_api::log_level`.
//!
//! - **Text**: colours only when stderr is a terminal, so a log file holds plain text. Every message and
//!   field value is written with its control characters escaped (`\n`, `\r`, `\u{1b}`, …), so user input
//!   in a log field (a folder name, a query) can never start a line of its own.
//! - **JSON**: one object per line; strings are JSON-escaped.

use std::fmt;
use std::io::IsTerminal;

use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{FormatFields, Writer};
use tracing_subscriber::prelude::*;

use arca_api::log_level::{LogLevelError, Reload};
use arca_types::config::{LogConfig, LogFormat};

/// The filter of `level`, with the chatty dependencies held at `warn` unless named.
fn filter_of(level: &str) -> Result<EnvFilter, LogLevelError> {
    EnvFilter::try_new(format!("openraft=warn,h2=warn,tower=warn,{level}"))
        .map_err(|e| LogLevelError::Invalid { filter: level.to_string(), reason: e.to_string() })
}

/// Writes `text` with every control character (and the Unicode line and paragraph separators)
/// escaped, so the result is one line.
pub fn escape_line(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                write!(out, "\\u{{{:x}}}", u32::from(c))?
            }
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

/// The field formatter of the text format: `message`, then `name=value` pairs, each escaped.
fn escaped_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    tracing_subscriber::fmt::format::debug_fn(|w: &mut Writer<'_>, field, value| {
        let text = format!("{value:?}");
        if field.name() == "message" {
            escape_line(w, &text)
        } else {
            write!(w, "{}=", field.name())?;
            escape_line(w, &text)
        }
    })
    .delimited(" ")
}

/// The text format's layer writing to `writer` (used by [`init`] and the tests).
fn text_layer<S, W>(ansi: bool, writer: W) -> impl tracing_subscriber::Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer().with_ansi(ansi).fmt_fields(escaped_fields()).with_writer(writer)
}

/// Installs the process's log subscriber for `config` (or `RUST_LOG` when set) and makes its level
/// changeable at run time. Errors name the setting.
pub fn init(config: &LogConfig) -> Result<()> {
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| config.level.clone());
    let filter = filter_of(&level).with_context(|| "setting log.level (ARCA_LOG_LEVEL or RUST_LOG)")?;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    match config.format {
        LogFormat::Text => {
            registry.with(text_layer(std::io::stderr().is_terminal(), std::io::stderr)).try_init()
        }
        LogFormat::Json => {
            registry.with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr)).try_init()
        }
    }
    .context("cannot install the log subscriber")?;
    let reload: Reload = Box::new(move |level: &str| {
        let filter = filter_of(level)?;
        handle.reload(filter).map_err(|_| LogLevelError::Unavailable)
    });
    arca_api::log_level::install(&level, reload);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer that collects what the layer writes.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn user_input_in_a_log_field_cannot_forge_a_line() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry().with(text_layer(false, buffer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let folder = "x\nWARN forged line\r\u{1b}[31m";
            tracing::warn!(folder = %folder, "refused folder '{folder}'");
            tracing::info!(folder = ?folder, "second");
        });
        let text =
            String::from_utf8(buffer.0.lock().unwrap_or_else(|p| p.into_inner()).clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "one line per event: {text:?}");
        assert!(lines[0].contains("refused folder 'x\\nWARN forged line\\r\\u{1b}[31m'"), "{text}");
        assert!(lines[0].contains("folder=x\\nWARN"), "{text}");
        assert!(!text.contains('\u{1b}'), "no escape character reaches the log: {text:?}");
    }

    #[test]
    fn a_log_level_that_is_no_filter_is_refused_naming_it() {
        let err = filter_of("arca=loud").expect_err("not a filter");
        assert!(matches!(&err, LogLevelError::Invalid { filter, .. } if filter == "arca=loud"), "{err}");
        assert!(filter_of("arca_api=debug,info").is_ok());
    }
}
