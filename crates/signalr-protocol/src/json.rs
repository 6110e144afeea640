//! The `json` hub protocol (PROTOCOL.md §6): one UTF-8 JSON object per message, each followed by
//! the record separator `0x1E`.
//!
//! Properties may come in any order (the JavaScript client sends `type` last), so a message is
//! read whole into optional fields first and checked against its type afterwards. Values stay as
//! raw JSON text ([`Payload::Json`]).

use serde::Deserialize;
use serde::de::Deserializer;
use serde_json::value::RawValue;

use crate::message::*;
use crate::payload::{Payload, PayloadFormat};
use crate::{HubProtocol, Parsed, ProtocolError, RECORD_SEPARATOR, TransferFormat};

/// The JSON hub protocol, version 2 (accepts handshake versions 0 to 2).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonHubProtocol;

impl HubProtocol for JsonHubProtocol {
    fn name(&self) -> &'static str {
        "json"
    }

    fn version(&self) -> u32 {
        2
    }

    fn transfer_format(&self) -> TransferFormat {
        TransferFormat::Text
    }

    fn payload_format(&self) -> PayloadFormat {
        PayloadFormat::Json
    }

    fn parse(&self, input: &[u8]) -> Result<Parsed, ProtocolError> {
        let Some(end) = input.iter().position(|&byte| byte == RECORD_SEPARATOR) else {
            return Ok(Parsed::Incomplete);
        };
        let consumed = end + 1;
        match parse_record(&input[..end])? {
            Some(message) => Ok(Parsed::Message(message, consumed)),
            None => Ok(Parsed::Ignored(consumed)),
        }
    }

    fn write(&self, message: &HubMessage, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let start = out.len();
        let written = write_record(message, out);
        if written.is_err() {
            out.truncate(start);
        }
        written
    }
}

/// Every property any message type may have; which ones are required depends on `type`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    #[serde(rename = "type")]
    kind: Option<i64>,
    invocation_id: Option<String>,
    target: Option<String>,
    #[serde(default, deserialize_with = "present")]
    arguments: Option<Box<RawValue>>,
    stream_ids: Option<Vec<String>>,
    headers: Option<Headers>,
    #[serde(default, deserialize_with = "present")]
    item: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Box<RawValue>>,
    error: Option<String>,
    allow_reconnect: Option<bool>,
    sequence_id: Option<u64>,
}

/// Keeps a present property even when its value is `null` (`"item":null` is an item).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(deserializer).map(Some)
}

fn parse_record(text: &[u8]) -> Result<Option<HubMessage>, ProtocolError> {
    let record: Record = serde_json::from_slice(text)
        .map_err(|error| ProtocolError::Malformed(error.to_string()))?;
    let kind = record.kind.ok_or(ProtocolError::MissingProperty("type"))?;
    let message = match kind {
        1 => HubMessage::Invocation(Invocation {
            invocation_id: record.invocation_id.clone().filter(|id| !id.is_empty()),
            target: required(record.target.clone(), "target")?,
            arguments: arguments(record.arguments.clone())?,
            stream_ids: record.stream_ids.clone().unwrap_or_default(),
            headers: record.headers.unwrap_or_default(),
        }),
        4 => HubMessage::StreamInvocation(StreamInvocation {
            invocation_id: required(record.invocation_id, "invocationId")?,
            target: required(record.target, "target")?,
            arguments: arguments(record.arguments)?,
            stream_ids: record.stream_ids.unwrap_or_default(),
            headers: record.headers.unwrap_or_default(),
        }),
        2 => HubMessage::StreamItem(StreamItem {
            invocation_id: required(record.invocation_id, "invocationId")?,
            item: Payload::Json(required(record.item, "item")?),
            headers: record.headers.unwrap_or_default(),
        }),
        3 => HubMessage::Completion(Completion {
            invocation_id: required(record.invocation_id, "invocationId")?,
            outcome: outcome(record.result, record.error)?,
            headers: record.headers.unwrap_or_default(),
        }),
        5 => HubMessage::CancelInvocation(CancelInvocation {
            invocation_id: required(record.invocation_id, "invocationId")?,
            headers: record.headers.unwrap_or_default(),
        }),
        6 => HubMessage::Ping,
        7 => HubMessage::Close(Close {
            error: record.error,
            allow_reconnect: record.allow_reconnect.unwrap_or(false),
        }),
        8 => HubMessage::Ack(Ack {
            sequence_id: required(record.sequence_id, "sequenceId")?,
        }),
        9 => HubMessage::Sequence(Sequence {
            sequence_id: required(record.sequence_id, "sequenceId")?,
        }),
        _ => return Ok(None),
    };
    Ok(Some(message))
}

fn required<T>(value: Option<T>, name: &'static str) -> Result<T, ProtocolError> {
    value.ok_or(ProtocolError::MissingProperty(name))
}

