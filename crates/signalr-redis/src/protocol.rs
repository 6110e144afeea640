//! The backplane's messages on Redis, in the reference's MessagePack layout (PROTOCOL.md §15),
//! so that nodes of this crate and ASP.NET Core nodes can share one Redis.
//!
//! - Invocation: `[excluded ids, {protocol name: framed bytes}, (invocation id, return
//!   channel)?, origin?]`
//! - Group command: `[id, server name, action (1 add, 2 remove), group, connection id]`
//! - Ack: `[id]`
//! - Client-result return: `[protocol name, framed Completion]`
//!
//! Readers check a minimum length and ignore extra items, as the reference's do. That lets
//! this crate add one item of its own, the *origin*: the name of the node that published an
//! invocation, in fifth place behind two nils (which the reference reads as "no invocation
//! id"). A node delivers its own messages to its local connections directly, so it skips them
//! when Redis brings them back.

use bytes::Bytes;
use rmp::Marker;

/// A message for connections, as carried between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisInvocation {
    /// Connections that must not get the message.
    pub excluded: Vec<String>,
    /// The framed message per protocol name.
    pub frames: Vec<(String, Bytes)>,
    /// For a client-result invocation: its id and the channel the answer goes back on.
    pub result_route: Option<(String, String)>,
    /// The node that published it (this crate's nodes only).
    pub origin: Option<String>,
}

/// Adds a connection to a group or removes it, on the node that owns the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCommand {
    /// Matches the ack to the command.
    pub id: u32,
    /// The node waiting for the ack.
    pub server_name: String,
    /// What to do.
    pub action: GroupAction,
    /// The group.
    pub group: String,
    /// The connection.
    pub connection_id: String,
}

/// A [`GroupCommand`]'s action, with the reference's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAction {
    /// Code 1.
    Add,
    /// Code 2.
    Remove,
}

/// A client's answer to a client-result invocation, relayed to the node that asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedCompletion {
    /// The protocol the Completion is framed in (the answering connection's).
    pub protocol: String,
    /// The framed Completion.
    pub completion: Bytes,
}

/// Why a message from Redis could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

impl DecodeError {
    pub(crate) fn new(text: &str) -> Self {
        DecodeError(text.to_owned())
    }
}

impl RedisInvocation {
    /// The MessagePack bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let length = match (&self.result_route, &self.origin) {
            (_, Some(_)) => 5,
            (Some(_), None) => 4,
            (None, None) => 2,
        };
        write_array_len(&mut out, length);
        write_array_len(&mut out, self.excluded.len());
        for id in &self.excluded {
            write_str(&mut out, id);
        }
        write_map_len(&mut out, self.frames.len());
        for (protocol, bytes) in &self.frames {
            write_str(&mut out, protocol);
            write_bin(&mut out, bytes);
        }
        if length > 2 {
            match &self.result_route {
                Some((invocation_id, return_channel)) => {
                    write_str(&mut out, invocation_id);
                    write_str(&mut out, return_channel);
                }
                None => out.extend_from_slice(&[NIL, NIL]),
            }
        }
        if let Some(origin) = &self.origin {
            write_str(&mut out, origin);
        }
        out
    }

    /// Reads an invocation; the framed messages share `bytes`.
    ///
    /// # Errors
    /// Malformed MessagePack, or fewer than two items (`Insufficient items in Invocation
    /// array.`).
    pub fn decode(bytes: &Bytes) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        let length = reader.array_len()?;
        if length < 2 {
            return Err(insufficient("Invocation"));
        }
        let excluded = (0..reader.array_len()?)
            .map(|_| reader.string())
            .collect::<Result<_, _>>()?;
        let frames = (0..reader.map_len()?)
            .map(|_| Ok((reader.string()?, reader.bin()?)))
            .collect::<Result<_, DecodeError>>()?;
        let mut result_route = None;
        let mut origin = None;
        if length > 3 {
            let invocation_id = reader.string_or_nil()?;
            let return_channel = reader.string_or_nil()?;
            if let (Some(id), Some(channel)) = (invocation_id, return_channel)
                && !id.is_empty()
            {
                result_route = Some((id, channel));
            }
        }
        if length > 4 {
            origin = reader.string_or_nil()?;
        }
        Ok(RedisInvocation {
            excluded,
            frames,
            result_route,
            origin,
        })
    }
}

