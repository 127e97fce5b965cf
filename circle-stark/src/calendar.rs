//! UTC calendar days, as poe names them (`YYYY-MM-DD`) and counts them (days since 1970-01-01).

use std::fmt;
use std::str::FromStr;

/// One UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub u32);

/// Microseconds in a day.
pub const DAY_US: u64 = 86_400_000_000;

impl Day {
    /// The day containing `us` µs after the epoch.
    pub fn of_us(us: u64) -> Self {
        Self((us / DAY_US) as u32)
    }

    /// First µs of the day.
    pub fn start_us(self) -> u64 {
        u64::from(self.0) * DAY_US
    }

    /// The following day.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// `(year, month, day)`, proleptic Gregorian (H. Hinnant's civil-from-days).
    pub fn ymd(self) -> (i64, u32, u32) {
        let z = i64::from(self.0) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(m <= 2), m as u32, d as u32)
    }

    /// Days-from-civil, the inverse of [`Day::ymd`]; `None` before 1970 or for an invalid date.
    pub fn from_ymd(y: i64, m: u32, d: u32) -> Option<Self> {
        if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
            return None;
        }
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
        let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        u32::try_from(days).ok().map(Self)
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// Not a `YYYY-MM-DD` date on or after 1970-01-01.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a date YYYY-MM-DD on or after 1970-01-01")]
pub struct DayParseError(pub String);

impl FromStr for Day {
    type Err = DayParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || DayParseError(s.to_string());
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u32, DayParseError> {
            let part = &s[r];
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        Self::from_ymd(i64::from(num(0..4)?), num(5..7)?, num(8..10)?).ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_through_their_names() {
        for n in (0..200_000).step_by(97) {
            let day = Day(n);
            assert_eq!(day.to_string().parse::<Day>(), Ok(day));
        }
        assert_eq!(Day(0).to_string(), "1970-01-01");
        assert_eq!(
            "2024-02-29".parse::<Day>().unwrap().to_string(),
            "2024-02-29"
        );
        assert_eq!("2026-11-26".parse::<Day>(), Ok(Day(20_783)));
    }

    #[test]
    fn invalid_dates_are_refused() {
        for s in [
            "2025-02-29",
            "2026-13-01",
            "1969-12-31",
            "2026-1-01",
            "2026-01-0x",
            "",
        ] {
            assert!(s.parse::<Day>().is_err(), "{s}");
        }
    }
}
