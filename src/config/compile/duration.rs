//! Durations in the config ("500ms", "10s", "5m", "1h"), bounded so that no timeout can overflow
//! the clock arithmetic it feeds.

use std::time::Duration;

use toml::Spanned;

use crate::config::diagnostic::Diagnostics;

/// The longest duration a config may name. Every timeout is added to `Instant::now()` on the
/// request path, and an `Instant` plus `u64::MAX` seconds overflows (a panic on every connection);
/// no timeout or grace period needs more than a day.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Parse "500ms", "10s", "5m", "1h": at most [`MAX_DURATION`].
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: write a whole number and a unit, like \"500ms\", \"10s\" or \"5m\""))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => {
            return Err(format!(
                "invalid duration {s:?}: the unit must be ms, s, m or h"
            ))
        }
    };
    if d > MAX_DURATION {
        return Err(format!(
            "duration {s:?} is too long: at most 1 day (\"24h\", \"1440m\" or \"86400s\")"
        ));
    }
    Ok(d)
}

pub(super) fn duration(
    v: Option<&Spanned<String>>,
    default: Duration,
    nonzero: bool,
    d: &mut Diagnostics<'_>,
) -> Duration {
    let Some(v) = v else { return default };
    match parse_duration(v.get_ref()) {
        Ok(x) if nonzero && x.is_zero() => {
            d.error(v.span(), "this duration must be greater than zero");
            default
        }
        Ok(x) => x,
        Err(e) => {
            d.error(v.span(), e);
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit_up_to_one_day_and_no_further() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("24h"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("1440m"), Ok(MAX_DURATION));
        for long in [
            "86401s",
            "25h",
            "18446744073709551615s",
            "18446744073709551615h",
        ] {
            let e = parse_duration(long).unwrap_err();
            assert!(e.contains("too long"), "{long}: {e}");
        }
        assert!(parse_duration("99999999999999999999s").is_err());
        assert!(parse_duration("10 seconds").is_err());
    }
}
