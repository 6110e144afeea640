//! The `messagepack` hub protocol (PROTOCOL.md §7): each message is one MessagePack array,
//! prefixed with its length as a VarInt (7 bits a byte, least significant group first).
//!
//! Values (`arguments`, `item`, `result`) stay as the raw MessagePack bytes they arrived in
//! ([`Payload::MessagePack`]); this module only walks their structure to find where they end.
//! Reading never trusts a declared length beyond the bytes present, so a message can make the
//! reader allocate no more than the message itself.

mod reader;
mod varint;

use bytes::Bytes;
use rmp::encode;

use crate::message::*;
use crate::payload::{Payload, PayloadFormat};
use crate::{HubProtocol, Parsed, ProtocolError, TransferFormat};
use reader::Reader;

/// The MessagePack hub protocol, version 2 (accepts handshake versions 0 to 2).
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePackHubProtocol;

/// The Completion result kinds.
const RESULT_ERROR: u64 = 1;
const RESULT_VOID: u64 = 2;
const RESULT_VALUE: u64 = 3;

impl HubProtocol for MessagePackHubProtocol {
    fn name(&self) -> &'static str {
        "messagepack"
    }

    fn version(&self) -> u32 {
        2
    }

    fn transfer_format(&self) -> TransferFormat {
        TransferFormat::Binary
    }

    fn payload_format(&self) -> PayloadFormat {
        PayloadFormat::MessagePack
    }

    fn parse(&self, input: &[u8]) -> Result<Parsed, ProtocolError> {
        let Some((length, prefix)) = varint::read(input)? else {
            return Ok(Parsed::Incomplete);
        };
        let Some(body) = input.get(prefix..prefix + length) else {
            return Ok(Parsed::Incomplete);
        };
        let consumed = prefix + length;
        match parse_body(body)? {
            Some(message) => Ok(Parsed::Message(message, consumed)),
            None => Ok(Parsed::Ignored(consumed)),
        }
    }

    fn write(&self, message: &HubMessage, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let mut body = Vec::new();
        write_body(message, &mut body)?;
        varint::write(body.len(), out);
        out.extend_from_slice(&body);
        Ok(())
    }
}

/// The elements of an encoded MessagePack array, each still encoded.
pub(crate) fn array_elements(bytes: &[u8]) -> Result<Vec<&[u8]>, ProtocolError> {
    let mut reader = Reader::new(bytes);
    let length = reader.array_len()?;
    // Each element takes at least one byte: a longer declared length is a lie, refused before
    // anything is allocated for it.
    if length > bytes.len() {
        return Err(ProtocolError::Malformed(
            "the array declares more elements than it holds".into(),
        ));
    }
    (0..length).map(|_| reader.raw_value()).collect()
}

fn parse_body(body: &[u8]) -> Result<Option<HubMessage>, ProtocolError> {
    let mut reader = Reader::new(body);
    let length = reader.array_len()?;
    if length == 0 {
        return Err(ProtocolError::Malformed(
            "a message must not be an empty array".into(),
        ));
    }
    let kind = reader.uint("type")?;
    let need = |minimum: usize, name: &str| {
        if length < minimum {
            Err(ProtocolError::Malformed(format!(
                "Insufficient items in {name} array."
            )))
        } else {
            Ok(())
        }
    };
    let message = match kind {
        1 | 4 => {
            need(
                5,
                if kind == 1 {
                    "Invocation"
                } else {
                    "StreamInvocation"
                },
            )?;
            let headers = reader.headers()?;
            let invocation_id = reader.optional_string("invocationId")?;
            let target = reader.string("target")?;
            let arguments = reader.raw_array("arguments")?;
            let stream_ids = if length >= 6 {
                reader.string_array("streamIds")?
            } else {
                Vec::new()
            };
            let arguments = Payload::MessagePack(Bytes::copy_from_slice(arguments));
            if kind == 1 {
                HubMessage::Invocation(Invocation {
                    headers,
                    invocation_id: invocation_id.filter(|id| !id.is_empty()),
                    target,
                    arguments,
                    stream_ids,
                })
            } else {
                HubMessage::StreamInvocation(StreamInvocation {
                    headers,
                    invocation_id: invocation_id
                        .ok_or(ProtocolError::MissingProperty("invocationId"))?,
                    target,
                    arguments,
                    stream_ids,
                })
            }
        }
        2 => {
            need(4, "StreamItem")?;
            HubMessage::StreamItem(StreamItem {
                headers: reader.headers()?,
                invocation_id: reader.string("invocationId")?,
                item: Payload::MessagePack(Bytes::copy_from_slice(reader.raw_value()?)),
            })
        }
        3 => {
            need(4, "Completion")?;
            let headers = reader.headers()?;
            let invocation_id = reader.string("invocationId")?;
            let outcome = match reader.uint("resultKind")? {
                RESULT_ERROR => {
                    need(5, "Completion")?;
                    CompletionOutcome::Error(reader.string("error")?)
                }
                RESULT_VOID => CompletionOutcome::Void,
                RESULT_VALUE => {
                    need(5, "Completion")?;
                    let value = reader.raw_value()?;
                    CompletionOutcome::Result(Payload::MessagePack(Bytes::copy_from_slice(value)))
                }
                other => {
                    return Err(ProtocolError::Malformed(format!(
                        "Invalid invocation result kind {other}."
                    )));
                }
            };
            HubMessage::Completion(Completion {
                headers,
                invocation_id,
                outcome,
            })
        }
        5 => {
            need(3, "CancelInvocation")?;
            HubMessage::CancelInvocation(CancelInvocation {
                headers: reader.headers()?,
                invocation_id: reader.string("invocationId")?,
            })
        }
        6 => HubMessage::Ping,
        7 => {
            need(2, "Close")?;
            let error = reader.optional_string("error")?;
            let allow_reconnect = if length >= 3 {
                reader.bool("allowReconnect")?
            } else {
                false
            };
            HubMessage::Close(Close {
                error,
                allow_reconnect,
            })
        }
        8 => {
            need(2, "Ack")?;
            HubMessage::Ack(Ack {
                sequence_id: reader.uint("sequenceId")?,
            })
        }
        9 => {
            need(2, "Sequence")?;
            HubMessage::Sequence(Sequence {
                sequence_id: reader.uint("sequenceId")?,
            })
        }
        _ => return Ok(None),
    };
    Ok(Some(message))
}

