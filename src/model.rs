//! The compiled domain: what a configuration becomes and what routing reads.
//! [`crate::config`] builds these once; [`crate::route`] and
//! [`crate::request`] only read them. Each file models one thing; every type
//! is re-exported here.

pub mod deployment;
pub mod keys;
pub mod limits;
pub mod pattern;
pub mod provider;
pub mod secret;
pub mod upstream;

pub use deployment::{Deployment, ListEntry, Shares, Skipped, Target, Timeouts};
pub use keys::{Allowlist, BudgetScopes, KeyTable, ModelLimit, VirtualKey};
pub use limits::{Budget, Limits, Prices, Team};
pub use pattern::Pattern;
pub use provider::{provider_of, AuthStyle, Credentials, Endpoint, EntraClient, PathStyle, Provider, Unavailable};
pub use secret::Secret;
pub use upstream::{ApiBase, Scheme, Upstream};
