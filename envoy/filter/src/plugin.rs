//! The proxy-wasm contexts: one root per plugin configuration in a VM (Envoy runs a VM per
//! worker), holding the loaded configuration and the token cache; one HTTP context per
//! request, which hands its request headers to [`check`].
//!
//! The plugin configuration is a bundle (`claimgate bundle`). It is loaded through the core's
//! loader, with the same checks as `serve`; one that does not load is refused (`on_configure`
//! answers false), so Envoy keeps the configuration it had, or has none and fails closed.

use std::rc::Rc;

use claimgate::core::bundle::Bundle;
use claimgate::core::load;
use claimgate::core::token_cache::{self, TokenCache};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::check::{self, Verdict, Vm};
use crate::host::{Envoy, Stats};

/// Register the root context (called once, when Envoy starts the VM).
pub fn register() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(Root::default()));
}

/// One plugin configuration in one VM.
#[derive(Default)]
struct Root {
    vm: Option<Rc<Vm>>,
    stats: Option<Rc<Stats>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let stats = self
            .stats
            .get_or_insert_with(|| Rc::new(Stats::define()))
            .clone();
        let Some(config) = self.get_plugin_configuration() else {
            log::error!("claimgate: no plugin configuration; write one with `claimgate bundle`");
            return false;
        };
        let loaded = Bundle::parse(&config)
            .map_err(|e| e.to_string())
            .and_then(|b| b.loader().load().map_err(|e| e.to_string()));
        let snapshot = match loaded {
            Ok(loaded) => loaded.snapshot,
            Err(e) => {
                log::error!("claimgate: the bundle was refused: {e}");
                return false;
            }
        };
        // The core logs through `tracing`, which has no subscriber in a VM: Envoy's log gets
        // the configuration's warnings (the development key among them) from here.
        for warning in &snapshot.warnings {
            log::warn!("claimgate: {warning}");
        }
        match &self.vm {
            Some(vm) => {
                load::install(&vm.store, snapshot, &*stats, "plugin configuration");
            }
            None => {
                let store = load::install_first(snapshot, &*stats);
                self.vm = Some(Rc::new(Vm {
                    store,
                    cache: TokenCache::new(token_cache::DEFAULT_ENTRIES, (*stats).clone()),
                }));
            }
        }
        log::info!("claimgate: configuration loaded");
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request {
            vm: self.vm.clone(),
            stats: self.stats.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One request.
struct Request {
    vm: Option<Rc<Vm>>,
    stats: Option<Rc<Stats>>,
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let stats = self.stats.clone().unwrap_or_default();
        let host = Envoy { stats: &stats };
        match check::check(&host, self.vm.as_deref()) {
            Verdict::Continue => Action::Continue,
            Verdict::Replied => Action::Pause,
        }
    }
}