/// Writes the array layouts of the reference server: Invocations with six elements, Close
/// with three, Ping as `[6]`.
fn write_body(message: &HubMessage, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    let kind = u64::from(message.type_id());
    match message {
        HubMessage::Invocation(invocation) => {
            let id = invocation.invocation_id.as_deref();
            write_call(
                out,
                kind,
                &invocation.headers,
                id,
                &invocation.target,
                &invocation.arguments,
                &invocation.stream_ids,
            )?;
        }
        HubMessage::StreamInvocation(invocation) => {
            let id = Some(invocation.invocation_id.as_str());
            write_call(
                out,
                kind,
                &invocation.headers,
                id,
                &invocation.target,
                &invocation.arguments,
                &invocation.stream_ids,
            )?;
        }
        HubMessage::StreamItem(item) => {
            let value = raw(&item.item)?;
            write_array_len(out, 4);
            write_uint(out, kind);
            write_headers(out, &item.headers);
            write_str(out, &item.invocation_id);
            out.extend_from_slice(value);
        }
        HubMessage::Completion(completion) => {
            let value = match &completion.outcome {
                CompletionOutcome::Result(value) => Some(raw(value)?),
                _ => None,
            };
            let elements = if matches!(completion.outcome, CompletionOutcome::Void) {
                4
            } else {
                5
            };
            write_array_len(out, elements);
            write_uint(out, kind);
            write_headers(out, &completion.headers);
            write_str(out, &completion.invocation_id);
            match &completion.outcome {
                CompletionOutcome::Error(error) => {
                    write_uint(out, RESULT_ERROR);
                    write_str(out, error);
                }
                CompletionOutcome::Void => write_uint(out, RESULT_VOID),
                CompletionOutcome::Result(_) => {
                    write_uint(out, RESULT_VALUE);
                    out.extend_from_slice(value.expect("checked above"));
                }
            }
        }
        HubMessage::CancelInvocation(cancel) => {
            write_array_len(out, 3);
            write_uint(out, kind);
            write_headers(out, &cancel.headers);
            write_str(out, &cancel.invocation_id);
        }
        HubMessage::Ping => {
            write_array_len(out, 1);
            write_uint(out, kind);
        }
        HubMessage::Close(close) => {
            write_array_len(out, 3);
            write_uint(out, kind);
            match &close.error {
                Some(error) => write_str(out, error),
                None => write_nil(out),
            }
            encode::write_bool(out, close.allow_reconnect).expect("writing to a Vec");
        }
        HubMessage::Ack(Ack { sequence_id }) | HubMessage::Sequence(Sequence { sequence_id }) => {
            write_array_len(out, 2);
            write_uint(out, kind);
            write_uint(out, *sequence_id);
        }
    }
    Ok(())
}

fn write_call(
    out: &mut Vec<u8>,
    kind: u64,
    headers: &Headers,
    invocation_id: Option<&str>,
    target: &str,
    arguments: &Payload,
    stream_ids: &[String],
) -> Result<(), ProtocolError> {
    let arguments = raw(arguments)?;
    write_array_len(out, 6);
    write_uint(out, kind);
    write_headers(out, headers);
    match invocation_id {
        Some(id) => write_str(out, id),
        None => write_nil(out),
    }
    write_str(out, target);
    out.extend_from_slice(arguments);
    write_array_len(out, stream_ids.len() as u32);
    for id in stream_ids {
        write_str(out, id);
    }
    Ok(())
}

/// The raw MessagePack bytes of a value, or an error for a value of another format.
fn raw(payload: &Payload) -> Result<&[u8], ProtocolError> {
    match payload {
        Payload::MessagePack(bytes) => Ok(bytes),
        other => Err(ProtocolError::PayloadFormat {
            expected: PayloadFormat::MessagePack,
            found: other.format(),
        }),
    }
}

// Writing into a `Vec` cannot fail; these wrappers say so once.

fn write_array_len(out: &mut Vec<u8>, length: u32) {
    encode::write_array_len(out, length).expect("writing to a Vec");
}

fn write_uint(out: &mut Vec<u8>, value: u64) {
    encode::write_uint(out, value).expect("writing to a Vec");
}

fn write_str(out: &mut Vec<u8>, value: &str) {
    encode::write_str(out, value).expect("writing to a Vec");
}

fn write_nil(out: &mut Vec<u8>) {
    encode::write_nil(out).expect("writing to a Vec");
}

fn write_headers(out: &mut Vec<u8>, headers: &Headers) {
    encode::write_map_len(out, headers.len() as u32).expect("writing to a Vec");
    for (name, value) in headers {
        write_str(out, name);
        write_str(out, value);
    }
}

#[cfg(test)]
mod tests;