fn arguments(raw: Option<Box<RawValue>>) -> Result<Payload, ProtocolError> {
    let raw = required(raw, "arguments")?;
    if !raw.get().starts_with('[') {
        return Err(ProtocolError::InvalidProperty(
            "Expected 'arguments' to be of type Array.".to_owned(),
        ));
    }
    Ok(Payload::Json(raw))
}

fn outcome(
    result: Option<Box<RawValue>>,
    error: Option<String>,
) -> Result<CompletionOutcome, ProtocolError> {
    match (result, error) {
        (Some(_), Some(_)) => Err(ProtocolError::MutuallyExclusive),
        (None, Some(error)) => Ok(CompletionOutcome::Error(error)),
        (Some(result), None) => Ok(CompletionOutcome::Result(Payload::Json(result))),
        (None, None) => Ok(CompletionOutcome::Void),
    }
}

/// Writes the properties in the reference server's order: `type`, `headers` (when any),
/// `invocationId`, then the type's own properties.
fn write_record(message: &HubMessage, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    out.extend_from_slice(b"{\"type\":");
    out.extend_from_slice(message.type_id().to_string().as_bytes());
    match message {
        HubMessage::Invocation(invocation) => {
            write_headers(&invocation.headers, out);
            if let Some(id) = &invocation.invocation_id {
                write_string_property("invocationId", id, out);
            }
            write_call(
                &invocation.target,
                &invocation.arguments,
                &invocation.stream_ids,
                out,
            )?;
        }
        HubMessage::StreamInvocation(invocation) => {
            write_headers(&invocation.headers, out);
            write_string_property("invocationId", &invocation.invocation_id, out);
            write_call(
                &invocation.target,
                &invocation.arguments,
                &invocation.stream_ids,
                out,
            )?;
        }
        HubMessage::StreamItem(item) => {
            write_headers(&item.headers, out);
            write_string_property("invocationId", &item.invocation_id, out);
            write_value_property("item", &item.item, out)?;
        }
        HubMessage::Completion(completion) => {
            write_headers(&completion.headers, out);
            write_string_property("invocationId", &completion.invocation_id, out);
            match &completion.outcome {
                CompletionOutcome::Void => {}
                CompletionOutcome::Result(value) => write_value_property("result", value, out)?,
                CompletionOutcome::Error(error) => write_string_property("error", error, out),
            }
        }
        HubMessage::CancelInvocation(cancel) => {
            write_headers(&cancel.headers, out);
            write_string_property("invocationId", &cancel.invocation_id, out);
        }
        HubMessage::Ping => {}
        HubMessage::Close(close) => {
            if let Some(error) = &close.error {
                write_string_property("error", error, out);
            }
            if close.allow_reconnect {
                out.extend_from_slice(b",\"allowReconnect\":true");
            }
        }
        HubMessage::Ack(Ack { sequence_id }) | HubMessage::Sequence(Sequence { sequence_id }) => {
            out.extend_from_slice(b",\"sequenceId\":");
            out.extend_from_slice(sequence_id.to_string().as_bytes());
        }
    }
    out.extend_from_slice(&[b'}', RECORD_SEPARATOR]);
    Ok(())
}

fn write_call(
    target: &str,
    arguments: &Payload,
    stream_ids: &[String],
    out: &mut Vec<u8>,
) -> Result<(), ProtocolError> {
    write_string_property("target", target, out);
    write_value_property("arguments", arguments, out)?;
    if !stream_ids.is_empty() {
        out.extend_from_slice(b",\"streamIds\":");
        write_json(stream_ids, out);
    }
    Ok(())
}

fn write_headers(headers: &Headers, out: &mut Vec<u8>) {
    if !headers.is_empty() {
        out.extend_from_slice(b",\"headers\":");
        write_json(headers, out);
    }
}

fn write_string_property(name: &str, value: &str, out: &mut Vec<u8>) {
    out.push(b',');
    write_json(name, out);
    out.push(b':');
    write_json(value, out);
}

fn write_value_property(
    name: &str,
    value: &Payload,
    out: &mut Vec<u8>,
) -> Result<(), ProtocolError> {
    let raw = match value {
        Payload::Json(raw) => raw,
        #[cfg(feature = "messagepack")]
        other => {
            return Err(ProtocolError::PayloadFormat {
                expected: PayloadFormat::Json,
                found: other.format(),
            });
        }
    };
    out.push(b',');
    write_json(name, out);
    out.push(b':');
    out.extend_from_slice(raw.get().as_bytes());
    Ok(())
}

fn write_json<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Strings, string lists and string maps always serialize.
    serde_json::to_writer(&mut *out, value).expect("strings serialize to JSON");
}

#[cfg(test)]
mod tests;
