//! `mock-provider [NAME=ADDR[,fault=SPEC] ...]`: serves the named mock
//! providers (default: openai=127.0.0.1:18081 anthropic=127.0.0.1:18082
//! groq=127.0.0.1:18083), each expecting the key in its usual variable
//! (OPENAI_API_KEY, ...). `fault=SPEC` injects a fault into every request of
//! that listener (`429;retry-after=2`, `503`, `reset`, `stall=MS`,
//! `cut-after=N`, `split`); a request's `x-mock-fault` header does the same
//! for one request.

use std::process::ExitCode;

use mock_provider::{start, Fault, Provider, DEFAULT_LISTEN};

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
        let (listen, fault) = match spec.split_once(",fault=") {
            Some((listen, fault)) => match Fault::parse(fault) {
                Ok(fault) => (listen, Some(fault)),
                Err(e) => {
                    eprintln!("mock-provider: {e}");
                    return ExitCode::from(2);
                }
            },
            None => (spec.as_str(), None),
        };
        let Some((name, addr)) = listen.split_once('=') else {
            eprintln!("mock-provider: expected NAME=ADDR[,fault=SPEC], got `{spec}`");
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
            Ok(mock) => {
                mock.set_fault(fault);
                println!("{name} mock listening on {}", mock.addr);
            }
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
