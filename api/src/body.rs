//! Reading a request body within a configured bound: over it, the request is refused with 413 and the
//! name of the setting. At most the bound is buffered; the rest is read and dropped (up to
//! [`DRAIN_BYTES`]), so the client, still sending, receives the refusal instead of a reset connection.

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;

/// The most a refused body is read past its bound before the connection is simply closed.
pub const DRAIN_BYTES: u64 = 32 << 20;

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Larger than the setting allows.
    #[error("the request body is larger than {limit} bytes (setting {setting})")]
    TooLarge { limit: u64, setting: &'static str },
    /// The connection failed while the body was read.
    #[error("the request body could not be read: {0}")]
    Read(#[source] axum::Error),
}

/// The whole body, if it has at most `limit` bytes (setting `setting`).
pub async fn read(mut body: Body, limit: u64, setting: &'static str) -> Result<Bytes, BodyError> {
    let mut kept: Vec<u8> = Vec::new();
    let mut seen = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        let Ok(data) = frame.into_data() else { continue };
        seen = seen.saturating_add(data.len() as u64);
        if seen > limit.saturating_add(DRAIN_BYTES) {
            break;
        }
        if seen <= limit {
            kept.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(BodyError::TooLarge { limit, setting });
    }
    Ok(Bytes::from(kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_over_the_bound_is_refused_naming_the_setting() {
        let ok = read(Body::from(vec![b'x'; 10]), 10, "api.max_request_bytes").await.expect("within");
        assert_eq!(ok.len(), 10);
        let err = read(Body::from(vec![b'x'; 11]), 10, "api.max_request_bytes").await.expect_err("over");
        assert!(matches!(err, BodyError::TooLarge { limit: 10, .. }), "{err:?}");
        assert!(err.to_string().contains("api.max_request_bytes"), "{err}");
    }
}
