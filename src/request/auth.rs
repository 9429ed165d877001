//! Client keys: which credential headers the client sent (none of them
//! reaches a provider) and whether one of them is the master key.

/// Client credentials in their usual spellings; none of them reaches a provider.
pub const CLIENT_CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-api-key", "api-key", "x-goog-api-key"];

/// The index in [`CLIENT_CREDENTIAL_HEADERS`] of a header name.
pub(crate) fn credential_index(name: &[u8]) -> Option<usize> {
    CLIENT_CREDENTIAL_HEADERS.iter().position(|c| c.as_bytes() == name)
}

/// The key a credential header presents: a bearer token or an `x-api-key`.
pub(crate) fn presented_key<'h>(name: &[u8], value: &'h [u8]) -> Option<&'h [u8]> {
    match name {
        b"authorization" => strip_bearer(value),
        b"x-api-key" => Some(value),
        _ => None,
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
