//! Where requests go: an upstream (scheme, host, port) and an `api_base`
//! split into its upstream and path.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    Http,
    Https,
}

/// Where a deployment's requests go: one Envoy cluster per distinct upstream.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Upstream {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
}

impl Upstream {
    pub(crate) fn default_port(scheme: Scheme) -> u16 {
        match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// The Host header value: the port only when it is not the scheme's own.
    pub fn authority(&self) -> String {
        if self.port == Upstream::default_port(self.scheme) {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn scheme_name(&self) -> &'static str {
        match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme_name(), self.authority())
    }

    /// The cluster name of an upstream that is not a provider's own.
    pub fn cluster_name(&self) -> String {
        let scheme = self.scheme_name();
        format!(
            "{scheme}_{}_{}",
            self.host.trim_matches(['[', ']']).replace(':', "-"),
            self.port
        )
    }
}

/// An `api_base`, split: the upstream, and the path prefix that replaces `/v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBase {
    pub upstream: Upstream,
    /// Without a trailing `/` (`/openai/v1`, or empty).
    pub path: String,
}

impl ApiBase {
    /// `http(s)://host[:port][/path]`; `None` for anything else (user info,
    /// a query or a fragment included: none of them can be honoured).
    pub fn parse(url: &str) -> Option<ApiBase> {
        let (scheme, rest) = match url.split_once("://")? {
            ("https", rest) => (Scheme::Https, rest),
            ("http", rest) => (Scheme::Http, rest),
            _ => return None,
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (rest.get(..i)?, rest.get(i..)?),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) || authority.contains(['@', '?', '#']) {
            return None;
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, Some(port.parse::<u16>().ok().filter(|&p| p > 0)?)),
            _ => (authority, None),
        };
        let valid_host = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b));
        if !valid_host {
            return None;
        }
        Some(ApiBase {
            upstream: Upstream {
                scheme,
                host: host.to_ascii_lowercase(),
                port: port.unwrap_or(Upstream::default_port(scheme)),
            },
            path: path.trim_end_matches('/').to_owned(),
        })
    }
}
