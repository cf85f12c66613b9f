//! Calendar periods of budgets: a day, an ISO week (Monday to Monday) or a month, in the
//! budget's time zone (UTC by default), with daylight-saving days as long as they really are.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

use crate::config::Period;

/// One period: `[start, end)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    /// Seconds from `now` to the end of the period (at least 1, for `Retry-After`).
    pub fn seconds_left(&self, now: i64) -> u64 {
        u64::try_from(self.end.saturating_sub(now))
            .unwrap_or(0)
            .max(1)
    }
}

/// The period of kind `period` in `tz` that contains `now` (Unix seconds).
pub fn window(period: Period, tz: &TimeZone, now: i64) -> Window {
    match bounds(period, tz, now) {
        Some(w) => w,
        // Out of jiff's range (year ±9999) only: a day in UTC is always computable.
        None => {
            let start = now.div_euclid(86_400) * 86_400;
            Window {
                start,
                end: start + 86_400,
            }
        }
    }
}

fn bounds(period: Period, tz: &TimeZone, now: i64) -> Option<Window> {
    let at = Timestamp::from_second(now).ok()?.to_zoned(tz.clone());
    let day = at.start_of_day().ok()?;
    let start: Zoned = match period {
        Period::Daily => day,
        Period::Weekly => {
            let back = i64::from(at.weekday().to_monday_zero_offset());
            day.checked_sub(back.days()).ok()?.start_of_day().ok()?
        }
        Period::Monthly => at.first_of_month().ok()?.start_of_day().ok()?,
    };
    let end = match period {
        Period::Daily => start.checked_add(1.day()).ok()?,
        Period::Weekly => start.checked_add(1.week()).ok()?,
        Period::Monthly => start.checked_add(1.month()).ok()?,
    }
    .start_of_day()
    .ok()?;
    Some(Window {
        start: start.timestamp().as_second(),
        end: end.timestamp().as_second(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn utc_day_week_month() {
        let now = ts("2026-11-21T22:30:00Z"); // a Saturday
        let d = window(Period::Daily, &TimeZone::UTC, now);
        assert_eq!(
            (d.start, d.end),
            (ts("2026-11-21T00:00:00Z"), ts("2026-11-22T00:00:00Z"))
        );
        let w = window(Period::Weekly, &TimeZone::UTC, now);
        assert_eq!(
            (w.start, w.end),
            (ts("2026-11-16T00:00:00Z"), ts("2026-11-23T00:00:00Z"))
        );
        let m = window(Period::Monthly, &TimeZone::UTC, now);
        assert_eq!(
            (m.start, m.end),
            (ts("2026-11-01T00:00:00Z"), ts("2026-12-01T00:00:00Z"))
        );
        assert_eq!(d.seconds_left(now), 5_400);
    }

    #[test]
    fn time_zones_and_daylight_saving() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        // 23:30 UTC on 21 Nov is already 22 Nov in Paris.
        let d = window(Period::Daily, &paris, ts("2026-11-21T23:30:00Z"));
        assert_eq!(d.start, ts("2026-11-21T23:00:00Z"));
        // 29 March 2026: clocks go forward, the day has 23 hours.
        let d = window(Period::Daily, &paris, ts("2026-03-29T12:00:00Z"));
        assert_eq!(d.end - d.start, 23 * 3600);
        // A month boundary in the zone, not in UTC.
        let m = window(Period::Monthly, &paris, ts("2026-11-30T23:30:00Z"));
        assert_eq!(m.start, ts("2026-11-30T23:00:00Z"));
    }

    #[test]
    fn the_last_second_of_a_period_is_inside_it() {
        let end = ts("2026-11-22T00:00:00Z");
        let d = window(Period::Daily, &TimeZone::UTC, end - 1);
        assert_eq!(d.end, end);
        assert_eq!(window(Period::Daily, &TimeZone::UTC, end).start, end);
    }
}
