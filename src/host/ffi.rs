//! The host calls shared by the contexts: Envoy's side of [`Stats`], the
//! header map in one call, and a local reply.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, MetricType};

use crate::headers::HeaderBlock;
use crate::host::stats::{MetricKind, Stats};
use crate::request::reply::LocalReply;

/// Envoy's stats, through proxy-wasm.
pub(super) struct Envoy;

impl Stats for Envoy {
    fn define(&self, kind: MetricKind, name: &str) -> Option<u32> {
        let kind = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Histogram => MetricType::Histogram,
        };
        hostcalls::define_metric(kind, name).ok()
    }

    fn increment(&self, id: u32, by: u64) -> bool {
        hostcalls::increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX)).is_ok()
    }

    fn record(&self, id: u32, value: u64) {
        let _ = hostcalls::record_metric(id, value);
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
}

/// The proxy-wasm map types read here.
pub(super) const REQUEST_HEADERS: u32 = 0;
pub(super) const RESPONSE_HEADERS: u32 = 2;

/// A header map as one host buffer, parsed in place by [`HeaderBlock`]: one
/// host call however many headers are looked at (the SDK's reader allocates
/// a `String` and a `Vec` per header). A host error reads as no headers,
/// which the decision refuses for a request.
pub(super) fn header_map(map_type: u32) -> HeaderBlock {
    const OK: u32 = 0;
    let mut data = std::ptr::null_mut();
    let mut size = 0;
    // SAFETY: the host writes a pointer and a length to the two out-params.
    let status = unsafe { proxy_get_header_map_pairs(map_type, &mut data, &mut size) };
    if status != OK || data.is_null() {
        return HeaderBlock::default();
    }
    // SAFETY: the host allocated `size` bytes at `data` through the SDK's
    // `proxy_on_memory_allocate` (a boxed `[u8]` of exactly `size`, in the
    // proxy-wasm version pinned exactly in Cargo.toml) and hands them over,
    // as the SDK's own `get_map_bytes` takes them.
    HeaderBlock::new(unsafe { Vec::from_raw_parts(data, size, size) })
}

/// Answers the request with `reply` (JSON), instead of forwarding it.
pub(super) fn send_reply(reply: &LocalReply) -> Action {
    let headers = [("content-type", "application/json")];
    let _ = hostcalls::send_http_response(reply.status, headers.to_vec(), Some(&reply.body));
    Action::Pause
}
