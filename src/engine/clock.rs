//! The date and time a chat template may ask for (`strftime_now`, which Hugging Face and
//! llama.cpp give templates: Llama 3.2, Granite, Mistral Small and gpt-oss put today's date in
//! their system prompt). The engine has no clock of its own in the browser, so the caller
//! hands one in: the page its local time, the command line the time in UTC.

/// A moment as a calendar shows it (proleptic Gregorian), to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub year: i32,
    /// 1-12.
    pub month: u32,
    /// 1-31.
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

pub const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
/// Monday first, as ISO 8601 counts.
pub const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Days since 1970-01-01 of a date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Clock {
    /// A date and time, or None when it is not one (month 13, February 30, hour 24).
    pub fn new(
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    ) -> Option<Self> {
        let c = Clock {
            year,
            month,
            day,
            hour,
            minute,
            second,
        };
        let valid = (1..=12).contains(&month)
            && day >= 1
            && day <= c.days_in_month()
            && hour < 24
            && minute < 60
            && second < 61;
        valid.then_some(c)
    }

    /// The UTC calendar time `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix(secs: i64) -> Self {
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Hinnant's `civil_from_days`.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Clock {
            year: year.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// Now, in UTC, where the platform has a clock (not wasm32-unknown-unknown).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn now_utc() -> Option<Self> {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs();
        Some(Self::from_unix(i64::try_from(secs).ok()?))
    }

    fn is_leap(&self) -> bool {
        let y = self.year;
        y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
    }

    fn days_in_month(&self) -> u32 {
        match self.month {
            4 | 6 | 9 | 11 => 30,
            2 if self.is_leap() => 29,
            2 => 28,
            _ => 31,
        }
    }

    /// 0 for Monday.
    fn weekday(&self) -> usize {
        // 1970-01-01 was a Thursday.
        (days_from_civil(i64::from(self.year), self.month, self.day) + 3).rem_euclid(7) as usize
    }

    fn day_of_year(&self) -> i64 {
        days_from_civil(i64::from(self.year), self.month, self.day)
            - days_from_civil(i64::from(self.year), 1, 1)
            + 1
    }

    /// Python's `datetime.strftime` in the C locale, for the directives templates use; `%-d`
    /// (glibc's unpadded form) too. Any other directive is written as it stands, as glibc does.
    pub fn strftime(&self, format: &str) -> String {
        let mut out = String::with_capacity(format.len() + 16);
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let unpadded = chars.peek() == Some(&'-');
            if unpadded {
                chars.next();
            }
            let num = |n: i64, width: usize| {
                if unpadded {
                    n.to_string()
                } else {
                    format!("{n:0width$}")
                }
            };
            let month = MONTHS[(self.month as usize).clamp(1, 12) - 1];
            let weekday = WEEKDAYS[self.weekday()];
            let hour12 = (self.hour + 11) % 12 + 1;
            match chars.next() {
                Some('Y') => out.push_str(&self.year.to_string()),
                Some('y') => out.push_str(&num(i64::from(self.year).rem_euclid(100), 2)),
                Some('m') => out.push_str(&num(i64::from(self.month), 2)),
                Some('d') => out.push_str(&num(i64::from(self.day), 2)),
                Some('e') => out.push_str(&format!("{:>2}", self.day)),
                Some('H') => out.push_str(&num(i64::from(self.hour), 2)),
                Some('I') => out.push_str(&num(i64::from(hour12), 2)),
                Some('M') => out.push_str(&num(i64::from(self.minute), 2)),
                Some('S') => out.push_str(&num(i64::from(self.second), 2)),
                Some('p') => out.push_str(if self.hour < 12 { "AM" } else { "PM" }),
                Some('j') => out.push_str(&num(self.day_of_year(), 3)),
                Some('B') => out.push_str(month),
                Some('b') | Some('h') => out.push_str(&month[..3]),
                Some('A') => out.push_str(weekday),
                Some('a') => out.push_str(&weekday[..3]),
                Some('u') => out.push_str(&(self.weekday() + 1).to_string()),
                Some('w') => out.push_str(&((self.weekday() + 1) % 7).to_string()),
                Some('F') => {
                    out.push_str(&format!("{}-{:02}-{:02}", self.year, self.month, self.day))
                }
                Some('T') => out.push_str(&format!(
                    "{:02}:{:02}:{:02}",
                    self.hour, self.minute, self.second
                )),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    if unpadded {
                        out.push('-');
                    }
                    out.push(other);
                }
                None => {
                    out.push('%');
                    if unpadded {
                        out.push('-');
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_become_the_calendar_date() {
        let c = Clock::from_unix(0);
        assert_eq!((c.year, c.month, c.day, c.hour), (1970, 1, 1, 0));
        // 2026-12-06T16:42:05Z, and the leap day of 2024 at its last second.
        let c = Clock::from_unix(1_796_575_325);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (2026, 12, 6, 16, 42, 5)
        );
        let c = Clock::from_unix(1_709_251_199);
        assert_eq!((c.year, c.month, c.day, c.hour), (2024, 2, 29, 23));
        let c = Clock::from_unix(-1);
        assert_eq!((c.year, c.month, c.day, c.hour), (1969, 12, 31, 23));
        // Every day of four centuries goes back to its own day number.
        for days in -146_097..146_097i64 {
            let c = Clock::from_unix(days * 86_400);
            assert_eq!(days_from_civil(i64::from(c.year), c.month, c.day), days);
        }
    }

    #[test]
    fn strftime_writes_what_python_writes() {
        let c = Clock::new(2026, 12, 6, 16, 4, 5).unwrap();
        // Each expected string is Python's `datetime(2026, 12, 6, 16, 4, 5).strftime(f)`.
        for (f, want) in [
            ("%d %b %Y", "06 Dec 2026"),
            ("%Y-%m-%d", "2026-12-06"),
            ("%B %d, %Y", "December 06, 2026"),
            ("%A %a %u %w %j", "Sunday Sun 7 0 340"),
            ("%H:%M:%S %I %p %y", "16:04:05 04 PM 26"),
            ("%-d %-m %e|%F %T", "6 12  6|2026-12-06 16:04:05"),
            ("100%% %Q %", "100% %Q %"),
        ] {
            assert_eq!(c.strftime(f), want, "{f}");
        }
        let c = Clock::new(2024, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(c.strftime("%a %j %I %p"), "Mon 001 12 AM");
        assert!(Clock::new(2025, 2, 29, 0, 0, 0).is_none());
        assert!(Clock::new(2024, 2, 29, 0, 0, 0).is_some());
        assert!(Clock::new(2024, 13, 1, 0, 0, 0).is_none());
    }
}
