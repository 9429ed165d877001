//! Faults a mock can be told to inject, for one request (the `x-mock-fault`
//! request header) or for every request a listener gets
//! ([`crate::Mock::set_fault`], or `NAME=ADDR,fault=SPEC` on the command line).

use std::fmt;
use std::time::Duration;

/// The request header that asks for a fault: `x-mock-fault: 429;retry-after=2`.
pub const FAULT_HEADER: &str = "x-mock-fault";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with the provider's error body (`429`, `500`, `503`, …),
    /// with a `retry-after` header when given (`429;retry-after=2`).
    Status { status: u16, retry_after: Option<u32> },
    /// Close the connection with a TCP reset instead of answering (`reset`).
    Reset,
    /// Wait this long before answering (`stall=250`, in milliseconds).
    Stall(Duration),
    /// Send the head and this many events (or body bytes, for a JSON
    /// answer), then cut the connection (`cut-after=2`).
    CutAfter(usize),
    /// Send every event (or the JSON body) in three pieces, a separate TCP
    /// write each (`split`).
    Split,
    /// Answer gzip-compressed, whatever the request accepts (`gzip`).
    Gzip,
}

impl Fault {
    /// Parses a fault as the header and the command line write it.
    pub fn parse(spec: &str) -> Result<Fault, String> {
        let spec = spec.trim();
        let (name, argument) = match spec.split_once(['=', ';']) {
            Some((name, argument)) => (name, Some(argument)),
            None => (spec, None),
        };
        let number = |text: Option<&str>| -> Result<u64, String> {
            text.and_then(|t| t.trim().parse().ok())
                .ok_or_else(|| format!("`{spec}`: expected a number"))
        };
        match name {
            "reset" => Ok(Fault::Reset),
            "split" => Ok(Fault::Split),
            "gzip" => Ok(Fault::Gzip),
            "stall" => Ok(Fault::Stall(Duration::from_millis(number(argument)?))),
            "cut-after" => Ok(Fault::CutAfter(number(argument)? as usize)),
            status => {
                let status: u16 = status.parse().ok().filter(|s| (400..600).contains(s)).ok_or_else(|| {
                    format!("`{spec}`: not a fault (a status 400-599, reset, stall=MS, cut-after=N, split, gzip)")
                })?;
                let retry_after = match argument {
                    None => None,
                    Some(arg) => match arg.trim().strip_prefix("retry-after=") {
                        Some(seconds) => Some(number(Some(seconds))? as u32),
                        None => return Err(format!("`{spec}`: expected retry-after=SECONDS after the status")),
                    },
                };
                Ok(Fault::Status { status, retry_after })
            }
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Status {
                status,
                retry_after: None,
            } => write!(f, "{status}"),
            Fault::Status {
                status,
                retry_after: Some(seconds),
            } => write!(f, "{status};retry-after={seconds}"),
            Fault::Reset => f.write_str("reset"),
            Fault::Stall(wait) => write!(f, "stall={}", wait.as_millis()),
            Fault::CutAfter(n) => write!(f, "cut-after={n}"),
            Fault::Split => f.write_str("split"),
            Fault::Gzip => f.write_str("gzip"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        let rows = [
            (
                "429",
                Fault::Status {
                    status: 429,
                    retry_after: None,
                },
            ),
            (
                "429;retry-after=2",
                Fault::Status {
                    status: 429,
                    retry_after: Some(2),
                },
            ),
            (
                "503",
                Fault::Status {
                    status: 503,
                    retry_after: None,
                },
            ),
            ("reset", Fault::Reset),
            ("stall=250", Fault::Stall(Duration::from_millis(250))),
            ("cut-after=3", Fault::CutAfter(3)),
            ("split", Fault::Split),
            ("gzip", Fault::Gzip),
        ];
        for (spec, fault) in rows {
            assert_eq!(Fault::parse(spec), Ok(fault.clone()), "{spec}");
            assert_eq!(fault.to_string(), spec);
        }
        for bad in ["", "200", "stall", "stall=x", "429;wait=2", "explode"] {
            assert!(Fault::parse(bad).is_err(), "{bad}");
        }
    }
}
