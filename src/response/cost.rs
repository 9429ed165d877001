//! What a response cost, in integer micro-dollars (US$1 = 1,000,000): the
//! number Envoy's rate-limit filter charges against a budget, and the
//! access log's `cost_micro_usd`.

use crate::config::{micro_usd, Config};
use crate::model::Prices;
use crate::response::usage::Usage;

/// The prices of a response from metrics slot `slot` whose upstream model
/// was `upstream_model`: the deployment's own, else `model_prices` under
/// the model's name or `<provider>/<model>` (LiteLLM's price table uses
/// both forms).
pub fn prices_for<'c>(config: &'c Config, slot: usize, upstream_model: &str) -> Option<&'c Prices> {
    if let Some(own) = config.router.slot_owner(slot).and_then(|d| d.prices.as_ref()) {
        return Some(own);
    }
    if config.model_prices.is_empty() {
        return None;
    }
    let table = &config.model_prices;
    table.get(upstream_model).or_else(|| {
        let (_, provider) = config.router.slots().get(slot)?;
        table.get(&format!("{provider}/{upstream_model}"))
    })
}

/// Input tokens (less cached ones) at the input price, cached ones at the
/// cache-read price (else the input price), output tokens at the output
/// price; `None` when the response reported no count.
pub fn cost_micro_usd(usage: &Usage, prices: &Prices) -> Option<u64> {
    if usage.input.is_none() && usage.output.is_none() {
        return None;
    }
    let input = usage.input.unwrap_or(0);
    let cached = usage.cached_input.unwrap_or(0).min(input);
    let tokens = |n: u64| n as f64;
    let dollars = tokens(input - cached) * prices.input
        + tokens(cached) * prices.cached_input.unwrap_or(prices.input)
        + tokens(usage.output.unwrap_or(0)) * prices.output;
    Some(micro_usd(dollars))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: Option<u64>, output: Option<u64>, cached: Option<u64>) -> Usage {
        Usage {
            input,
            output,
            cached_input: cached,
            reasoning_output: None,
        }
    }

    #[test]
    fn prices_times_usage() {
        // gpt-4o's list prices: $2.50 and $10 per million, cached $1.25.
        let gpt4o = Prices {
            input: 2.5e-6,
            output: 1e-5,
            cached_input: Some(1.25e-6),
        };
        let no_cache_price = Prices {
            cached_input: None,
            ..gpt4o
        };
        // (usage, prices, micro-dollars)
        let rows: &[(Usage, Prices, Option<u64>)] = &[
            (usage(Some(1_000), Some(500), None), gpt4o, Some(7_500)),
            // 400 of the 1,000 input tokens from the cache: 600 × 2.5 + 400 × 1.25 + 500 × 10.
            (usage(Some(1_000), Some(500), Some(400)), gpt4o, Some(7_000)),
            (usage(Some(1_000), Some(500), Some(400)), no_cache_price, Some(7_500)),
            // More cached than input (a provider's rounding): all input cached.
            (usage(Some(10), Some(0), Some(50)), gpt4o, Some(13)),
            (usage(None, Some(2), None), gpt4o, Some(20)),
            (usage(Some(1), Some(1), None), gpt4o, Some(13)),
            (usage(None, None, Some(3)), gpt4o, None),
            (usage(Some(u64::MAX), Some(u64::MAX), None), gpt4o, Some(u64::MAX)),
        ];
        for (i, (usage, prices, expected)) in rows.iter().enumerate() {
            assert_eq!(cost_micro_usd(usage, prices), *expected, "row {i}");
        }
    }

    #[test]
    fn a_deployment_s_own_prices_win_over_the_table() {
        let config = crate::config::compile(
            br#"{"model_list": [
                {"model_name": "own", "litellm_params": {"model": "openai/gpt-4o", "api_key": "k", "input_cost_per_token": 1e-6}},
                {"model_name": "table", "litellm_params": {"model": "openai/gpt-4o", "api_key": "k"}},
                {"model_name": "groq/*", "litellm_params": {"model": "groq/*", "api_key": "k"}}],
              "model_prices": {"gpt-4o": {"input_cost_per_token": 2.5e-6, "output_cost_per_token": 1e-5},
                               "groq/llama3-8b-8192": {"input_cost_per_token": 5e-8}}}"#,
            &|_| None,
        )
        .ok();
        let Some(config) = config else {
            panic!("compiles");
        };
        let input = |slot: usize, model: &str| prices_for(&config, slot, model).map(|p| p.input);
        assert_eq!(input(0, "gpt-4o"), Some(1e-6));
        assert_eq!(input(1, "gpt-4o"), Some(2.5e-6));
        assert_eq!(input(2, "llama3-8b-8192"), Some(5e-8));
        assert_eq!(input(2, "mixtral"), None);
    }
}