impl GroupCommand {
    /// The MessagePack bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_array_len(&mut out, 5);
        write_uint(&mut out, u64::from(self.id));
        write_str(&mut out, &self.server_name);
        write_uint(&mut out, self.action.code().into());
        write_str(&mut out, &self.group);
        write_str(&mut out, &self.connection_id);
        out
    }

    /// Reads a group command.
    ///
    /// # Errors
    /// Malformed MessagePack, fewer than five items, or an unknown action.
    pub fn decode(bytes: &Bytes) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        if reader.array_len()? < 5 {
            return Err(insufficient("GroupCommand"));
        }
        let id = reader.uint32()?;
        let server_name = reader.string()?;
        let action = match reader.uint32()? {
            1 => GroupAction::Add,
            2 => GroupAction::Remove,
            other => return Err(DecodeError(format!("unknown group action {other}"))),
        };
        Ok(GroupCommand {
            id,
            server_name,
            action,
            group: reader.string()?,
            connection_id: reader.string()?,
        })
    }
}

impl GroupAction {
    fn code(self) -> u8 {
        match self {
            GroupAction::Add => 1,
            GroupAction::Remove => 2,
        }
    }
}

/// The MessagePack bytes of an ack for command `id`.
pub fn encode_ack(id: u32) -> Vec<u8> {
    let mut out = Vec::new();
    write_array_len(&mut out, 1);
    write_uint(&mut out, u64::from(id));
    out
}

/// Reads an ack's command id.
///
/// # Errors
/// Malformed MessagePack, or an empty array.
pub fn decode_ack(bytes: &Bytes) -> Result<u32, DecodeError> {
    let mut reader = Reader::new(bytes);
    if reader.array_len()? < 1 {
        return Err(insufficient("Ack"));
    }
    reader.uint32()
}

impl RelayedCompletion {
    /// The MessagePack bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_array_len(&mut out, 2);
        write_str(&mut out, &self.protocol);
        write_bin(&mut out, &self.completion);
        out
    }

    /// Reads a relayed Completion; its bytes share `bytes`.
    ///
    /// # Errors
    /// Malformed MessagePack, or fewer than two items.
    pub fn decode(bytes: &Bytes) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        if reader.array_len()? < 2 {
            return Err(insufficient("CompletionMessage"));
        }
        Ok(RelayedCompletion {
            protocol: reader.string()?,
            completion: reader.bin()?,
        })
    }
}

fn insufficient(kind: &str) -> DecodeError {
    DecodeError(format!("Insufficient items in {kind} array."))
}

const NIL: u8 = 0xc0;

// Writing into a Vec cannot fail, so the writers' errors are unreachable.

fn write_array_len(out: &mut Vec<u8>, length: usize) {
    let length = u32::try_from(length).expect("fewer than 2^32 items");
    rmp::encode::write_array_len(out, length).expect("writing to a Vec");
}

fn write_map_len(out: &mut Vec<u8>, length: usize) {
    let length = u32::try_from(length).expect("fewer than 2^32 items");
    rmp::encode::write_map_len(out, length).expect("writing to a Vec");
}

fn write_str(out: &mut Vec<u8>, text: &str) {
    rmp::encode::write_str(out, text).expect("writing to a Vec");
}

fn write_bin(out: &mut Vec<u8>, bytes: &[u8]) {
    rmp::encode::write_bin(out, bytes).expect("writing to a Vec");
}

fn write_uint(out: &mut Vec<u8>, value: u64) {
    rmp::encode::write_uint(out, value).expect("writing to a Vec");
}

/// Reads MessagePack items from the front of shared bytes.
struct Reader<'b> {
    bytes: &'b Bytes,
    at: usize,
}

impl<'b> Reader<'b> {
    fn new(bytes: &'b Bytes) -> Self {
        Reader { bytes, at: 0 }
    }

    fn marker(&mut self) -> Result<Marker, DecodeError> {
        let byte = *self.bytes.get(self.at).ok_or_else(truncated)?;
        self.at += 1;
        Ok(Marker::from_u8(byte))
    }

