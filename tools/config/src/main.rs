//! `llm-router-config [--envoy [options]] [CONFIG.yaml]`: reads a LiteLLM
//! proxy `config.yaml` (a path, or standard input) and prints llm-router's
//! plugin configuration (JSON), or with `--envoy` a complete Envoy bootstrap
//! that runs it. Everything is checked by the filter's own compiler; errors
//! and warnings name the file, line and column. Exit status 1 on an error,
//! 2 on a usage mistake.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use llm_router::model::Provider;
use llm_router_config::bootstrap::{self, parse_ratelimit, Address, Options, DEFAULT_RATELIMIT, DEFAULT_WASM};
use llm_router_config::convert::Conversion;
use llm_router_config::convert::{self, ApiBaseVariables, SecretSource};
use llm_router_config::{istio, keys, prices};

const USAGE: &str = "\
usage: llm-router-config [--envoy [--listen HOST:PORT] [--admin HOST:PORT] [--wasm PATH] [--out DIR]
                          [--ratelimit HOST:PORT]] [CONFIG.yaml]
       llm-router-config --istio [--wasm URL] [--sha256 HEX] [--ratelimit HOST:PORT] [CONFIG.yaml]
       llm-router-config keys new|import … (`llm-router-config keys` says how)

Converts a LiteLLM proxy config.yaml (standard input without CONFIG.yaml):
  (default)  prints llm-router's plugin configuration (JSON)
  --envoy    prints an Envoy bootstrap (YAML) that runs it: the listener with
             the filter, and one cluster per upstream the config names
  --listen   the listener (default 127.0.0.1:10000)
  --admin    Envoy's admin interface (default 127.0.0.1:9901)
  --wasm     the filter module as Envoy finds it, used as given (default: the built
             module, target/wasm32-wasip1/release/llm_router.wasm, as an absolute path)
  --out      writes DIR/envoy.yaml and the filter's configuration as DIR/llm-router.json,
             which Envoy watches: run the same command again after editing CONFIG.yaml
             (keys added, removed, blocked) and Envoy applies it without a restart
  --prices   LiteLLM's model_prices_and_context_window.json: the configured models'
             per-token prices go into the filter's configuration, to price usage
             against budgets (default: the litellm package in .venv, where a budget is set)
  --ratelimit  the rate-limit service (llm-router-limits) where a key or team has
             rpm_limit, tpm_limit or max_budget (default 127.0.0.1:8081; with --istio
             llm-router-limits.istio-system.svc.cluster.local:8081)
  --istio    prints the gateway as an Istio EnvoyFilter for the ingress gateway: the
             filter, the buffer limit, Envoy's replies as JSON, the rate-limit filters
             and each model group's cluster, route and upstream filter; --wasm is then
             the module's URL and --sha256 its digest";

struct Arguments {
    envoy: Option<Options>,
    path: Option<String>,
    prices: PriceTable,
}

/// Where LiteLLM's price table comes from.
enum PriceTable {
    /// `--prices PATH`: always read.
    Given(PathBuf),
    /// The project's venv's `litellm` package: read where a budget needs
    /// prices.
    Venv(Option<PathBuf>),
}

/// Where the Istio EnvoyFilter says the module is published, and its
/// digest, by default: placeholders to set (`--wasm`, `--sha256`).
const ISTIO_WASM_URL: &str = "https://downloads.example.com/llm-router/v0.1.0/llm_router.wasm";
const ISTIO_WASM_SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The venv the Makefile installs LiteLLM's SDK into.
const VENV: &str = ".venv";

