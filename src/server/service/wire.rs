//! The Protocol Buffers wire format, as much of it as claimgate reads and writes by hand.
//!
//! Reading follows prost's rules exactly (varint limits, key checks, groups, the recursion
//! limit), so that a message prost accepts is read the same way here; `request.rs` holds the
//! proof. Writing is plain: keys, varints and length-delimited fields.

use bytes::BufMut;

/// A field's wire type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WireType {
    Varint,
    SixtyFourBit,
    LengthDelimited,
    StartGroup,
    EndGroup,
    ThirtyTwoBit,
}

/// Why a message could not be read; the text follows prost's for the same fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("failed to decode Protobuf message: {0}")]
pub struct WireError(pub(super) &'static str);

/// prost's default nesting limit: a message nested deeper is refused, not walked.
pub(super) const RECURSION_LIMIT: u32 = 100;

/// A byte range of the message being read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The bytes of `buf` this span covers.
    pub(super) fn of<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        // Spans are only made by a `Reader` over this same buffer.
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// Reads fields from one message: the whole buffer, or a nested message's span of it.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader of the whole of `buf`.
    pub(super) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            end: buf.len(),
        }
    }

    /// The bytes of `span`, a span of this reader's buffer.
    pub(super) fn slice(&self, span: Span) -> &'a [u8] {
        span.of(self.buf)
    }

    /// A reader of the nested message at `span` of the same buffer.
    pub(super) fn nested(&self, span: Span) -> Reader<'a> {
        Reader {
            buf: self.buf,
            pos: span.start as usize,
            end: span.end as usize,
        }
    }

    fn byte(&mut self) -> Result<u8, WireError> {
        if self.pos >= self.end {
            return Err(WireError("buffer underflow"));
        }
        let b = self.buf.get(self.pos).copied().unwrap_or_default();
        self.pos += 1;
        Ok(b)
    }

    /// A base-128 varint of at most ten bytes, the tenth below 2 (no overflow of 64 bits).
    pub(super) fn varint(&mut self) -> Result<u64, WireError> {
        if self.pos >= self.end {
            return Err(WireError("invalid varint"));
        }
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.byte().map_err(|_| WireError("invalid varint"))?;
            if i == 9 && b >= 0x02 {
                return Err(WireError("invalid varint"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError("invalid varint"))
    }

    /// The next field's tag and wire type, or `None` at the end of the message.
    pub(super) fn key(&mut self) -> Result<Option<(u32, WireType)>, WireError> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(WireError("invalid key value"));
        }
        let wire_type = match key & 0x07 {
            0 => WireType::Varint,
            1 => WireType::SixtyFourBit,
            2 => WireType::LengthDelimited,
            3 => WireType::StartGroup,
            4 => WireType::EndGroup,
            5 => WireType::ThirtyTwoBit,
            _ => return Err(WireError("invalid wire type value")),
        };
        let tag = (key as u32) >> 3;
        if tag == 0 {
            return Err(WireError("invalid tag value: 0"));
        }
        Ok(Some((tag, wire_type)))
    }

    /// A length-delimited field's bytes, for a field that must be length-delimited.
    pub(super) fn delimited(&mut self, wire_type: WireType) -> Result<Span, WireError> {
        if wire_type != WireType::LengthDelimited {
            return Err(WireError("invalid wire type"));
        }
        let len = self.varint()?;
        if len > (self.end - self.pos) as u64 {
            return Err(WireError("buffer underflow"));
        }
        let start = self.pos;
        self.pos += len as usize;
        // The caller caps messages far below 4 GiB (tonic's limit is 4 MiB by default).
        Ok(Span {
            start: start as u32,
            end: self.pos as u32,
        })
    }

    /// A length-delimited string field, checked to be UTF-8 as prost checks every string.
    pub(super) fn string(&mut self, wire_type: WireType) -> Result<Span, WireError> {
        let span = self.delimited(wire_type)?;
        std::str::from_utf8(span.of(self.buf))
            .map_err(|_| WireError("invalid string value: data is not UTF-8 encoded"))?;
        Ok(span)
    }

    /// Pass over a field not read, as prost does: groups to their matching end, within
    /// `limit` levels of nesting.
    pub(super) fn skip(
        &mut self,
        tag: u32,
        wire_type: WireType,
        limit: u32,
    ) -> Result<(), WireError> {
        if limit == 0 {
            return Err(WireError("recursion limit reached"));
        }
        let len = match wire_type {
            WireType::Varint => self.varint().map(|_| 0)?,
            WireType::ThirtyTwoBit => 4,
            WireType::SixtyFourBit => 8,
            WireType::LengthDelimited => self.varint()?,
            WireType::StartGroup => loop {
                match self.key()? {
                    None => return Err(WireError("invalid varint")),
                    Some((inner, WireType::EndGroup)) => {
                        if inner != tag {
                            return Err(WireError("unexpected end group tag"));
                        }
                        break 0;
                    }
                    Some((inner, wt)) => self.skip(inner, wt, limit - 1)?,
                }
            },
            WireType::EndGroup => return Err(WireError("unexpected end group tag")),
        };
        if len > (self.end - self.pos) as u64 {
            return Err(WireError("buffer underflow"));
        }
        self.pos += len as usize;
        Ok(())
    }
}

/// The bytes a varint of `v` takes.
pub(super) const fn varint_len(v: u64) -> usize {
    // Each byte carries seven bits; zero still takes one byte.
    ((((v | 1).leading_zeros() ^ 63) * 9 + 73) / 64) as usize
}

pub(super) fn put_varint(out: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// The bytes of a length-delimited field with tag `tag` and a body of `len` bytes.
pub(super) const fn delimited_len(tag: u32, len: usize) -> usize {
    varint_len((tag as u64) << 3) + varint_len(len as u64) + len
}

/// The key and length of a length-delimited field; its body follows.
pub(super) fn put_delimited_head(out: &mut impl BufMut, tag: u32, len: usize) {
    put_varint(out, (u64::from(tag) << 3) | 2);
    put_varint(out, len as u64);
}

/// A string or bytes field, always written (even empty: reading it back gives the same value).
pub(super) fn put_bytes(out: &mut impl BufMut, tag: u32, data: &[u8]) {
    put_delimited_head(out, tag, data.len());
    out.put_slice(data);
}

/// A varint field.
pub(super) fn put_varint_field(out: &mut impl BufMut, tag: u32, v: u64) {
    put_varint(out, u64::from(tag) << 3);
    put_varint(out, v);
}

/// The bytes of a varint field.
pub(super) const fn varint_field_len(tag: u32, v: u64) -> usize {
    varint_len((tag as u64) << 3) + varint_len(v)
}