    fn peek_nil(&self) -> bool {
        self.bytes.get(self.at) == Some(&NIL)
    }

    /// `count` big-endian bytes as a number.
    fn be(&mut self, count: usize) -> Result<u64, DecodeError> {
        let end = self.at.checked_add(count).ok_or_else(truncated)?;
        let slice = self.bytes.get(self.at..end).ok_or_else(truncated)?;
        self.at = end;
        Ok(slice
            .iter()
            .fold(0_u64, |value, byte| (value << 8) | u64::from(*byte)))
    }

    fn take(&mut self, length: u64) -> Result<Bytes, DecodeError> {
        let length = usize::try_from(length).map_err(|_| truncated())?;
        let end = self.at.checked_add(length).ok_or_else(truncated)?;
        if end > self.bytes.len() {
            return Err(truncated());
        }
        let taken = self.bytes.slice(self.at..end);
        self.at = end;
        Ok(taken)
    }

    fn array_len(&mut self) -> Result<u64, DecodeError> {
        match self.marker()? {
            Marker::FixArray(length) => Ok(length.into()),
            Marker::Array16 => self.be(2),
            Marker::Array32 => self.be(4),
            other => Err(unexpected("an array", other)),
        }
    }

    fn map_len(&mut self) -> Result<u64, DecodeError> {
        match self.marker()? {
            Marker::FixMap(length) => Ok(length.into()),
            Marker::Map16 => self.be(2),
            Marker::Map32 => self.be(4),
            other => Err(unexpected("a map", other)),
        }
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        self.string_or_nil()?
            .ok_or_else(|| DecodeError("expected a string, found nil".into()))
    }

    fn string_or_nil(&mut self) -> Result<Option<String>, DecodeError> {
        if self.peek_nil() {
            self.at += 1;
            return Ok(None);
        }
        let length = match self.marker()? {
            Marker::FixStr(length) => length.into(),
            Marker::Str8 => self.be(1)?,
            Marker::Str16 => self.be(2)?,
            Marker::Str32 => self.be(4)?,
            other => return Err(unexpected("a string", other)),
        };
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| DecodeError("a string is not UTF-8".into()))
    }

    fn bin(&mut self) -> Result<Bytes, DecodeError> {
        let length = match self.marker()? {
            Marker::Bin8 => self.be(1)?,
            Marker::Bin16 => self.be(2)?,
            Marker::Bin32 => self.be(4)?,
            other => return Err(unexpected("binary data", other)),
        };
        self.take(length)
    }

    fn uint32(&mut self) -> Result<u32, DecodeError> {
        let value = match self.marker()? {
            Marker::FixPos(value) => value.into(),
            Marker::U8 => self.be(1)?,
            Marker::U16 => self.be(2)?,
            Marker::U32 => self.be(4)?,
            Marker::I8 | Marker::I16 | Marker::I32 | Marker::I64 | Marker::FixNeg(_) => {
                return Err(DecodeError("expected a non-negative integer".into()));
            }
            other => return Err(unexpected("an integer", other)),
        };
        u32::try_from(value).map_err(|_| DecodeError("an integer is out of range".into()))
    }
}

fn truncated() -> DecodeError {
    DecodeError("the message ends early".into())
}

