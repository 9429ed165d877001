//! The request headers as the host hands them over: one buffer in the
//! proxy-wasm map encoding, read in place. Copying every name and value into
//! its own allocation (as the SDK's `get_http_request_headers` does) cost
//! more than the rest of the header checks together.

/// `count: u32le`, then `count` × (`name_len: u32le`, `value_len: u32le`),
/// then each name and each value followed by a NUL byte.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeaderBlock {
    bytes: Vec<u8>,
    count: usize,
}

const U32: usize = 4;

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let word: [u8; U32] = bytes.get(at..at + U32)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(word)).ok()
}

impl HeaderBlock {
    /// Takes the host's buffer; one that does not follow the encoding to its
    /// last byte reads as no headers at all (and a request without `:path`
    /// is refused), never as a partial list.
    pub fn new(bytes: Vec<u8>) -> HeaderBlock {
        match Self::check(&bytes) {
            Some(count) => HeaderBlock { bytes, count },
            None => HeaderBlock::default(),
        }
    }

    /// The number of pairs, when the lengths add up exactly to the buffer.
    fn check(bytes: &[u8]) -> Option<usize> {
        let count = u32_at(bytes, 0)?;
        let mut end = count.checked_mul(2 * U32)?.checked_add(U32)?;
        for i in 0..count {
            let name = u32_at(bytes, U32 + i * 2 * U32)?;
            let value = u32_at(bytes, 2 * U32 + i * 2 * U32)?;
            end = end.checked_add(name)?.checked_add(value)?.checked_add(2)?;
        }
        (end == bytes.len()).then_some(count)
    }

    /// The encoding of `pairs`, as the host writes it (for tests and bench/stages).
    pub fn from_pairs<'p>(pairs: impl IntoIterator<Item = (&'p str, &'p [u8])>) -> HeaderBlock {
        let pairs: Vec<_> = pairs.into_iter().collect();
        let mut bytes = Vec::new();
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        bytes.extend_from_slice(&len(pairs.len()));
        for (name, value) in &pairs {
            bytes.extend_from_slice(&len(name.len()));
            bytes.extend_from_slice(&len(value.len()));
        }
        for (name, value) in &pairs {
            for part in [name.as_bytes(), value] {
                bytes.extend_from_slice(part);
                bytes.push(0);
            }
        }
        HeaderBlock::new(bytes)
    }

    /// Every (name, value) in the host's order; names are lower-case.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let mut data = U32 + self.count * 2 * U32;
        (0..self.count).map_while(move |i| {
            let name_len = u32_at(&self.bytes, U32 + i * 2 * U32)?;
            let value_len = u32_at(&self.bytes, 2 * U32 + i * 2 * U32)?;
            let name = self.bytes.get(data..data + name_len)?;
            let value_at = data + name_len + 1;
            let value = self.bytes.get(value_at..value_at + value_len)?;
            data = value_at + value_len + 1;
            Some((name, value))
        })
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(n, _)| *n == name.as_bytes()).map(|(_, v)| v)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_encodes() {
        let pairs: &[(&str, &[u8])] = &[(":path", b"/v1/models"), ("x-empty", b""), ("x-bin", b"\xff\x00ok")];
        let block = HeaderBlock::from_pairs(pairs.iter().copied());
        let read: Vec<(&[u8], &[u8])> = block.iter().collect();
        let expected: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (n.as_bytes(), *v)).collect();
        assert_eq!(read, expected);
        assert_eq!(block.get("x-bin"), Some(&b"\xff\x00ok"[..]));
        assert!(block.contains("x-empty"));
        assert!(!block.contains("x-missing"));
    }

    #[test]
    fn a_malformed_buffer_reads_as_no_headers() {
        let good = HeaderBlock::from_pairs([(":path", &b"/"[..])]).bytes;
        let mut too_long = good.clone();
        too_long.push(0);
        let rows: &[&[u8]] = &[
            b"",
            &[1, 0, 0],
            &good[..good.len() - 1],
            &too_long,
            // a count that would overflow the length arithmetic
            &[0xff, 0xff, 0xff, 0xff],
            // a name length past the end
            &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0],
        ];
        for bytes in rows {
            assert_eq!(HeaderBlock::new(bytes.to_vec()).iter().count(), 0, "{bytes:?}");
        }
    }
}
