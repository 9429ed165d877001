//! The official OpenAI, Anthropic and LiteLLM Python SDKs (installed into
//! .venv by `make sdk`) against the shipped envoy/envoy.yaml with the filter
//! and the mocks: tests/sdk/clients.py makes each SDK's calls and checks its
//! answers; this test runs it and checks what the providers received.

mod common;

use std::process::Command;

use common::*;

#[test]
fn the_official_sdks_work_through_envoy() {
    let stack = Stack::start_default();
    let python = root().join(".venv/bin/python");
    let output = Command::new(&python)
        .arg(root().join("tests/sdk/clients.py"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ROUTER", format!("http://{}", stack.listener))
        .env("MASTER_KEY", MASTER_KEY)
        // LiteLLM would fetch its model price list from the internet at import.
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}): run `make sdk`", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}\n{}", stack.log_text());
    // Each check prints a line; a check that did not run is a failure too.
    assert_eq!(stdout.lines().last(), Some("18 passed, 0 failed"), "{stdout}");

    // Every provider was reached, and none saw the client's key.
    for (provider, mock) in &stack.mocks {
        let received = mock.received();
        if *provider != mock_provider::Provider::OpenAi {
            assert!(!received.is_empty(), "{provider:?} got nothing");
        }
        for request in received {
            assert!(
                request.headers.iter().all(|(_, v)| !v.contains(MASTER_KEY)),
                "{provider:?} saw the client key: {request:?}"
            );
        }
    }
}