fn arguments(args: Vec<String>) -> Result<Arguments, String> {
    let command = std::iter::once("llm-router-config")
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let mut args = args.into_iter();
    let mut envoy = false;
    let mut path = None;
    let mut listen = Address::parse("127.0.0.1:10000")?;
    let mut admin = Address::parse("127.0.0.1:9901")?;
    let mut wasm = None;
    let mut out = None;
    let mut ratelimit = None;
    let mut prices = None;
    let mut istio = false;
    let mut sha256 = None;
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--envoy" => envoy = true,
            "--istio" => istio = true,
            "--sha256" => sha256 = Some(value("--sha256")?),
            "--listen" => listen = Address::parse(&value("--listen")?)?,
            "--admin" => admin = Address::parse(&value("--admin")?)?,
            "--wasm" => wasm = Some(value("--wasm")?),
            "--out" => out = Some(value("--out")?),
            "--ratelimit" => ratelimit = Some(parse_ratelimit(&value("--ratelimit")?)?),
            "--prices" => prices = Some(PathBuf::from(value("--prices")?)),
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with('-') && flag != "-" => return Err(format!("unknown option {flag}")),
            _ if path.is_some() => return Err("one CONFIG.yaml at a time".to_owned()),
            _ => path = Some(arg),
        }
    }
    if out.is_some() && !envoy {
        return Err("--out goes with --envoy".to_owned());
    }
    if istio && envoy {
        return Err("--envoy or --istio, not both".to_owned());
    }
    if sha256.is_some() && !istio {
        return Err("--sha256 goes with --istio".to_owned());
    }
    let ratelimit = match (ratelimit, istio) {
        (Some(given), _) => given,
        (None, true) => parse_ratelimit(istio::DEFAULT_RATELIMIT)?,
        (None, false) => parse_ratelimit(DEFAULT_RATELIMIT)?,
    };
    let wasm = match istio {
        true => Some(wasm.unwrap_or_else(|| ISTIO_WASM_URL.to_owned())),
        false => wasm,
    };
    let envoy = envoy || istio;
    // Absolute: Envoy watches the file from wherever it runs.
    let out = out.map(|dir| std::path::absolute(&dir).unwrap_or_else(|_| dir.into()));
    let envoy = envoy.then(|| Options {
        command,
        listen,
        admin,
        wasm: wasm.unwrap_or_else(default_wasm),
        discovery: out.as_ref().map(|dir| dir.join(FILTER_FILE)),
        ratelimit,
        istio: istio.then(|| sha256.unwrap_or_else(|| ISTIO_WASM_SHA256.to_owned())),
    });
    let prices = match prices {
        Some(path) => PriceTable::Given(path),
        None => PriceTable::Venv(prices::find_in_venv(Path::new(VENV))),
    };
    Ok(Arguments {
        prices,
        envoy,
        path: path.filter(|p| p != "-"),
    })
}

/// The built module as an absolute path, so the bootstrap works from any
/// directory: under the current directory's `target/` (the repository
/// root), else beside this program (`target/release/llm-router-config`).
fn default_wasm() -> String {
    let beside_generator = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("wasm32-wasip1/release/llm_router.wasm")));
    let in_cwd = std::env::current_dir().ok().map(|dir| dir.join(DEFAULT_WASM));
    let found = [in_cwd.clone(), beside_generator]
        .into_iter()
        .flatten()
        .find(|path| path.is_file());
    found
        .or(in_cwd)
        .map_or_else(|| DEFAULT_WASM.to_owned(), |path| path.display().to_string())
}

/// The filter's configuration file under `--out DIR`.
const FILTER_FILE: &str = "llm-router.json";

/// What to print: the output, and the diagnostics (warnings, notes).
struct Output {
    text: String,
    /// With `--out`: the filter's configuration file.
    filter_file: Option<String>,
    diagnostics: Vec<String>,
}

/// Adds the configured models' rows of LiteLLM's price table to the
/// plugin configuration (the user's own `model_prices` win): always from
/// `--prices`, from the venv where a key or team has a budget. Says what it
/// did, and which model a budget would count as free.
fn add_prices(conversion: &mut Conversion, prices: &PriceTable) -> Result<Vec<String>, String> {
    let budgeted = conversion.config.budgeted();
    let path = match prices {
        PriceTable::Given(path) => Some(path),
        PriceTable::Venv(path) if budgeted => path.as_ref(),
        PriceTable::Venv(_) => return Ok(Vec::new()),
    };
    let table = match path {
        Some(path) => prices::read_table(path)?,
        None => serde_json::Map::new(),
    };
    let mut notes = Vec::new();
    let mut rows = prices::rows_for(&conversion.config, &table);
    if let (Some(path), false) = (path, rows.is_empty()) {
        let plural = if rows.len() == 1 { "" } else { "s" };
        notes.push(format!(
            "note: prices of {} model{plural} from {}",
            rows.len(),
            path.display()
        ));
        if let Some(serde_json::Value::Object(own)) = conversion.plugin.get("model_prices") {
            rows.extend(own.clone());
        }
        conversion
            .plugin
            .insert("model_prices".to_owned(), serde_json::Value::Object(rows));
    }
    let free = prices::unpriced(&conversion.config, &table);
    if budgeted && !free.is_empty() {
        let table = match path {
            Some(_) => "nor in LiteLLM's price table",
            None => "and LiteLLM's price table was not found (--prices PATH, or `make sdk`)",
        };
        notes.push(format!(
            "warning: a budget is set, and these models cost nothing against it: no input_cost_per_token/output_cost_per_token of their own {table}: {}",
            free.join(", ")
        ));
    }
    Ok(notes)
}

