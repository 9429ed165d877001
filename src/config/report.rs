//! What the compiler reports: errors that refuse the file and warnings that
//! do not, each at its document path, and the names of the entries they are
//! about.

use std::fmt;

/// A configuration that cannot be used. `at` names the entry for people;
/// `path` is where it sits in the document (`model_list[2].litellm_params.model`),
/// for a tool to point at the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub at: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "llm-router configuration: {}: {}", self.at, self.problem)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn error(path: impl Into<String>, at: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        at: at.into(),
        problem: problem.into(),
    }
}

/// An error about a key, where the path and the name are one.
pub(crate) fn key_error(key: &str, problem: impl Into<String>) -> ConfigError {
    error(key, key, problem)
}

/// Something accepted but not acted on as written, at its document path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where it is in the document (`model_list[0].litellm_params.rpm`),
    /// for a tool to point at the line.
    pub path: String,
    pub kind: WarningKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// A key llm-router does not read. It is not acted on, and the
    /// generator does not carry it into Envoy's configuration.
    Ignored,
    /// A value llm-router reads but takes otherwise than LiteLLM would; the
    /// text says how.
    NotAsWritten(String),
    /// An environment variable the entry needs is unset in the VM: its
    /// requests get 503 until it is set.
    UnsetVariable { entry: String, variable: String },
    /// The master key is one of LiteLLM's documented example keys.
    PublicMasterKey,
    /// An entry the filter cannot serve: left out, the rest served.
    Skipped { model_name: String, reason: String },
}

impl Warning {
    pub(crate) fn new(path: impl Into<String>, kind: WarningKind) -> Warning {
        Warning {
            path: path.into(),
            kind,
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.path;
        match &self.kind {
            WarningKind::Ignored if path == "litellm_settings.master_key" => {
                write!(f, "{path} is ignored (the client key is general_settings.master_key)")
            }
            WarningKind::Ignored if !path.contains(['.', '[']) => {
                write!(f, "{path} is ignored (llm-router does not read this section)")
            }
            WarningKind::Ignored => write!(f, "{path} is ignored"),
            WarningKind::NotAsWritten(how) => write!(f, "{path}: {how}"),
            WarningKind::UnsetVariable { entry, variable } => write!(
                f,
                "{entry}: environment variable `{variable}` is not set in the Wasm VM; requests for this route get 503 until it is"
            ),
            WarningKind::Skipped { model_name, reason } => {
                write!(f, "{path}: model `{model_name}` is not served: {reason}")
            }
            WarningKind::PublicMasterKey => write!(
                f,
                "{path} is a publicly known example key (such as sk-1234): anyone can use this router; set a long random key"
            ),
        }
    }
}

/// An `api_base` read from the environment, at the document path where it
/// is written (the entry's `litellm_params.api_base`, or its credential's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvAddress {
    pub path: String,
    /// The entry, named for people: `model_list[0] (model_name `a`)`.
    pub at: String,
    pub variable: String,
}

/// One `model_list` entry: where it is in the document and how people know
/// it. Every error and warning about the entry is placed by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryPath {
    /// `model_list[3]`.
    pub path: String,
    /// `model_list[3] (model_name `x`)`.
    pub name: String,
}

impl EntryPath {
    pub fn new(index: usize, model_name: &str) -> EntryPath {
        let path = format!("model_list[{index}]");
        let name = format!("{path} (model_name `{model_name}`)");
        EntryPath { path, name }
    }

    /// The document path of `key` in this entry (`model_list[3].model_info.id`).
    pub fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    /// The document path of `litellm_params.<key>`.
    pub fn param(&self, key: &str) -> String {
        self.key(&format!("litellm_params.{key}"))
    }

    /// The file refused because of `key` of this entry.
    pub fn error(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        error(self.key(key), &self.name, problem)
    }
}
