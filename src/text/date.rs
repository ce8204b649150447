//! Calendar dates, the one place that knows the calendar: what a stored paper date is,
//! how the corpus readers get one, and what a filter's date bound covers.
//!
//! A paper's date is stored as a `YYYY-MM-DD` string of a real day (Gregorian, leap years
//! included), so that comparing two dates as strings compares them as days. A filter's
//! bound may also be a month (`YYYY-MM`) or a year (`YYYY`), covering all of it: `from`
//! starts on its first day, `to` ends on its last.

/// Days in `month` of `year`, or `None` for a month outside 1..=12.
fn days_in_month(year: u32, month: u32) -> Option<u32> {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
        4 | 6 | 9 | 11 => Some(30),
        2 if leap => Some(29),
        2 => Some(28),
        _ => None,
    }
}

/// A year, a month or a day: the forms a date filter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    year: u32,
    month: Option<u32>,
    day: Option<u32>,
}

impl Period {
    /// Parses `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (zero-padded); `None` unless the month
    /// and the day exist (`2025-02-29` does not).
    pub fn parse(s: &str) -> Option<Period> {
        let b = s.as_bytes();
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let digits = b.get(r.clone())?;
            digits
                .iter()
                .all(u8::is_ascii_digit)
                .then(|| s[r].parse().ok())?
        };
        let dash = |i: usize| b.get(i) == Some(&b'-');
        let year = num(0..4)?;
        let (month, day) = match b.len() {
            4 => (None, None),
            7 if dash(4) => (Some(num(5..7)?), None),
            10 if dash(4) && dash(7) => (Some(num(5..7)?), Some(num(8..10)?)),
            _ => return None,
        };
        if let Some(m) = month {
            let days = days_in_month(year, m)?;
            if day.is_some_and(|d| !(1..=days).contains(&d)) {
                return None;
            }
        }
        Some(Period { year, month, day })
    }

    /// The period's first day as (year, month, day).
    pub fn first_day(&self) -> (u32, u32, u32) {
        (self.year, self.month.unwrap_or(1), self.day.unwrap_or(1))
    }

    /// The period's last day as (year, month, day).
    pub fn last_day(&self) -> (u32, u32, u32) {
        let month = self.month.unwrap_or(12);
        let last =
            days_in_month(self.year, month).expect("a parsed month is valid. This is a bug.");
        (self.year, month, self.day.unwrap_or(last))
    }
}

/// Whether the stored date `date` (`YYYY-MM-DD`) falls on or after the first day of the
/// bound `from` (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`).
pub fn on_or_after(date: &str, from: &str) -> bool {
    // A prefix sorts before every string it starts: "2025-03" < "2025-03-01".
    date >= from
}

/// Whether the stored date `date` falls on or before the last day of the bound `to`.
pub fn on_or_before(date: &str, to: &str) -> bool {
    date.get(..to.len()).unwrap_or(date) <= to
}

/// A corpus date: `YYYY-MM-DD`, optionally followed by a time (`2025-03-18T10:00:00Z`,
/// `2025-03-18 10:00`). Returns the day if it exists.
pub fn parse_day(s: &str) -> Option<String> {
    let s = s.trim();
    let d = s.get(..10)?;
    let rest = &s[10..];
    if !(rest.is_empty() || rest.starts_with(['T', ' '])) {
        return None;
    }
    Period::parse(d)
        .filter(|p| p.day.is_some())
        .map(|_| d.to_string())
}

/// The day of an RFC 2822 timestamp (arXiv's version dates):
/// `"Mon, 2 Apr 2007 19:18:42 GMT"` → `"2007-04-02"`.
pub fn parse_rfc2822_day(s: &str) -> Option<String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = s.split_whitespace().skip_while(|p| p.ends_with(','));
    let day: u32 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? + 1;
    let year: u32 = parts.next()?.parse().ok()?;
    parse_day(&format!("{year:04}-{month:02}-{day:02}"))
}

/// The day `days` days before the day `day` (`YYYY-MM-DD`), or after it for a negative
/// count; `None` if `day` is not a real day.
pub fn add_days(day: &str, days: i32) -> Option<String> {
    let d: jiff::civil::Date = parse_day(day)?.parse().ok()?;
    d.checked_add(jiff::Span::new().days(days))
        .ok()
        .map(|d| d.to_string())
}

