//! Calling windows: the hours, week days and dates on which a customer may be called, in her own
//! time zone (IANA ids through `chrono-tz`, so daylight saving comes from the tz database, never
//! from a fixed offset), and the deprecated fixed-offset quiet hours kept for old documents.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;

/// Minutes in a day: a window may end at `24:00`.
const DAY_MINUTES: u32 = 24 * 60;
/// How far ahead the next opening is looked for (a window open one day a week, after a holiday,
/// still opens within it).
const HORIZON_DAYS: i64 = 15;

/// When a customer may be called, in her local time. The default is 08:00–21:00 every day: the
/// US TCPA's limit (47 CFR § 64.1200(c)(1): no calls "before the hour of 8 a.m. or after 9 p.m.
/// (local time at the called party's location)").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Minutes after local midnight, `start < end ≤ 1440`.
    pub start: u32,
    pub end: u32,
    /// Monday first.
    pub days: [bool; 7],
    /// Local dates on which nobody is called (holidays), sorted.
    pub skip: Vec<NaiveDate>,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            start: 8 * 60,
            end: 21 * 60,
            days: [true; 7],
            skip: Vec::new(),
        }
    }
}

/// `HH:MM` → minutes after midnight; `24:00` only where `allow_24` (a window's end).
fn hm(t: &str, allow_24: bool) -> Result<u32, String> {
    let bad = || format!("{t:?} is not HH:MM");
    let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if (h == 24 && m == 0 && allow_24) || (h <= 23 && m <= 59) {
        Ok(h * 60 + m)
    } else {
        Err(format!("{t:?} is not a time of day"))
    }
}

fn weekday(name: &str) -> Result<Weekday, String> {
    name.trim().parse::<Weekday>().map_err(|_| {
        format!("{name:?} is not a day of the week (Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
    })
}

impl Window {
    /// `"08:00-21:00"`: the window opens at the first time and closes at the second, on the same
    /// local day (`24:00` is midnight at its end). A window across midnight is refused: calling
    /// hours are a daytime range, and quiet hours (`quietHours`) say the night.
    pub fn parse_hours(raw: &str) -> Result<(u32, u32), String> {
        let (a, b) = raw
            .split_once('-')
            .ok_or("expected START-END, e.g. 08:00-21:00")?;
        let (start, end) = (hm(a, false)?, hm(b, true)?);
        if start >= end {
            return Err(format!(
                "{raw:?}: the window must open before it closes on the same day (e.g. 08:00-21:00)"
            ));
        }
        Ok((start, end))
    }

    /// `["Mon-Fri", "Sat"]`: days and inclusive ranges, English three-letter or full names.
    pub fn parse_days(list: &[String]) -> Result<[bool; 7], String> {
        let mut days = [false; 7];
        for item in list {
            match item.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (weekday(a)?, weekday(b)?);
                    let mut d = a;
                    loop {
                        days[d.num_days_from_monday() as usize] = true;
                        if d == b {
                            break;
                        }
                        d = d.succ();
                    }
                }
                None => days[weekday(item)?.num_days_from_monday() as usize] = true,
            }
        }
        if !days.contains(&true) {
            return Err("no day of the week is left to call on".into());
        }
        Ok(days)
    }

    /// `2026-12-25` (a local date).
    pub fn parse_date(raw: &str) -> Result<NaiveDate, String> {
        NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
            .map_err(|_| format!("{raw:?} is not a date (YYYY-MM-DD)"))
    }

    /// Whether a call at `at` falls inside the window in `tz`.
    pub fn is_open_in(&self, tz: Tz, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&tz);
        let date = local.date_naive();
        if !self.days[date.weekday().num_days_from_monday() as usize]
            || self.skip.binary_search(&date).is_ok()
        {
            return false;
        }
        let minute = local.hour() * 60 + local.minute();
        minute >= self.start && minute < self.end
    }

    /// The instant the window opens on the local `date` in `tz`: the opening time, or (in a
    /// daylight-saving gap, where that local time does not exist) the first minute after it.
    fn opening(&self, tz: Tz, date: NaiveDate) -> Option<DateTime<Utc>> {
        let midnight = date.and_hms_opt(0, 0, 0)?;
        (self.start..self.start + 180).find_map(|m| {
            tz.from_local_datetime(&(midnight + chrono::Duration::minutes(i64::from(m))))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        })
    }

    /// The first instant from `at` on at which the window is open in every one of `zones` (a
    /// number whose area spans two zones is called only when it is day in both) and outside the
    /// quiet hours; `None` when no such instant comes within fifteen days (e.g. zones too far
    /// apart for their windows to overlap).
    pub fn next_open(
        &self,
        zones: &[Tz],
        quiet: Option<&QuietHours>,
        at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let open = |t: DateTime<Utc>| {
            zones.iter().all(|z| self.is_open_in(*z, t))
                && quiet.is_none_or(|q| q.window_end(t.timestamp_millis()).is_none())
        };
        if open(at) {
            return Some(at);
        }
        // Where every zone is open, the joint window begins where the last of them opened (or
        // where the quiet hours end): only those instants need to be tried, in order.
        let mut candidates: Vec<DateTime<Utc>> = Vec::new();
        for z in zones {
            let today = at.with_timezone(z).date_naive();
            for d in -1..=HORIZON_DAYS {
                let date = today + chrono::Duration::days(d);
                if let Some(t) = self.opening(*z, date).filter(|t| *t > at) {
                    candidates.push(t);
                }
            }
        }
        if let Some(q) = quiet {
            candidates.extend(q.ends_after(at));
        }
        candidates.sort_unstable();
        candidates.into_iter().find(|t| open(*t))
    }
}

