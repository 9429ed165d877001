//! `mock-provider [NAME=ADDR ...]`: serves the named mock providers (default:
//! openai=127.0.0.1:18081 anthropic=127.0.0.1:18082 groq=127.0.0.1:18083),
//! each expecting the key in its usual variable (OPENAI_API_KEY, ...).

use std::process::ExitCode;

use mock_provider::{start, Provider, DEFAULT_LISTEN};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listens: Vec<String> = if args.is_empty() {
        DEFAULT_LISTEN
            .iter()
            .map(|(name, addr)| format!("{name}={addr}"))
            .collect()
    } else {
        args
    };
    for spec in &listens {
        let Some((name, addr)) = spec.split_once('=') else {
            eprintln!("mock-provider: expected NAME=ADDR, got `{spec}`");
            return ExitCode::from(2);
        };
        let Some(provider) = Provider::from_name(name) else {
            eprintln!("mock-provider: unknown provider `{name}` (openai, anthropic, groq)");
            return ExitCode::from(2);
        };
        let key = std::env::var(provider.key_env()).unwrap_or_default();
        if key.is_empty() {
            eprintln!(
                "mock-provider: set {} to the key the {name} mock should accept",
                provider.key_env()
            );
            return ExitCode::from(2);
        }
        match start(provider, addr, &key) {
            Ok(mock) => println!("{name} mock listening on {}", mock.addr),
            Err(e) => {
                eprintln!("mock-provider: cannot listen on {addr}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    loop {
        std::thread::park();
    }
}
