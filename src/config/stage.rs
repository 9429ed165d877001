//! What the stages of a deployment share: what every entry is compiled
//! against, and how a stage stops one.

use std::collections::BTreeMap;

use crate::config::raw::RawCredentialValues;
use crate::config::report::ConfigError;
use crate::model::Provider;
use crate::route::families::Families;

/// What every entry is compiled against.
pub(super) struct Context<'a> {
    pub providers: &'a BTreeMap<String, Provider>,
    pub families: &'a Families,
    /// `credential_list`, by `credential_name`, with its position.
    pub credentials: &'a BTreeMap<String, (usize, RawCredentialValues)>,
    /// The document path of every key the compiler did not read.
    pub ignored: &'a [String],
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// Why an entry goes no further than a stage.
pub(super) enum Stop {
    /// The file is refused.
    Refused(ConfigError),
    /// The entry is left out for this reason; the rest of the file is served.
    Skipped(String),
}

impl From<ConfigError> for Stop {
    fn from(error: ConfigError) -> Stop {
        Stop::Refused(error)
    }
}

/// What a stage hands on, or why the entry stops there.
pub(super) type Stage<T> = Result<T, Stop>;
