//! The length prefix of MessagePack hub messages: an unsigned 32-bit VarInt of one to five
//! bytes, seven bits each, least significant group first, the high bit meaning "more".

use crate::ProtocolError;

/// The largest message length the prefix may declare (2 GiB - 1).
const MAX_LENGTH: u64 = i32::MAX as u64;

/// Reads a prefix: `(length, prefix size)`, or `None` when the prefix is not complete yet.
///
/// # Errors
/// A prefix longer than five bytes or declaring more than 2 GiB.
pub(crate) fn read(input: &[u8]) -> Result<Option<(usize, usize)>, ProtocolError> {
    let mut length: u64 = 0;
    for (index, &byte) in input.iter().enumerate().take(5) {
        length |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            if length > MAX_LENGTH {
                return Err(ProtocolError::Malformed(
                    "Messages over 2GB in size are not supported.".into(),
                ));
            }
            return Ok(Some((length as usize, index + 1)));
        }
    }
    if input.len() >= 5 {
        return Err(ProtocolError::Malformed(
            "Messages over 2GB in size are not supported.".into(),
        ));
    }
    Ok(None)
}

/// Appends the prefix for `length`.
pub(crate) fn write(mut length: usize, out: &mut Vec<u8>) {
    loop {
        let group = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            out.push(group);
            return;
        }
        out.push(group | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_from_the_spec() {
        assert_eq!(read(&[0x35]).unwrap(), Some((53, 1)));
        assert_eq!(read(&[0x80, 0x29]).unwrap(), Some((5248, 2)));
        let mut out = Vec::new();
        write(5248, &mut out);
        assert_eq!(out, [0x80, 0x29]);
    }

    #[test]
    fn partial_prefixes_wait_for_more() {
        assert_eq!(read(&[]).unwrap(), None);
        assert_eq!(read(&[0x80]).unwrap(), None);
        assert_eq!(read(&[0xff, 0xff, 0xff, 0xff]).unwrap(), None);
    }

    #[test]
    fn the_largest_prefix_and_beyond() {
        assert_eq!(
            read(&[0xff, 0xff, 0xff, 0xff, 0x07]).unwrap(),
            Some((i32::MAX as usize, 5))
        );
        assert!(read(&[0xff, 0xff, 0xff, 0xff, 0x08]).is_err());
        assert!(read(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
    }

    #[test]
    fn round_trips() {
        for length in [0, 1, 127, 128, 16_383, 16_384, 2_097_152, i32::MAX as usize] {
            let mut out = Vec::new();
            write(length, &mut out);
            assert_eq!(read(&out).unwrap(), Some((length, out.len())));
        }
    }
}
