//! Negotiate (PROTOCOL.md §2): asks the server for a connection token and its transports, and
//! follows redirects (`url` + `accessToken`) as the official clients do.

use serde::Deserialize;

use crate::error::{ClientError, with_causes};

/// How many redirects are followed before giving up (the JavaScript client's limit).
const MAX_REDIRECTS: usize = 100;

/// A negotiate answer in any of its forms.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    #[serde(default)]
    negotiate_version: u32,
    connection_id: Option<String>,
    connection_token: Option<String>,
    #[serde(default)]
    available_transports: Vec<Transport>,
    url: Option<String>,
    access_token: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Transport {
    transport: String,
    #[serde(default)]
    transfer_formats: Vec<String>,
}

/// Where and how to connect after negotiate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Negotiated {
    /// The hub URL (after redirects).
    pub(crate) url: String,
    /// The bearer token a redirect handed out, if any.
    pub(crate) access_token: Option<String>,
    /// The public connection id.
    pub(crate) connection_id: String,
    /// What to pass as `id` when connecting.
    pub(crate) id: String,
    /// Transport names with their transfer formats, as the server listed them.
    pub(crate) transports: Vec<(String, Vec<String>)>,
}

/// `<url>/negotiate?negotiateVersion=1`, keeping the URL's own query.
fn negotiate_url(url: &str) -> String {
    let (path, query) = url
        .split_once('?')
        .map_or((url, None), |(p, q)| (p, Some(q)));
    let path = path.trim_end_matches('/');
    match query {
        Some(query) => format!("{path}/negotiate?{query}&negotiateVersion=1"),
        None => format!("{path}/negotiate?negotiateVersion=1"),
    }
}

/// Negotiates with `url`, following redirects.
pub(crate) async fn negotiate(
    http: &reqwest::Client,
    url: &str,
    mut access_token: Option<String>,
    headers: &reqwest::header::HeaderMap,
) -> Result<Negotiated, ClientError> {
    let mut url = url.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let mut request = http.post(negotiate_url(&url)).headers(headers.clone());
        if let Some(token) = &access_token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|error| ClientError::Negotiate(with_causes(&error)))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|error| ClientError::Negotiate(with_causes(&error)))?;
        if !status.is_success() {
            let reason = if body.is_empty() {
                status.to_string()
            } else {
                body
            };
            return Err(ClientError::Negotiate(reason));
        }
        let answer: Answer = serde_json::from_str(&body)
            .map_err(|error| ClientError::Negotiate(format!("unreadable answer: {error}")))?;
        if let Some(error) = answer.error {
            return Err(ClientError::Negotiate(error));
        }
        if let Some(redirect) = answer.url {
            url = redirect;
            if answer.access_token.is_some() {
                access_token = answer.access_token;
            }
            continue;
        }
        let connection_id = answer
            .connection_id
            .ok_or_else(|| ClientError::Negotiate("the answer has no connectionId".into()))?;
        let id = match answer.negotiate_version {
            0 => connection_id.clone(),
            _ => answer.connection_token.ok_or_else(|| {
                ClientError::Negotiate("the answer has no connectionToken".into())
            })?,
        };
        return Ok(Negotiated {
            url,
            access_token,
            connection_id,
            id,
            transports: answer
                .available_transports
                .into_iter()
                .map(|transport| (transport.transport, transport.transfer_formats))
                .collect(),
        });
    }
    Err(ClientError::Negotiate(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_negotiate_url_keeps_the_query() {
        assert_eq!(
            negotiate_url("http://h/hub"),
            "http://h/hub/negotiate?negotiateVersion=1"
        );
        assert_eq!(
            negotiate_url("http://h/hub/?a=1"),
            "http://h/hub/negotiate?a=1&negotiateVersion=1"
        );
    }
}
