//! The replies the filter answers itself: the error contract (status,
//! OpenAI `type` and `code`) and the JSON body of each.

/// The error classes of the contract, each with its status and OpenAI code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidApiKey,
    ModelNotFound,
    InvalidRequest,
    RequestTooLarge,
    UnsupportedMediaType,
    ProviderUnavailable,
    /// The model is configured, but its entry cannot be served by the
    /// filter (the configuration's warning says why).
    ModelNotSupported,
    /// A virtual key asked for a model outside its `models`.
    KeyModelAccessDenied,
}

impl ErrorKind {
    /// Every kind, in one fixed order (an index per kind, for counters).
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::InvalidApiKey,
        ErrorKind::ModelNotFound,
        ErrorKind::InvalidRequest,
        ErrorKind::RequestTooLarge,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::ProviderUnavailable,
        ErrorKind::ModelNotSupported,
        ErrorKind::KeyModelAccessDenied,
    ];

    /// The position of this kind in [`ErrorKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn status(self) -> u32 {
        match self {
            ErrorKind::InvalidApiKey => 401,
            ErrorKind::ModelNotFound => 404,
            ErrorKind::InvalidRequest => 400,
            ErrorKind::RequestTooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::ProviderUnavailable => 503,
            // A client error: retrying cannot help.
            ErrorKind::ModelNotSupported => 400,
            ErrorKind::KeyModelAccessDenied => 401,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidApiKey => "invalid_api_key",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::ProviderUnavailable => "provider_unavailable",
            ErrorKind::ModelNotSupported => "model_not_supported",
            ErrorKind::KeyModelAccessDenied => "key_model_access_denied",
        }
    }

    pub(crate) fn error_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidApiKey | ErrorKind::KeyModelAccessDenied => "authentication_error",
            ErrorKind::ProviderUnavailable => "service_unavailable",
            _ => "invalid_request_error",
        }
    }
}

/// A reply the filter sends itself, with a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    /// Set for errors, for the filter's own bookkeeping (metrics, logs).
    pub error: Option<ErrorKind>,
    pub body: Vec<u8>,
}

impl LocalReply {
    /// A 200 with this JSON body.
    pub fn ok(body: Vec<u8>) -> LocalReply {
        LocalReply {
            status: 200,
            error: None,
            body,
        }
    }

    /// An error in OpenAI's shape. `message` must never contain a key.
    pub fn error(kind: ErrorKind, message: &str, param: Option<&str>) -> LocalReply {
        let body = serde_json::json!({"error": {
            "message": message,
            "type": kind.error_type(),
            "param": param,
            "code": kind.code(),
        }});
        LocalReply {
            status: kind.status(),
            error: Some(kind),
            body: body.to_string().into_bytes(),
        }
    }
}