fn run(
    file: &str,
    text: &str,
    envoy: Option<&Options>,
    prices: &PriceTable,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Output, String> {
    let variables = match envoy {
        Some(_) => ApiBaseVariables::Now(env),
        None => ApiBaseVariables::AtRunTime,
    };
    let (document, mut conversion) = llm_router_config::read(file, text, &variables)?;
    let price_notes = add_prices(&mut conversion, prices)?;
    // Warnings in the order of the file's lines; those about no line last.
    let mut warnings: Vec<(Option<(usize, usize)>, String)> = document
        .repeated_keys
        .iter()
        .map(|(path, at)| (Some(*at), format!("{path} is given twice; the last one counts")))
        .collect();
    warnings.extend(
        conversion
            .warnings
            .iter()
            .map(|warning| (document.position(&warning.path), warning.to_string())),
    );
    warnings.sort_by_key(|(at, _)| at.unwrap_or((usize::MAX, 0)));
    let mut diagnostics: Vec<String> = warnings
        .into_iter()
        .map(|(at, warning)| match at {
            Some((line, column)) => format!("{file}:{line}:{column}: warning: {warning}"),
            None => format!("{file}: warning: {warning}"),
        })
        .collect();
    diagnostics.extend(price_notes);
    let text = match envoy {
        Some(options) => {
            diagnostics.extend(envoy_notes(&conversion, options, env));
            match &options.istio {
                Some(sha256) => istio::gateway_filter(&conversion, options, sha256),
                None => bootstrap::bootstrap(&conversion, options),
            }
        }
        None => convert::plugin_text(&conversion.plugin),
    };
    // Only the bootstrap carries Envoy's credential injector.
    if envoy.is_none_or(|options| options.istio.is_some()) {
        let entra: Vec<&str> = conversion
            .config
            .upstreams()
            .into_iter()
            .filter(|(_, endpoint)| endpoint.entra.is_some())
            .map(|(cluster, _)| cluster)
            .collect();
        if !entra.is_empty() {
            diagnostics.push(format!(
                "note: Entra ID client credentials: the filter sends no key to these clusters, Envoy's OAuth2 credential injector must (`--envoy` writes it; docs/configuration.md): {}",
                entra.join(", ")
            ));
        }
    }
    let filter_file = envoy
        .filter(|options| options.discovery.is_some())
        .map(|options| bootstrap::discovery_file(&conversion, options));
    Ok(Output {
        text,
        filter_file,
        diagnostics,
    })
}

/// What the generator says about Envoy's side: the variables unset here
/// (each read by the filter or by Envoy when it starts), an inline Entra
/// secret, a module not built yet.
fn envoy_notes(conversion: &Conversion, options: &Options, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut diagnostics = Vec::new();
    // A self-hosted server's key (vLLM, Ollama, a listed provider
    // at an address of the user's own) is optional: without it none
    // is sent, and its routes still work; unless another route
    // needs the same variable.
    let router = &conversion.config.router;
    let fixed = router.deployments().iter().filter_map(|d| d.target.reach()?.ok());
    let (optional, required): (Vec<&Provider>, Vec<&Provider>) = fixed
        .chain(router.endpoints())
        .map(|e| &e.provider)
        .partition(|p| p.key_optional);
    let required: BTreeSet<&str> = required.iter().map(|p| p.api_key_env.as_str()).collect();
    let optional: BTreeSet<&str> = optional
        .iter()
        .map(|p| p.api_key_env.as_str())
        .filter(|key| !required.contains(key))
        .collect();
    let (optional_unset, unset): (Vec<&str>, Vec<&str>) = conversion
        .env_keys
        .iter()
        .filter(|key| env(key).is_none())
        .map(String::as_str)
        .partition(|key| optional.contains(key));
    if !unset.is_empty() {
        diagnostics.push(format!(
            "note: not set here, and read by the filter from Envoy's environment (a route whose key is missing answers 503): {}",
            unset.join(", ")
        ));
    }
    if !optional_unset.is_empty() {
        diagnostics.push(format!(
            "note: optional, not set here (a self-hosted server's key; without it none is sent): {}",
            optional_unset.join(", ")
        ));
    }
    // Only the bootstrap has Envoy read the secrets (see below for Istio).
    let injectors = match options.istio {
        Some(_) => &[][..],
        None => conversion.entra.as_slice(),
    };
    let secrets_unset: BTreeSet<&str> = injectors
        .iter()
        .filter_map(|injector| match &injector.secret {
            SecretSource::Variable(var) if env(var).is_none() => Some(var.as_str()),
            _ => None,
        })
        .collect();
    if !secrets_unset.is_empty() {
        let names: Vec<&str> = secrets_unset.into_iter().collect();
        diagnostics.push(format!(
            "note: not set here, and read by Envoy itself when it starts (Entra ID client secrets; Envoy does not start without them): {}",
            names.join(", ")
        ));
    }
    if injectors.iter().any(|i| matches!(i.secret, SecretSource::Inline(_))) {
        diagnostics.push(
            "note: an Entra ID client_secret written in the file is written into the bootstrap's secrets (Envoy's /config_dump redacts it); `os.environ/NAME` keeps it out of both files".to_owned(),
        );
    }
    if options.istio.is_none() && !std::path::Path::new(&options.wasm).is_file() {
        diagnostics.push(format!(
            "note: the filter module {} is not there yet (`make wasm` builds it); Envoy needs it at that path",
            options.wasm
        ));
    }
    diagnostics
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("keys") {
        return keys_command(&args[1..]);
    }
    let arguments = match arguments(args) {
        Ok(arguments) => arguments,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("llm-router-config: {problem}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut text = String::new();
    let (file, read) = match &arguments.path {
        Some(path) => (path.as_str(), std::fs::read_to_string(path).map(|t| text = t)),
        None => ("<stdin>", std::io::stdin().read_to_string(&mut text).map(drop)),
    };
    if let Err(e) = read {
        eprintln!("llm-router-config: {file}: {e}");
        return ExitCode::FAILURE;
    }
    let env = |var: &str| std::env::var(var).ok();
    let output = match run(file, &text, arguments.envoy.as_ref(), &arguments.prices, &env) {
        Ok(output) => output,
        Err(e) => {
            eprintln!("llm-router-config: {e}");
            return ExitCode::FAILURE;
        }
    };
    for line in &output.diagnostics {
        eprintln!("llm-router-config: {line}");
    }
    let discovery = arguments.envoy.as_ref().and_then(|o| o.discovery.as_deref());
    match (discovery, &output.filter_file) {
        (Some(filter_path), Some(filter_file)) => match write_out(filter_path, &output.text, filter_file) {
            Ok(notes) => {
                for note in notes {
                    eprintln!("llm-router-config: {note}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("llm-router-config: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::stdout().write_all(output.text.as_bytes());
            ExitCode::SUCCESS
        }
    }
}

/// `--out DIR`: the bootstrap beside the filter's configuration, each
/// written whole and renamed into place (Envoy never reads half a file).
fn write_out(filter_path: &std::path::Path, bootstrap: &str, filter_file: &str) -> Result<Vec<String>, String> {
    let dir = filter_path.parent().ok_or("--out needs a directory")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let bootstrap_path = dir.join("envoy.yaml");
    let mut notes = Vec::new();
    match std::fs::read_to_string(&bootstrap_path) {
        Ok(old) if old != bootstrap => notes.push(format!(
            "note: {} changed (listener, clusters or model groups): restart Envoy for that part; the filter's configuration is applied without one",
            bootstrap_path.display()
        )),
        _ => {}
    }
    for (path, content) in [(bootstrap_path.as_path(), bootstrap), (filter_path, filter_file)] {
        let staged = path.with_extension("tmp");
        std::fs::write(&staged, content)
            .and_then(|()| std::fs::rename(&staged, path))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    notes.push(format!(
        "wrote {} and {} (Envoy reloads the latter when it changes)",
        bootstrap_path.display(),
        filter_path.display()
    ));
    Ok(notes)
}

fn keys_command(args: &[String]) -> ExitCode {
    let read = |path: &str| std::fs::read_to_string(path);
    match keys::run(args, &read) {
        Ok(printed) => {
            eprintln!("llm-router-config: {}", printed.note);
            let _ = std::io::stdout().write_all(printed.entries.as_bytes());
            ExitCode::SUCCESS
        }
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("llm-router-config: {problem}");
            }
            eprintln!("{}", keys::USAGE);
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests;
