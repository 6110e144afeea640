//! A cursor over one MessagePack message body that reads the envelope fields and finds where
//! raw values end, without trusting declared lengths beyond the bytes present.

use rmp::Marker;

use crate::ProtocolError;
use crate::message::Headers;

pub(crate) struct Reader<'a> {
    input: &'a [u8],
    position: usize,
}

fn malformed(text: impl Into<String>) -> ProtocolError {
    ProtocolError::Malformed(text.into())
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Reader { input, position: 0 }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], ProtocolError> {
        let end = self
            .position
            .checked_add(count)
            .filter(|&end| end <= self.input.len());
        let end = end.ok_or_else(|| malformed("the message ended inside a value"))?;
        let bytes = &self.input[self.position..end];
        self.position = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take(1)?[0])
    }

    fn be(&mut self, width: usize) -> Result<u64, ProtocolError> {
        Ok(self
            .take(width)?
            .iter()
            .fold(0, |value, &byte| (value << 8) | u64::from(byte)))
    }

    fn marker(&mut self) -> Result<Marker, ProtocolError> {
        Ok(Marker::from_u8(self.byte()?))
    }

    fn peek_marker(&self) -> Result<Marker, ProtocolError> {
        let byte = self
            .input
            .get(self.position)
            .ok_or_else(|| malformed("the message ended early"))?;
        Ok(Marker::from_u8(*byte))
    }

    /// The length of an array.
    pub(crate) fn array_len(&mut self) -> Result<usize, ProtocolError> {
        match self.marker()? {
            Marker::FixArray(length) => Ok(usize::from(length)),
            Marker::Array16 => Ok(self.be(2)? as usize),
            Marker::Array32 => Ok(self.be(4)? as usize),
            _ => Err(malformed("expected an array")),
        }
    }

    fn map_len(&mut self) -> Result<usize, ProtocolError> {
        match self.marker()? {
            Marker::FixMap(length) => Ok(usize::from(length)),
            Marker::Map16 => Ok(self.be(2)? as usize),
            Marker::Map32 => Ok(self.be(4)? as usize),
            _ => Err(malformed("expected a map")),
        }
    }

    /// A non-negative integer of any width.
    pub(crate) fn uint(&mut self, name: &str) -> Result<u64, ProtocolError> {
        let value = match self.marker()? {
            Marker::FixPos(value) => u64::from(value),
            Marker::U8 => self.be(1)?,
            Marker::U16 => self.be(2)?,
            Marker::U32 => self.be(4)?,
            Marker::U64 => self.be(8)?,
            Marker::I8 => signed(self.be(1)? as u8 as i8 as i64)?,
            Marker::I16 => signed(self.be(2)? as u16 as i16 as i64)?,
            Marker::I32 => signed(self.be(4)? as u32 as i32 as i64)?,
            Marker::I64 => signed(self.be(8)? as i64)?,
            _ => return Err(malformed(format!("'{name}' must be an integer"))),
        };
        Ok(value)
    }

    pub(crate) fn bool(&mut self, name: &str) -> Result<bool, ProtocolError> {
        match self.marker()? {
            Marker::True => Ok(true),
            Marker::False => Ok(false),
            _ => Err(malformed(format!("'{name}' must be a boolean"))),
        }
    }

    /// A string, or `None` for nil.
    pub(crate) fn optional_string(&mut self, name: &str) -> Result<Option<String>, ProtocolError> {
        let length = match self.marker()? {
            Marker::Null => return Ok(None),
            Marker::FixStr(length) => usize::from(length),
            Marker::Str8 => self.be(1)? as usize,
            Marker::Str16 => self.be(2)? as usize,
            Marker::Str32 => self.be(4)? as usize,
            _ => return Err(malformed(format!("'{name}' must be a string"))),
        };
        let bytes = self.take(length)?;
        let text =
            std::str::from_utf8(bytes).map_err(|_| malformed(format!("'{name}' is not UTF-8")))?;
        Ok(Some(text.to_owned()))
    }

    pub(crate) fn string(&mut self, name: &'static str) -> Result<String, ProtocolError> {
        self.optional_string(name)?
            .ok_or(ProtocolError::MissingProperty(name))
    }

    /// A map of string names to string values.
    pub(crate) fn headers(&mut self) -> Result<Headers, ProtocolError> {
        let length = self.map_len()?;
        let mut headers = Headers::new();
        for _ in 0..length {
            let name = self.string("header name")?;
            let value = self.string("header value")?;
            headers.insert(name, value);
        }
        Ok(headers)
    }

    /// An array of strings (nil counts as empty).
    pub(crate) fn string_array(
        &mut self,
        name: &'static str,
    ) -> Result<Vec<String>, ProtocolError> {
        if matches!(self.peek_marker()?, Marker::Null) {
            self.position += 1;
            return Ok(Vec::new());
        }
        let length = self.array_len()?;
        let mut items = Vec::new();
        for _ in 0..length {
            items.push(self.string(name)?);
        }
        Ok(items)
    }

    /// The bytes of the next value, which must be an array.
    pub(crate) fn raw_array(&mut self, name: &str) -> Result<&'a [u8], ProtocolError> {
        match self.peek_marker()? {
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => self.raw_value(),
            _ => Err(malformed(format!("'{name}' must be an array"))),
        }
    }

    /// The bytes of the next value, whatever it is.
    ///
    /// Walks nested arrays and maps with a counter instead of recursion, so deep nesting
    /// cannot exhaust the stack; a declared element count larger than the bytes left is
    /// refused at once.
    pub(crate) fn raw_value(&mut self) -> Result<&'a [u8], ProtocolError> {
        let start = self.position;
        let mut pending: usize = 1;
        while pending > 0 {
            pending -= 1;
            let nested = self.skip_one()?;
            pending = pending
                .checked_add(nested)
                .ok_or_else(|| malformed("too many elements"))?;
            if pending > self.input.len() - self.position {
                return Err(malformed(
                    "the message declares more elements than it holds",
                ));
            }
        }
        Ok(&self.input[start..self.position])
    }

    /// Skips one value's own bytes; returns how many nested values follow it.
    fn skip_one(&mut self) -> Result<usize, ProtocolError> {
        let skip = |reader: &mut Self, count: usize| reader.take(count).map(|_| 0);
        match self.marker()? {
            Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
                Ok(0)
            }
            Marker::U8 | Marker::I8 => skip(self, 1),
            Marker::U16 | Marker::I16 => skip(self, 2),
            Marker::U32 | Marker::I32 | Marker::F32 => skip(self, 4),
            Marker::U64 | Marker::I64 | Marker::F64 => skip(self, 8),
            Marker::FixStr(length) => skip(self, usize::from(length)),
            Marker::Str8 | Marker::Bin8 => {
                let length = self.be(1)? as usize;
                skip(self, length)
            }
            Marker::Str16 | Marker::Bin16 => {
                let length = self.be(2)? as usize;
                skip(self, length)
            }
            Marker::Str32 | Marker::Bin32 => {
                let length = self.be(4)? as usize;
                skip(self, length)
            }
            Marker::FixExt1 => skip(self, 2),
            Marker::FixExt2 => skip(self, 3),
            Marker::FixExt4 => skip(self, 5),
            Marker::FixExt8 => skip(self, 9),
            Marker::FixExt16 => skip(self, 17),
            Marker::Ext8 => {
                let length = self.be(1)? as usize;
                skip(self, length + 1)
            }
            Marker::Ext16 => {
                let length = self.be(2)? as usize;
                skip(self, length + 1)
            }
            Marker::Ext32 => {
                let length = self.be(4)? as usize;
                skip(self, length + 1)
            }
            Marker::FixArray(length) => Ok(usize::from(length)),
            Marker::Array16 => Ok(self.be(2)? as usize),
            Marker::Array32 => Ok(self.be(4)? as usize),
            Marker::FixMap(length) => Ok(usize::from(length) * 2),
            Marker::Map16 => Ok(self.be(2)? as usize * 2),
            Marker::Map32 => Ok(self.be(4)? as usize * 2),
            Marker::Reserved => Err(malformed("reserved marker 0xc1")),
        }
    }
}

fn signed(value: i64) -> Result<u64, ProtocolError> {
    u64::try_from(value).map_err(|_| malformed("expected a non-negative integer"))
}