/// A daily window in which nobody is called, in a fixed UTC offset (`QUIET_HOURS`,
/// `call.quietHours`). Deprecated: a fixed offset ignores daylight saving; a rule's `policy`
/// window in the customer's own zone replaces it. Kept so that old documents keep working; it
/// applies on top of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// Minutes after local midnight.
    pub start: u32,
    pub end: u32,
    pub utc_offset_minutes: i32,
}

impl QuietHours {
    /// `"21:00-08:00"` with an offset like `"-05:00"`.
    pub fn parse(window: &str, offset: &str) -> Result<Self, String> {
        let (a, b) = window
            .split_once('-')
            .ok_or("expected START-END, e.g. 21:00-08:00")?;
        let offset = offset.trim();
        let (sign, rest) = match offset.strip_prefix('-') {
            Some(r) => (-1, r),
            None => (1, offset.strip_prefix('+').unwrap_or(offset)),
        };
        let utc_offset_minutes = sign * hm(rest, false)? as i32;
        Ok(Self {
            start: hm(a, false)?,
            end: hm(b, false)?,
            utc_offset_minutes,
        })
    }

    fn local_ms(&self, now_ms: i64) -> i64 {
        now_ms + i64::from(self.utc_offset_minutes) * 60_000
    }

    /// If `now_ms` falls in the window, the unix ms at which it ends.
    pub fn window_end(&self, now_ms: i64) -> Option<i64> {
        if self.start == self.end {
            return None;
        }
        let local_ms = self.local_ms(now_ms);
        let day_ms = i64::from(DAY_MINUTES) * 60_000;
        let minute = (local_ms.rem_euclid(day_ms) / 60_000) as u32;
        let inside = if self.start < self.end {
            minute >= self.start && minute < self.end
        } else {
            minute >= self.start || minute < self.end
        };
        if !inside {
            return None;
        }
        let midnight = local_ms - local_ms.rem_euclid(day_ms);
        let mut end_local = midnight + i64::from(self.end) * 60_000;
        if end_local <= local_ms {
            end_local += day_ms;
        }
        Some(end_local - i64::from(self.utc_offset_minutes) * 60_000)
    }

