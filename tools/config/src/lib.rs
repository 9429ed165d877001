//! The configuration tools' library: a LiteLLM `config.yaml` read as
//! LiteLLM reads it ([`yaml`]), compiled by the filter's own compiler
//! ([`convert`]), turned into Envoy's configuration as values ([`clusters`],
//! [`filters`]) rendered once ([`render`]) as a bootstrap ([`bootstrap`]) or
//! the Istio gateway's EnvoyFilter ([`istio`]); and the
//! `keys` subcommands. `llm-router-config` and `llm-router-limits` share it,
//! so both read a config exactly as the filter does.

pub mod bootstrap;
pub mod clusters;
pub mod convert;
pub mod filters;
pub mod istio;
pub mod keys;
pub mod prices;
pub mod render;
pub mod yaml;

use convert::{ApiBaseVariables, Conversion, Problem};

/// `file:line:col: ` for a document path, or `file: `.
pub fn location(file: &str, document: &yaml::Document, path: &str) -> String {
    match document.position(path) {
        Some((line, column)) => format!("{file}:{line}:{column}: "),
        None => format!("{file}: "),
    }
}

/// Reads and compiles `text` (the contents of `file`), with every
/// `os.environ/` left for run time; an error names the file's line.
pub fn read(file: &str, text: &str, variables: &ApiBaseVariables) -> Result<(yaml::Document, Conversion), String> {
    let document = yaml::parse(text).map_err(|(line, column, problem)| format!("{file}:{line}:{column}: {problem}"))?;
    let conversion = convert::convert(&document.value, variables)
        .map_err(|Problem { path, message }| format!("{}{message}", location(file, &document, &path)))?;
    Ok((document, conversion))
}
