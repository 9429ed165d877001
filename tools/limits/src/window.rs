//! When a budget resets, as LiteLLM's docs say budgets do: a budget of whole
//! days resets at midnight UTC (`1d` every day, `7d`/`1w` on Mondays,
//! `30d`/`1mo` on the 1st of the month, other whole days every n days); a
//! shorter one rolls from its first use. Requests and tokens per minute
//! roll from their first use too (limitador's own windows).

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use llm_router::limits::{Kind, Rule, DAY_SECONDS as DAY, NEVER_SECONDS};

/// The calendar period a budget counts in: its number (the same for every
/// instance of a fleet) and the seconds until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub id: i64,
    pub seconds_left: u64,
}

/// Whether `rule` counts in calendar periods (else from its first use).
pub fn on_calendar(rule: &Rule) -> bool {
    let window = rule.window_seconds;
    rule.kind == Kind::Budget && window != NEVER_SECONDS && window.is_multiple_of(DAY)
}

/// The period `now` is in for `rule`; `None` for a window that rolls from
/// its first use.
pub fn period(rule: &Rule, now: DateTime<Utc>) -> Option<Period> {
    if !on_calendar(rule) {
        return None;
    }
    let days = rule.window_seconds / DAY;
    let today = now.date_naive();
    let start_of = |date: NaiveDate| date.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let (id, next) = match days {
        7 => {
            let monday = today - chrono::Days::new(u64::from(today.weekday().num_days_from_monday()));
            (i64::from(monday.num_days_from_ce()), monday + chrono::Days::new(7))
        }
        30 => {
            let first = today.with_day(1)?;
            (
                i64::from(first.year()) * 12 + i64::from(first.month0()),
                first.checked_add_months(Months::new(1))?,
            )
        }
        n => {
            let epoch_days = u64::try_from(now.timestamp()).ok()? / DAY;
            let index = epoch_days / n;
            let next = DateTime::from_timestamp(i64::try_from((index + 1) * n * DAY).ok()?, 0)?;
            (i64::try_from(index).ok()?, next.date_naive())
        }
    };
    let left = start_of(next)?.signed_duration_since(now).num_seconds();
    Some(Period {
        id,
        seconds_left: u64::try_from(left).ok()?.max(1),
    })
}

/// How long a counter of `rule` must live: its longest period (a month
/// may have 31 days).
pub fn counter_seconds(rule: &Rule) -> u64 {
    match rule.window_seconds {
        w if w == 30 * DAY && rule.kind == Kind::Budget => 31 * DAY,
        w => w,
    }
}

#[cfg(test)]
mod tests {
    use llm_router::limits::Subject;

    use super::*;

    fn budget(window_seconds: u64) -> Rule {
        Rule {
            subject: Subject::Key("a".to_owned()),
            kind: Kind::Budget,
            max: 1,
            window_seconds,
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        match DateTime::parse_from_rfc3339(text) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn budgets_reset_on_calendar_boundaries() {
        // (window, now, seconds left, same period as)
        let rows: &[(u64, &str, u64, &str)] = &[
            // Daily: midnight UTC.
            (DAY, "2026-12-05T23:00:00Z", 3_600, "2026-12-05T00:00:00Z"),
            // Weekly: Monday (2026-12-07 is a Monday).
            (7 * DAY, "2026-12-05T12:00:00Z", 36 * 3_600, "2026-12-01T00:00:00Z"),
            // Monthly: the 1st, however long the month.
            (30 * DAY, "2026-02-28T00:00:00Z", DAY, "2026-02-01T00:00:00Z"),
            (30 * DAY, "2026-12-31T23:59:30Z", 30, "2026-12-01T00:00:00Z"),
            // Every 2 days, counted from the epoch.
            (2 * DAY, "1970-01-02T06:00:00Z", 18 * 3_600, "1970-01-01T00:00:00Z"),
        ];
        for &(window, now, left, same) in rows {
            let rule = budget(window);
            let period = period(&rule, at(now));
            assert_eq!(period.map(|p| p.seconds_left), Some(left), "{window} at {now}");
            assert_eq!(
                period.map(|p| p.id),
                super::period(&rule, at(same)).map(|p| p.id),
                "{window} at {now}"
            );
        }
        // The next period is another.
        let rule = budget(30 * DAY);
        assert_ne!(
            period(&rule, at("2026-12-31T23:59:59Z")).map(|p| p.id),
            period(&rule, at("2027-01-01T00:00:00Z")).map(|p| p.id)
        );
    }

    #[test]
    fn other_windows_roll() {
        let now = at("2026-12-05T12:00:00Z");
        assert_eq!(period(&budget(3_600), now), None);
        assert_eq!(period(&budget(NEVER_SECONDS), now), None);
        let rpm = Rule {
            kind: Kind::Requests,
            ..budget(60)
        };
        assert_eq!(period(&rpm, now), None);
        assert_eq!(counter_seconds(&budget(30 * DAY)), 31 * DAY);
        assert_eq!(counter_seconds(&rpm), 60);
    }
}
