//! Any plugin configuration compiles or is refused with an error naming an
//! entry; none panics, and a compiled one routes any model without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_router::config::compile;

fuzz_target!(|data: &[u8]| {
    let env = |var: &str| (var.len() % 2 == 0).then(|| format!("key-for-{var}"));
    match compile(data, &env) {
        Ok(config) => {
            for deployment in config.router.deployments() {
                let _ = config.router.route(&deployment.model_name);
            }
            let _ = config.router.route("anthropic/claude");
        }
        Err(e) => assert!(!e.at.is_empty()),
    }
});