fn unexpected(wanted: &str, found: Marker) -> DecodeError {
    DecodeError(format!("expected {wanted}, found {found:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(excluded: &[&str]) -> RedisInvocation {
        RedisInvocation {
            excluded: excluded.iter().map(|id| id.to_string()).collect(),
            frames: vec![
                ("json".into(), Bytes::from_static(b"{}\x1e")),
                ("messagepack".into(), Bytes::from_static(&[0x01, 0x90])),
            ],
            result_route: None,
            origin: None,
        }
    }

    // Byte vectors written out from the reference's layout (RedisProtocol.WriteInvocation and
    // friends), item by item.

    #[test]
    fn an_invocation_as_the_reference_writes_it() {
        let bytes = invocation(&["a"]).encode();
        let expected: &[u8] = &[
            0x92, // array of 2
            0x91, 0xa1, b'a', // excluded: ["a"]
            0x82, // map of 2
            0xa4, b'j', b's', b'o', b'n', 0xc4, 0x03, b'{', b'}', 0x1e, // "json": bin(3)
            0xab, b'm', b'e', b's', b's', b'a', b'g', b'e', b'p', b'a', b'c', b'k', 0xc4, 0x02,
            0x01, 0x90, // "messagepack": bin(2)
        ];
        assert_eq!(bytes, expected);
        assert_eq!(
            RedisInvocation::decode(&Bytes::from(bytes)).unwrap(),
            invocation(&["a"])
        );
    }

    #[test]
    fn no_exclusions_is_an_empty_array() {
        let bytes = invocation(&[]).encode();
        assert_eq!(&bytes[..3], &[0x92, 0x90, 0x82]);
    }

    #[test]
    fn a_client_result_invocation_carries_its_id_and_return_channel() {
        let mut message = invocation(&[]);
        message.frames.truncate(1);
        message.result_route = Some(("i1".into(), "H:internal:return:n".into()));
        let bytes = message.encode();
        let mut expected = vec![0x94, 0x90, 0x81];
        expected.extend_from_slice(&[0xa4, b'j', b's', b'o', b'n', 0xc4, 0x03, b'{', b'}', 0x1e]);
        expected.extend_from_slice(&[0xa2, b'i', b'1', 0xb3]);
        expected.extend_from_slice(b"H:internal:return:n");
        assert_eq!(bytes, expected);
        assert_eq!(
            RedisInvocation::decode(&Bytes::from(bytes)).unwrap(),
            message
        );
    }

    #[test]
    fn the_origin_follows_two_nils() {
        let mut message = invocation(&[]);
        message.frames.clear();
        message.origin = Some("n1".into());
        let bytes = message.encode();
        assert_eq!(bytes, [0x95, 0x90, 0x80, 0xc0, 0xc0, 0xa2, b'n', b'1']);
        assert_eq!(
            RedisInvocation::decode(&Bytes::from(bytes)).unwrap(),
            message
        );
    }

    #[test]
    fn extra_items_are_ignored_and_missing_ones_refused() {
        // A reference reader's view of a longer array: the first items still decode.
        let bytes = Bytes::from_static(&[0x96, 0x90, 0x80, 0xc0, 0xc0, 0xc0, 0x2a]);
        let read = RedisInvocation::decode(&bytes).unwrap();
        assert_eq!((read.result_route, read.origin), (None, None));
        assert_eq!(
            RedisInvocation::decode(&Bytes::from_static(&[0x91, 0x90])),
            Err(DecodeError(
                "Insufficient items in Invocation array.".into()
            ))
        );
        assert_eq!(
            RedisInvocation::decode(&Bytes::from_static(&[0x92, 0x90, 0x81, 0xa1])),
            Err(DecodeError("the message ends early".into()))
        );
    }

    #[test]
    fn a_group_command_and_its_ack() {
        let command = GroupCommand {
            id: 300,
            server_name: "n".into(),
            action: GroupAction::Remove,
            group: "g".into(),
            connection_id: "c".into(),
        };
        let bytes = command.encode();
        assert_eq!(
            bytes,
            [
                0x95, 0xcd, 0x01, 0x2c, 0xa1, b'n', 0x02, 0xa1, b'g', 0xa1, b'c'
            ]
        );
        assert_eq!(GroupCommand::decode(&Bytes::from(bytes)).unwrap(), command);
        assert_eq!(encode_ack(7), [0x91, 0x07]);
        assert_eq!(decode_ack(&Bytes::from_static(&[0x91, 0x07])), Ok(7));
        assert_eq!(
            decode_ack(&Bytes::from_static(&[0x90])),
            Err(DecodeError("Insufficient items in Ack array.".into()))
        );
    }

    #[test]
    fn a_relayed_completion() {
        let relayed = RelayedCompletion {
            protocol: "json".into(),
            completion: Bytes::from_static(b"x\x1e"),
        };
        let bytes = relayed.encode();
        assert_eq!(
            bytes,
            [0x92, 0xa4, b'j', b's', b'o', b'n', 0xc4, 0x02, b'x', 0x1e]
        );
        assert_eq!(
            RelayedCompletion::decode(&Bytes::from(bytes)).unwrap(),
            relayed
        );
    }
}
