//! Cross-site request refusal on the API listener: a browser that holds Basic credentials for the API
//! must not let a page of another site call it.
//!
//! The rule: a request whose `Origin` header is not this node's own (`https://` + the `Host` the
//! request was sent to) is refused, whatever its method. A request that changes state (any method but
//! GET, HEAD, OPTIONS) and comes from a browser (it has an `Origin`, or `Sec-Fetch-Site` says
//! `cross-site` or `same-site`) is refused when `Sec-Fetch-Site` says another site, or when its content
//! type is one a page may send without a CORS preflight (`application/x-www-form-urlencoded`,
//! `multipart/form-data`, `text/plain`, or none). Scripts and the CLI send no `Origin`, so `curl -d`
//! keeps working.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::envelope::{ApiError, Envelope};

/// Why a request was refused as cross-site.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrossSite {
    /// The `Origin` header names another site than this node.
    #[error("cross-site request refused: Origin '{origin}' is not this node's own ('{own}')")]
    ForeignOrigin { origin: String, own: String },
    /// The browser says the request comes from another site and it would change state.
    #[error("cross-site request refused: Sec-Fetch-Site is '{0}' on a request that changes state")]
    FetchSite(String),
    /// A browser request that changes state with a content type any page may send.
    #[error(
        "request refused: a browser request that changes state may not use the content type '{0}', which \
         any web page can send; send JSON or leave out the Origin header (scripts send none)"
    )]
    SimpleContentType(String),
}

/// The content type (`(none)` when absent) if it is one a browser sends cross-site without a CORS preflight.
fn is_simple_content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "" | "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain" => {
            Some(if essence.is_empty() { "(none)".to_string() } else { essence })
        }
        _ => None,
    }
}

/// Checks one request against the rule of this module; `authority` is the host (and port) the request
/// was sent to, from the request line or the `Host` header.
pub fn check(method: &Method, headers: &HeaderMap, authority: Option<&str>) -> Result<(), CrossSite> {
    let origin = headers.get(header::ORIGIN).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if let Some(origin) = &origin {
        let own = format!("https://{}", authority.unwrap_or(""));
        let same = authority.is_some_and(|a| {
            let a = a.strip_suffix(":443").unwrap_or(a);
            origin.eq_ignore_ascii_case(&format!("https://{a}"))
                || origin.eq_ignore_ascii_case(&format!("https://{a}:443"))
        });
        if !same {
            return Err(CrossSite::ForeignOrigin { origin: origin.clone(), own });
        }
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    if let Some(site) = fetch_site.filter(|s| s == "cross-site" || s == "same-site") {
        return Err(CrossSite::FetchSite(site));
    }
    if origin.is_some()
        && let Some(content_type) = is_simple_content_type(headers)
    {
        return Err(CrossSite::SimpleContentType(content_type));
    }
    Ok(())
}

/// The middleware that applies [`check`] to every request of the API listener (403 when refused).
pub async fn guard(request: Request, next: Next) -> Response {
    let authority =
        request.uri().authority().map(|a| a.as_str().to_string()).or_else(|| {
            request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string)
        });
    match check(request.method(), request.headers(), authority.as_deref()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            tracing::warn!("{refusal} ({} {})", request.method(), request.uri().path());
            let mut response = if request.uri().path().starts_with("/api/data/") {
                axum::Json(serde_json::json!({ "error": refusal.to_string() })).into_response()
            } else {
                Envelope::failure(ApiError::new(refusal.to_string())).into_response()
            };
            *response.status_mut() = StatusCode::FORBIDDEN;
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        h
    }

    const HOST: Option<&str> = Some("arca.example.com:8463");

    #[test]
    fn a_foreign_origin_is_refused_on_every_method() {
        for method in [Method::GET, Method::POST] {
            let h = headers(&[("origin", "https://evil.example"), ("content-type", "application/json")]);
            let refused = check(&method, &h, HOST).expect_err("foreign origin");
            assert!(refused.to_string().contains("https://evil.example"), "{refused}");
        }
        let h = headers(&[("origin", "null")]);
        assert!(check(&Method::GET, &h, HOST).is_err(), "an opaque origin is not this node");
        let h = headers(&[("origin", "http://arca.example.com:8463")]);
        assert!(check(&Method::GET, &h, HOST).is_err(), "plain http is another origin");
        let h = headers(&[("origin", "https://ARCA.example.com:8463"), ("content-type", "application/json")]);
        assert!(check(&Method::POST, &h, HOST).is_ok(), "the node's own origin");
    }

    #[test]
    fn browser_requests_that_change_state_may_not_use_simple_content_types() {
        for content_type in [
            "application/x-www-form-urlencoded",
            "text/plain; charset=utf-8",
            "multipart/form-data; boundary=x",
        ] {
            let h = headers(&[("origin", "https://arca.example.com:8463"), ("content-type", content_type)]);
            let refused = check(&Method::POST, &h, HOST).expect_err(content_type);
            assert!(matches!(refused, CrossSite::SimpleContentType(_)), "{refused}");
            assert!(check(&Method::GET, &h, HOST).is_ok(), "reading is not changing state");
        }
        let h = headers(&[("sec-fetch-site", "cross-site"), ("content-type", "application/json")]);
        assert!(matches!(check(&Method::POST, &h, HOST), Err(CrossSite::FetchSite(_))));
    }

    #[test]
    fn scripts_without_an_origin_keep_working() {
        let h = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        assert!(check(&Method::POST, &h, HOST).is_ok(), "curl -d sends form data and no Origin");
        let h = headers(&[("content-type", "text/plain"), ("sec-fetch-site", "none")]);
        assert!(check(&Method::POST, &h, HOST).is_ok());
        assert!(check(&Method::POST, &HeaderMap::new(), None).is_ok());
    }
}
