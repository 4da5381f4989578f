//! The Administration API's JSON answer: always the same eight keys in the manual's order (OPS-01).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `error` of the envelope: a message for people and technical details.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiError {
    pub message: String,
    pub details: String,
}

impl ApiError {
    /// An error whose details repeat the message.
    pub fn new(message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError { details: message.clone(), message }
    }
}

/// The status of a call as the envelope reports it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum CallStatus {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// One answer of the Administration API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub error: Option<ApiError>,
    pub token: Option<String>,
    pub status_version: u64,
    pub status_code: CallStatus,
    pub percent_progress: Option<u8>,
    pub status_text: Option<String>,
    pub result: Value,
    pub log_output: Option<String>,
}

impl Envelope {
    /// A finished, successful call.
    pub fn success(result: Value) -> Envelope {
        Envelope {
            error: None,
            token: None,
            status_version: 2,
            status_code: CallStatus::Succeeded,
            percent_progress: None,
            status_text: None,
            result,
            log_output: None,
        }
    }

    /// A failed call.
    pub fn failure(error: ApiError) -> Envelope {
        Envelope { error: Some(error), status_code: CallStatus::Failed, ..Envelope::success(Value::Null) }
    }
}

/// The headers every API answer carries (no caching anywhere).
pub fn no_cache_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(
            "no-cache,private,no-store,must-revalidate,max-stale=0,post-check=0,pre-check=0",
        ),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
    h
}

impl IntoResponse for Envelope {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        (StatusCode::OK, no_cache_headers(), body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_all_eight_keys_in_the_manuals_order() {
        let text =
            serde_json::to_string(&Envelope::success(serde_json::json!({"version": "1"}))).expect("json");
        assert_eq!(
            text,
            r#"{"error":null,"token":null,"statusVersion":2,"statusCode":"succeeded","percentProgress":null,"statusText":null,"result":{"version":"1"},"logOutput":null}"#
        );
    }
}
