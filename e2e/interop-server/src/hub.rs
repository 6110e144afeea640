//! The hubs of the interop server: the test hub, the hub that needs a bearer token, and the hub
//! whose connections cannot be set up (TESTHUB.md, "Test hub methods").

use std::sync::Arc;

use futures_util::{Stream, StreamExt, stream};
use serde::{Deserialize, Serialize};
use signalr_server::lifetime::HubLifetimeManager;
use signalr_server::protocol::values::{Timestamp, byte_array};
use signalr_server::{CallContext, Hub, HubError, HubOptions, TransportType, UploadStream};

type Context = CallContext<()>;

/// The options every hub of this server uses: the reference test server turns detailed errors
/// on, so clients see exception types and messages.
pub fn options() -> HubOptions {
    HubOptions {
        enable_detailed_errors: true,
        ..Default::default()
    }
}

/// The options of `/testhub-nowebsockets`.
pub fn options_without_websockets() -> HubOptions {
    HubOptions {
        transports: vec![TransportType::ServerSentEvents, TransportType::LongPolling],
        ..options()
    }
}

/// `SendCustomObject`'s argument, with the reference's PascalCase property names.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CustomObject {
    name: String,
    value: i64,
}

/// The reference's `ComplexObject`: exactly these five keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ComplexObject {
    string: String,
    int_array: Vec<i32>,
    /// Base64 in JSON, `bin` in MessagePack, as .NET serializes `byte[]`.
    #[serde(with = "byte_array")]
    byte_array: Vec<u8>,
    /// A GUID in its lowercase string form.
    guid: String,
    /// ISO 8601 text in JSON, the timestamp extension in MessagePack.
    date_time: Timestamp,
}

/// What `Record` has collected on one connection, in arrival order.
#[derive(Debug, Clone, Default)]
struct Recorded(Vec<i64>);

async fn echo(_context: Context, message: String) -> Result<String, HubError> {
    Ok(message)
}

async fn get_caller_connection_id(context: Context) -> Result<String, HubError> {
    Ok(context.connection_id().to_owned())
}

async fn get_num_redirects(context: Context) -> Result<i64, HubError> {
    let value = context
        .request()
        .query_value("numRedirects")
        .ok_or_else(|| {
            HubError::typed(
                "FormatException",
                "The query has no numRedirects parameter.",
            )
        })?;
    value.trim().parse().map_err(|_| {
        HubError::typed(
            "FormatException",
            format!("The input string '{value}' was not in a correct format."),
        )
    })
}

async fn throw_exception(_context: Context, message: String) -> Result<(), HubError> {
    Err(HubError::typed("InvalidOperationException", message))
}

async fn invoke_with_string(context: Context, message: String) -> Result<(), HubError> {
    context
        .clients()
        .caller()
        .send("Message", (message,))
        .await?;
    Ok(())
}

async fn send_custom_object(context: Context, object: CustomObject) -> Result<(), HubError> {
    context
        .clients()
        .caller()
        .send("CustomObject", (object,))
        .await?;
    Ok(())
}

async fn get_active_transport_name(context: Context) -> Result<&'static str, HubError> {
    Ok(context.transport().as_str())
}

async fn echo_complex_object(
    _context: Context,
    mut object: ComplexObject,
) -> Result<ComplexObject, HubError> {
    object.guid = object.guid.to_ascii_lowercase();
    Ok(object)
}

async fn send_complex_object(_context: Context) -> Result<ComplexObject, HubError> {
    Ok(ComplexObject {
        string: "hello world".into(),
        int_array: vec![1, 2, 3],
        byte_array: vec![1, 2, 3],
        guid: "00010203-0405-0607-0706-050403020100".into(),
        date_time: Timestamp::from_utc(2000, 1, 1, 0, 0, 0).expect("a valid date"),
    })
}

async fn get_content_type_header(context: Context) -> Result<Option<String>, HubError> {
    Ok(context.request().header("content-type"))
}

async fn get_header(context: Context, name: String) -> Result<Option<String>, HubError> {
    Ok(context.request().header(&name))
}

async fn get_cookie(context: Context, name: String) -> Result<Option<String>, HubError> {
    Ok(cookie(&context.request().headers, &name))
}

/// The value of cookie `name` in the request's `Cookie` headers. Pairs are separated by `;`;
/// anything that is not the named pair (attributes such as `Path=/` included) is skipped.
fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
}

/// Sends `Number(i)` for `i` in `0..count`, stopping early when the caller leaves.
async fn send_numbers(context: Context, count: i64) -> Result<i64, HubError> {
    let caller = context.clients().caller();
    for number in 0..count {
        if context.cancellation_token().is_cancelled() {
            return Err(HubError::new("The caller left."));
        }
        caller.send("Number", (number,)).await?;
    }
    Ok(count)
}

async fn record(context: Context, number: i64) -> Result<(), HubError> {
    let mut items = context.items().lock().expect("items lock");
    items.get_or_insert_default::<Recorded>().0.push(number);
    Ok(())
}

