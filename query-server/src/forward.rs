//! One hop to the owner: a query this instance cannot answer goes to the instance the
//! directory names, marked so that instance answers from its own state and never
//! forwards it again (a stale directory costs one hop, not a loop).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::answer::ApiError;

/// The header a forwarded query carries: the endpoint that forwarded it.
pub const FORWARDED_BY: &str = "statestore-forwarded-by";

/// Largest answer relayed from an owner.
const MAX_RELAYED_BYTES: usize = 16 * 1024 * 1024;

/// Sends queries on to their owners.
pub(crate) struct Forwarder {
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl Forwarder {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            timeout,
        }
    }

    /// `GET path_and_query` on `owner`, its answer relayed as it came: status, body and
    /// `Retry-After`. A failure to reach the owner is an answer too (502, 504).
    pub(crate) async fn get(&self, owner: &str, path_and_query: &str, me: &str) -> Response {
        match self.try_get(owner, path_and_query, me).await {
            Ok(response) => response,
            Err(err) => err.into_response(),
        }
    }

    /// `GET path_and_query` on `endpoint` as a forwarded query: its JSON body if it
    /// answered 200 with one in time, `None` otherwise.
    pub(crate) async fn get_json(
        &self,
        endpoint: &str,
        path_and_query: &str,
        me: &str,
    ) -> Option<serde_json::Value> {
        let response = self.try_get(endpoint, path_and_query, me).await.ok()?;
        if response.status() != StatusCode::OK {
            return None;
        }
        let body = response.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice(&body).ok()
    }

    async fn try_get(
        &self,
        owner: &str,
        path_and_query: &str,
        me: &str,
    ) -> Result<Response, ApiError> {
        let unreachable = |detail: String| {
            ApiError::new(StatusCode::BAD_GATEWAY, "owner_unreachable", detail)
                .owner(Some(owner.to_owned()))
                .served_by(me)
        };
        let request = Request::get(format!("http://{owner}{path_and_query}"))
            .header(FORWARDED_BY, me)
            .body(Empty::new())
            .map_err(|err| unreachable(format!("forwarding to {owner}: {err}")))?;
        let answer = tokio::time::timeout(self.timeout, async {
            let response = self.client.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RELAYED_BYTES)
                .collect()
                .await
                .map_err(|err| format!("reading the answer: {err}"))
                .map(|collected| collected.to_bytes());
            Ok::<_, hyper_util::client::legacy::Error>((parts, body))
        })
        .await;
        let (parts, body) = match answer {
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "owner_timeout",
                    format!("the owner {owner} did not answer within {:?}", self.timeout),
                )
                .owner(Some(owner.to_owned()))
                .served_by(me));
            }
            Ok(Err(err)) => return Err(unreachable(format!("forwarding to {owner}: {err}"))),
            Ok(Ok(answer)) => answer,
        };
        let body = body.map_err(|err| unreachable(format!("forwarding to {owner}: {err}")))?;
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = parts.status;
        for name in [header::CONTENT_TYPE, header::RETRY_AFTER] {
            if let Some(value) = parts.headers.get(&name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        Ok(response)
    }
}