    /// The instants the quiet hours end after `at`, for the next fifteen days.
    fn ends_after(&self, at: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let day_ms = i64::from(DAY_MINUTES) * 60_000;
        let local = self.local_ms(at.timestamp_millis());
        let midnight = local - local.rem_euclid(day_ms);
        let offset_ms = i64::from(self.utc_offset_minutes) * 60_000;
        (-1..=HORIZON_DAYS).filter_map(move |d| {
            let end = midnight + d * day_ms + i64::from(self.end) * 60_000 - offset_ms;
            DateTime::from_timestamp_millis(end).filter(|t| *t > at)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn quiet_hours_across_midnight_in_an_offset() {
        let q = QuietHours::parse("21:00-08:00", "-05:00").unwrap();
        // 2026-11-26 03:00 UTC = 22:00 at -05:00: inside; ends 08:00 local = 13:00 UTC.
        let t = 1_795_662_000_000; // 2026-11-26T03:00:00Z
        assert_eq!(q.window_end(t), Some(t + 10 * 3_600_000));
        // 15:00 UTC = 10:00 local: outside.
        assert_eq!(q.window_end(t + 12 * 3_600_000), None);
        assert!(QuietHours::parse("25:00-08:00", "+00:00").is_err());
        assert!(QuietHours::parse("21:00", "+00:00").is_err());
    }

    #[test]
    fn a_los_angeles_customer_at_six_waits_until_eight_pacific() {
        let w = Window::default();
        let la = chrono_tz::America::Los_Angeles;
        // 2026-07-15 06:00 PDT (UTC-7) = 13:00 UTC.
        let at = utc("2026-07-15T13:00:00Z");
        assert!(!w.is_open_in(la, at));
        assert_eq!(
            w.next_open(&[la], None, at),
            Some(utc("2026-07-15T15:00:00Z")),
            "08:00 PDT"
        );
        // The same local hour in winter is an hour later in UTC (PST, UTC-8).
        assert_eq!(
            w.next_open(&[la], None, utc("2026-12-15T14:00:00Z")),
            Some(utc("2026-12-15T16:00:00Z"))
        );
    }

    #[test]
    fn two_zones_wait_for_the_later_one() {
        let w = Window::default();
        let (ny, chi) = (chrono_tz::America::New_York, chrono_tz::America::Chicago);
        // 12:30 UTC in January: 07:30 New York, 06:30 Chicago. New York opens at 13:00 UTC,
        // Chicago at 14:00 UTC: the call waits for Chicago.
        let at = utc("2027-01-13T12:30:00Z");
        assert_eq!(
            w.next_open(&[ny, chi], None, at),
            Some(utc("2027-01-13T14:00:00Z"))
        );
        // And stops when New York closes (21:00 EST = 02:00 UTC), not Chicago.
        assert!(w.is_open_in(chi, utc("2027-01-14T02:30:00Z")));
        assert_eq!(
            w.next_open(&[ny, chi], None, utc("2027-01-14T02:30:00Z")),
            Some(utc("2027-01-14T14:00:00Z"))
        );
    }

    #[test]
    fn days_and_holidays_are_local_dates() {
        let w = Window {
            days: Window::parse_days(&["Mon-Fri".into()]).unwrap(),
            skip: vec![Window::parse_date("2026-12-25").unwrap()],
            ..Window::default()
        };
        let ny = chrono_tz::America::New_York;
        // Thursday 2026-12-24 22:00 EST → Friday is Christmas, then the weekend: Monday 08:00.
        assert_eq!(
            w.next_open(&[ny], None, utc("2026-12-25T03:00:00Z")),
            Some(utc("2026-12-28T13:00:00Z"))
        );
        assert!(Window::parse_days(&["Mon-Fry".into()]).is_err());
        assert!(Window::parse_days(&[]).is_err());
        assert_eq!(
            Window::parse_days(&["Fri-Mon".into()]).unwrap(),
            [true, false, false, false, true, true, true],
            "a range may wrap over the weekend"
        );
        assert!(Window::parse_date("2026-13-01").is_err());
    }

    #[test]
    fn hours_are_checked() {
        assert_eq!(Window::parse_hours("09:00-24:00"), Ok((540, 1440)));
        assert!(
            Window::parse_hours("21:00-08:00").is_err(),
            "across midnight"
        );
        assert!(Window::parse_hours("08:00-08:00").is_err());
        assert!(Window::parse_hours("24:00-24:00").is_err());
        assert!(Window::parse_hours("8-21").is_err());
    }

    #[test]
    fn quiet_hours_apply_on_top_of_the_window() {
        let w = Window::default();
        let utc_zone = chrono_tz::UTC;
        // Quiet 12:00-14:00 UTC: at 12:30 the next opening is 14:00.
        let q = QuietHours::parse("12:00-14:00", "+00:00").unwrap();
        assert_eq!(
            w.next_open(&[utc_zone], Some(&q), utc("2026-12-07T12:30:00Z")),
            Some(utc("2026-12-07T14:00:00Z"))
        );
    }

    #[test]
    fn zones_whose_windows_never_meet_have_no_opening() {
        let w = Window::default();
        let zones = [chrono_tz::Pacific::Honolulu, chrono_tz::Asia::Tokyo];
        // 08:00–21:00 Honolulu is 18:00–07:00 UTC, Tokyo 23:00–12:00 UTC: they meet 23:00–07:00.
        assert!(w
            .next_open(&zones, None, utc("2026-12-07T12:00:00Z"))
            .is_some());
        let zones = [chrono_tz::America::New_York, chrono_tz::Asia::Kolkata];
        // New York 13:00–02:00 UTC, Kolkata 02:30–15:30 UTC: 13:00–15:30 UTC both open.
        assert!(w
            .next_open(&zones, None, utc("2026-12-07T16:00:00Z"))
            .is_some());
        let narrow = Window {
            start: 9 * 60,
            end: 10 * 60,
            ..Window::default()
        };
        assert_eq!(
            narrow.next_open(&zones, None, utc("2026-12-07T16:00:00Z")),
            None
        );
    }

    fn zone() -> impl Strategy<Value = Tz> {
        prop::sample::select(vec![
            chrono_tz::America::New_York,
            chrono_tz::America::Los_Angeles,
            chrono_tz::America::Chicago,
            chrono_tz::America::Phoenix,
            chrono_tz::Europe::London,
            chrono_tz::Europe::Berlin,
            chrono_tz::Australia::Sydney,
            chrono_tz::Pacific::Honolulu,
        ])
    }

    proptest! {
        /// Around the US (second Sunday of March, first Sunday of November) and EU (last Sundays
        /// of March and October) daylight-saving changes of 2026 and 2027, and at any instant:
        /// the answer is open in every zone at the local hours, never earlier than asked, and
        /// no earlier minute between the two is open.
        #[test]
        fn the_next_opening_is_the_first_open_local_minute(
            z1 in zone(),
            z2 in zone(),
            // 2026-03-01 .. 2027-11-30, in minutes
            minute in 29_528_640i64..30_561_120,
            start_h in 6u32..12,
            len_h in 1u32..12,
        ) {
            let w = Window { start: start_h * 60, end: (start_h + len_h) * 60, ..Window::default() };
            let at = DateTime::from_timestamp(minute * 60, 0).unwrap();
            let zones = [z1, z2];
            if let Some(t) = w.next_open(&zones, None, at) {
                prop_assert!(t >= at);
                for z in zones {
                    prop_assert!(w.is_open_in(z, t), "{t} not open in {z}");
                    let local = t.with_timezone(&z);
                    let m = local.hour() * 60 + local.minute();
                    prop_assert!(m >= w.start && m < w.end);
                }
                // No earlier open minute (checked on a 15-minute grid up to a day back).
                let mut probe = t - chrono::Duration::minutes(15);
                while probe > at && t - probe < chrono::Duration::days(1) {
                    prop_assert!(!zones.iter().all(|z| w.is_open_in(*z, probe)), "{probe} was open before {t}");
                    probe -= chrono::Duration::minutes(15);
                }
            } else {
                // Only far-apart zones with a narrow window may never meet.
                prop_assert!(z1 != z2);
            }
        }

        /// A single zone's window opens at its local opening time, on both sides of each change.
        #[test]
        fn one_zone_opens_at_its_local_time(z in zone(), minute in 29_528_640i64..30_561_120) {
            let w = Window::default();
            let at = DateTime::from_timestamp(minute * 60, 0).unwrap();
            let t = w.next_open(&[z], None, at).unwrap();
            let local = t.with_timezone(&z);
            prop_assert!(t == at || (local.hour(), local.minute()) == (8, 0), "{local}");
            prop_assert!(t - at < chrono::Duration::hours(24));
        }
    }
}
