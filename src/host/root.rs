//! The root context: compiles the configuration once per VM, creates each
//! request's context, and flushes the counts once a second.

use std::rc::Rc;
use std::time::Duration;

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::config;
use crate::contract::{PLUGIN_ROOT_ID_PROPERTY, UPSTREAM_ROOT_ID};
use crate::host::attempt::AttemptContext;
use crate::host::ffi::Envoy;
use crate::host::request::Request;
use crate::host::state::State;
use crate::host::stats::{AttemptCounters, Counters};

/// How often counts reach Envoy's stats.
const METRICS_FLUSH: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Root {
    state: Option<Rc<State>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let started = self.get_current_time();
        let json = self.get_plugin_configuration().unwrap_or_default();
        let config = match config::compile(&json, &|var| std::env::var(var).ok()) {
            Ok(config) => config,
            Err(e) => {
                error!("{e}");
                return false;
            }
        };
        if first_to_warn(&json) {
            for warning in &config.warnings {
                warn!("llm-router configuration: {warning}");
            }
        }
        let took = self.get_current_time().duration_since(started).unwrap_or_default();
        info!(
            "llm-router configured: {} deployments, cluster header `{}`, in {} ms",
            config.router.deployments().len(),
            config.cluster_header,
            took.as_millis()
        );
        let upstream =
            self.get_property(PLUGIN_ROOT_ID_PROPERTY.to_vec()).as_deref() == Some(UPSTREAM_ROOT_ID.as_bytes());
        let slots = config.router.slots().len();
        let keys = config.keys.keys.len();
        let (counters, attempts) = match upstream {
            true => (Counters::new(0, 0), AttemptCounters::new(slots)),
            false => (Counters::new(slots, keys), AttemptCounters::new(0)),
        };
        self.state = Some(Rc::new(State {
            config,
            upstream,
            counters,
            attempts,
        }));
        self.set_tick_period(METRICS_FLUSH);
        true
    }

    fn on_tick(&mut self) {
        if let Some(state) = &self.state {
            state.counters.flush(&Envoy, &state.config);
            state.attempts.flush(&Envoy, &state.config);
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let state = self.state.clone()?;
        if state.upstream {
            return Some(Box::new(AttemptContext::new(state)));
        }
        Some(Box::new(Request::new(state)))
    }
}

/// Whether this VM is the first to log the warnings of this configuration.
/// Envoy configures one VM per worker thread, after a canary VM on the main
/// thread that checks the configuration; they share Envoy's shared data, so
/// the canary marks the configuration as warned about and the workers stay
/// quiet. A new configuration (another hash) is warned about again.
fn first_to_warn(configuration: &[u8]) -> bool {
    use std::hash::BuildHasher;
    let key = format!(
        "llm-router.warned.{:016x}",
        rustc_hash::FxBuildHasher.hash_one(configuration)
    );
    match hostcalls::get_shared_data(&key) {
        Ok((Some(_), _)) => false,
        _ => {
            let _ = hostcalls::set_shared_data(&key, Some(b"1"), None);
            true
        }
    }
}