async fn get_recorded(context: Context) -> Result<Vec<i64>, HubError> {
    let items = context.items().lock().expect("items lock");
    Ok(items
        .get::<Recorded>()
        .map(|recorded| recorded.0.clone())
        .unwrap_or_default())
}

async fn stream_abc(
    _context: Context,
) -> Result<impl Stream<Item = &'static str> + Send + 'static, HubError> {
    Ok(stream::iter(["a", "b", "c"]))
}

/// Yields nothing until the client cancels; then sends `StreamCanceled` to the caller.
async fn infinite_stream(
    context: Context,
) -> Result<impl Stream<Item = i32> + Send + 'static, HubError> {
    let cancelled = context.cancellation_token().clone();
    let caller = context.clients().caller();
    tokio::spawn(async move {
        cancelled.cancelled().await;
        if let Err(error) = caller.send("StreamCanceled", ()).await {
            tracing::warn!(%error, "StreamCanceled was not sent");
        }
    });
    Ok(stream::pending())
}

async fn streaming_concat(
    _context: Context,
    mut upload: UploadStream<String>,
) -> Result<String, HubError> {
    let mut text = String::new();
    while let Some(item) = upload.next().await {
        text.push_str(&item?);
    }
    Ok(text)
}

async fn empty_stream(_context: Context) -> Result<stream::Empty<i32>, HubError> {
    Ok(stream::empty())
}

async fn stream_throw_exception(
    _context: Context,
    message: String,
) -> Result<stream::Empty<i32>, HubError> {
    Err(HubError::typed("InvalidOperationException", message))
}

/// The test hub of `/testhub` and `/testhub-nowebsockets`. Both endpoints share `lifetime`, as
/// the reference's two endpoints of one hub type do, so `/clientresult` reaches either.
pub fn test_hub(options: HubOptions, lifetime: Arc<dyn HubLifetimeManager>) -> Hub<()> {
    Hub::builder(())
        .method("Echo", echo)
        .method("GetCallerConnectionId", get_caller_connection_id)
        .method("GetNumRedirects", get_num_redirects)
        .method("ThrowException", throw_exception)
        .method("InvokeWithString", invoke_with_string)
        .method("SendCustomObject", send_custom_object)
        .method("GetActiveTransportName", get_active_transport_name)
        .method("EchoComplexObject", echo_complex_object)
        .method("SendComplexObject", send_complex_object)
        .method("GetContentTypeHeader", get_content_type_header)
        .method("GetHeader", get_header)
        .method("GetCookie", get_cookie)
        .stream_method("Stream", stream_abc)
        .stream_method("InfiniteStream", infinite_stream)
        .method("StreamingConcat", streaming_concat)
        .stream_method("EmptyStream", empty_stream)
        .stream_method("StreamThrowException", stream_throw_exception)
        // Beyond the contract: used by the ordering cases of the e2e suite.
        .method("SendNumbers", send_numbers)
        .method("Record", record)
        .method("GetRecorded", get_recorded)
        .options(options)
        .lifetime_manager(lifetime)
        .with_messagepack()
        .build()
}

/// The hub of `/authorizedhub`: `Echo`, for authenticated users only.
pub fn authorized_hub() -> Hub<()> {
    Hub::builder(())
        .method("Echo", echo)
        .options(options())
        .require_authenticated_user()
        .with_messagepack()
        .build()
}

/// The hub of `/uncreatable`: setting up any connection fails as the reference's hub whose
/// constructor needs an unresolvable service.
pub fn uncreatable_hub() -> Hub<()> {
    Hub::builder(())
        .on_connected(|_context| async {
            Err(HubError::typed(
                "InvalidOperationException",
                "Unable to resolve service for type 'System.Object' while attempting to \
                 activate 'FunctionalTests.UncreatableHub'.",
            ))
        })
        .options(options())
        .with_messagepack()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, header};

    #[test]
    fn cookies_skip_attributes_and_other_pairs() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static(
                "testCookie=testValue; Path=/; testCookie2=testValue2; Path=/",
            ),
        );
        assert_eq!(cookie(&headers, "testCookie").as_deref(), Some("testValue"));
        assert_eq!(
            cookie(&headers, "testCookie2").as_deref(),
            Some("testValue2")
        );
        assert_eq!(cookie(&headers, "expiredCookie"), None);
    }

    #[test]
    fn complex_objects_keep_the_reference_shape() {
        let input = serde_json::json!({
            "String": "hello world",
            "IntArray": [1, 2, 255],
            "ByteArray": "AQID",
            "Guid": "00010203-0405-0607-0706-050403020100",
            "DateTime": "2002-04-01T10:20:15Z",
        });
        let object: ComplexObject = serde_json::from_value(input.clone()).unwrap();
        assert_eq!(object.byte_array, [1, 2, 3]);
        assert_eq!(serde_json::to_value(&object).unwrap(), input);
    }
}
