//! Limits and prices: a key's or team's rates and budget, per-token prices.

/// A key's or a team's limits, with LiteLLM's meaning: requests and tokens
/// per minute, and spend per `budget_duration` (or ever).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub budget: Option<Budget>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.budget.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// `max_budget` in micro-dollars (US$1 = 1,000,000).
    pub max_micro_usd: u64,
    /// `budget_duration` in seconds; `None`: the budget never resets.
    pub window_seconds: Option<u64>,
}

/// A `teams:` entry: LiteLLM's team limits, shared by the team's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub team_id: String,
    pub limits: Limits,
}

/// US dollars per token, as LiteLLM names them: `input_cost_per_token`,
/// `output_cost_per_token`, `cache_read_input_token_cost` (else cached
/// input costs as input).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Prices {
    pub input: f64,
    pub output: f64,
    pub cached_input: Option<f64>,
}
