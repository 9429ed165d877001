//! What the request's headers say, gathered in one pass over them, and
//! the client credential headers they may carry.

use crate::headers::HeaderBlock;

/// Client credentials in their usual spellings; none of them reaches a provider.
pub const CLIENT_CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-api-key", "api-key", "x-goog-api-key"];

/// The index in [`CLIENT_CREDENTIAL_HEADERS`] of a header name.
pub(crate) fn credential_index(name: &[u8]) -> Option<usize> {
    CLIENT_CREDENTIAL_HEADERS.iter().position(|c| c.as_bytes() == name)
}

/// The headers a key may come in: `Authorization: Bearer`, `x-api-key`
/// (Anthropic's clients), `api-key` (Azure's).
pub const KEY_HEADERS: [&str; 3] = ["authorization", "x-api-key", "api-key"];

/// The key a credential header presents, with the header's index in
/// [`KEY_HEADERS`].
pub(crate) fn presented_key<'h>(name: &[u8], value: &'h [u8]) -> Option<(usize, &'h [u8])> {
    match name {
        b"authorization" => Some((0, strip_bearer(value)?)),
        b"x-api-key" => Some((1, value)),
        b"api-key" => Some((2, value)),
        _ => None,
    }
}

/// What the head checks read from the headers, gathered in one pass.
#[derive(Default)]
pub(crate) struct Head<'h> {
    pub(crate) method: Option<&'h [u8]>,
    pub(crate) path: Option<&'h [u8]>,
    pub(crate) content_length: Option<&'h [u8]>,
    pub(crate) content_type: Option<&'h [u8]>,
    pub(crate) content_types: usize,
    /// A `content-encoding` other than `identity`.
    pub(crate) encoded: bool,
    /// An `accept-encoding` other than `identity`.
    pub(crate) accepts_compressed: bool,
    /// An `Authorization: Bearer` or `x-api-key` value equals the master key.
    pub(crate) key_matches: bool,
    /// The key each credential header presents, in
    /// [`KEY_HEADERS`] order (first of each).
    pub(crate) presented: [Option<&'h [u8]>; 3],
    pub(crate) credentials_sent: [bool; CLIENT_CREDENTIAL_HEADERS.len()],
}

impl<'h> Head<'h> {
    pub(crate) fn read(headers: &'h HeaderBlock, master_key: Option<&[u8]>) -> Head<'h> {
        let mut head = Head::default();
        for (name, value) in headers.iter() {
            let first = |seen: Option<&'h [u8]>| seen.or(Some(value));
            match name {
                b":method" => head.method = first(head.method),
                b":path" => head.path = first(head.path),
                b"content-length" => head.content_length = first(head.content_length),
                b"content-type" => {
                    head.content_types += 1;
                    head.content_type = first(head.content_type);
                }
                b"content-encoding" => head.encoded |= !value.trim_ascii().eq_ignore_ascii_case(b"identity"),
                b"accept-encoding" => head.accepts_compressed |= !value.trim_ascii().eq_ignore_ascii_case(b"identity"),
                _ => {}
            }
            if let Some(sent) = credential_index(name).and_then(|i| head.credentials_sent.get_mut(i)) {
                *sent = true;
            }
            if let Some((i, key)) = presented_key(name, value) {
                if let Some(slot) = head.presented.get_mut(i) {
                    *slot = slot.or(Some(key));
                }
                // Every candidate is compared, so timing does not tell which
                // one matched. The master key comes as a bearer token or
                // `x-api-key`.
                if let (Some(master), true) = (master_key, i < 2) {
                    head.key_matches |= constant_time_eq(key, master);
                }
            }
        }
        head
    }

    /// Whether the body may be read as JSON: `Ok(true)` when it may but the
    /// provider must be told `application/json`, an error message when it
    /// must not be read at all.
    pub(crate) fn media_type(&self) -> Result<bool, &'static str> {
        if self.encoded {
            return Err("compressed request bodies cannot be routed: send the body without `content-encoding`");
        }
        let Some(value) = self.content_type else {
            return Ok(true);
        };
        if self.content_types > 1 {
            return Err("more than one `content-type`: send one `content-type: application/json`");
        }
        let media = value.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
        let is = |expected: &[u8]| media.eq_ignore_ascii_case(expected);
        let structured_json = media.len() > b"application/+json".len()
            && media.get(..12).is_some_and(|s| s.eq_ignore_ascii_case(b"application/"))
            && media
                .get(media.len() - 5..)
                .is_some_and(|s| s.eq_ignore_ascii_case(b"+json"));
        if is(b"application/json") || structured_json {
            Ok(false)
        } else if is(b"application/x-www-form-urlencoded") {
            // What `curl -d` sends by default; the body must still parse as JSON.
            Ok(true)
        } else {
            Err("the body must be JSON: send `content-type: application/json`")
        }
    }
}

fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| value.get(7..).unwrap_or_default().trim_ascii())
}

/// Compares without revealing, through its timing, how much of the key
/// matched (only whether the length did).
pub(crate) fn constant_time_eq(presented: &[u8], key: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    presented.ct_eq(key).into()
}