/// Today in UTC, `YYYY-MM-DD`: the day a harvest or a sync runs up to.
pub fn today() -> String {
    jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .to_string()
}

/// Whole days from `from` to `to` (both `YYYY-MM-DD`), negative if `to` is earlier.
pub fn days_between(from: &str, to: &str) -> Option<i32> {
    let a: jiff::civil::Date = parse_day(from)?.parse().ok()?;
    let b: jiff::civil::Date = parse_day(to)?.parse().ok()?;
    a.until(b).ok().map(|s| s.get_days())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_days_are_real_days() {
        assert_eq!(parse_day("2025-03-18"), Some("2025-03-18".into()));
        assert_eq!(parse_day("2024-02-29T10:00:00Z"), Some("2024-02-29".into()));
        assert_eq!(parse_day(" 2024-02-29 10:00 "), Some("2024-02-29".into()));
        assert_eq!(parse_day("2025-02-29"), None);
        assert_eq!(parse_day("1900-02-29"), None);
        assert_eq!(parse_day("2000-02-29"), Some("2000-02-29".into()));
        assert_eq!(parse_day("2025-04-31"), None);
        assert_eq!(parse_day("2025-13-01"), None);
        assert_eq!(parse_day("2025-03"), None);
        assert_eq!(parse_day("18/03/2025"), None);
        assert_eq!(parse_day("2025-03-1"), None);
        assert_eq!(parse_day("2025-03-18x"), None);
        assert_eq!(parse_day("é"), None);
    }

    #[test]
    fn parses_rfc2822_days() {
        assert_eq!(
            parse_rfc2822_day("Mon, 2 Apr 2007 19:18:42 GMT"),
            Some("2007-04-02".into())
        );
        assert_eq!(parse_rfc2822_day("Sat, 31 Feb 2007 00:00:00 GMT"), None);
        assert_eq!(parse_rfc2822_day("garbage"), None);
    }

    #[test]
    fn periods_validate_day_of_month() {
        assert!(Period::parse("2025").is_some());
        assert!(Period::parse("2025-02").is_some());
        assert!(Period::parse("2024-02-29").is_some());
        for bad in [
            "2025-02-29",
            "2025-02-31",
            "2025-04-31",
            "2025-00",
            "2025-13",
            "2025-3-1",
            "25",
            "2025-03-18T00",
            "yesterday",
            "2025-03-00",
        ] {
            assert_eq!(Period::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn periods_span_their_year_or_month() {
        let p = |s| Period::parse(s).unwrap();
        assert_eq!(p("2024").first_day(), (2024, 1, 1));
        assert_eq!(p("2024").last_day(), (2024, 12, 31));
        assert_eq!(p("2024-02").last_day(), (2024, 2, 29));
        assert_eq!(p("2023-02").last_day(), (2023, 2, 28));
        assert_eq!(p("2024-06-15").last_day(), (2024, 6, 15));
        assert!(on_or_after("2025-03-18", "2025-03"));
        assert!(on_or_after("2025-03-18", "2025"));
        assert!(!on_or_after("2025-03-18", "2025-03-19"));
        assert!(on_or_before("2025-03-18", "2025-03"));
        assert!(on_or_before("2025-03-18", "2025"));
        assert!(!on_or_before("2025-03-18", "2025-02"));
        assert!(!on_or_before("2025-03-18", "2025-03-17"));
    }

    #[test]
    fn day_arithmetic() {
        assert_eq!(add_days("2024-03-01", -1).as_deref(), Some("2024-02-29"));
        assert_eq!(add_days("2025-01-10", -90).as_deref(), Some("2024-10-12"));
        assert_eq!(add_days("2025-12-31", 1).as_deref(), Some("2026-01-01"));
        assert_eq!(add_days("2025-02-30", 1), None);
        assert_eq!(days_between("2024-10-12", "2025-01-10"), Some(90));
        assert_eq!(days_between("2025-01-10", "2024-10-12"), Some(-90));
        assert_eq!(today().len(), 10);
    }
}
