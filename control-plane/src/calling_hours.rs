//! Calling hours: when a scheduled retry may ring a prospect, in the prospect's own time zone.
//!
//! Pure arithmetic (no I/O, no clock): a [`CallingHours`] is a set of daily windows per weekday
//! plus a public-holiday calendar; [`CallingHours::next_allowed`] moves an instant to the first
//! one inside a window in *every* time zone the prospect may be in ([`zones_for`]: a Spanish
//! mobile may ring in Madrid or in the Canaries, so both must be inside their window).
//!
//! France, the built-in default: article D. 223-9 of the Code de la consommation, created by
//! décret n° 2022-1313 du 13 octobre 2022 (in force since 1 March 2023), allows telephone
//! canvassing only Monday to Friday, 10:00–13:00 and 14:00–20:00 in the consumer's time zone,
//! never on the public holidays of article L. 3133-1 of the Code du travail (1 January, Easter
//! Monday, 1 May, 8 May, Ascension Thursday, Whit Monday, 14 July, 15 August, 1 November,
//! 11 November, 25 December), which [`french_holidays`] computes (Easter by the anonymous
//! Gregorian algorithm). The same article caps attempts at four per 30 days, which bounds
//! `CALL_RETRY_DELAYS` (see [`crate::retry`]).
//!
//! Other countries: `CALLING_HOURS_<CC>` (format in [`CallingHours::parse`]); a country with
//! neither a built-in rule nor a variable gets [`CallingHours::weekdays_10_to_20`].

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use phonenumber::country::Id;
use time::OffsetDateTime;

/// Days searched ahead before giving up (a rule with no window at all never matches).
const SEARCH_DAYS: u64 = 400;

/// One window of a day, in minutes since local midnight, start included, end excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First allowed minute.
    pub start: u16,
    /// First minute no longer allowed (`1440` = midnight at the end of the day).
    pub end: u16,
}

/// Which public holidays close the windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holidays {
    /// None (configured countries: their holidays are not computed here).
    None,
    /// France's public holidays (article L. 3133-1 of the Code du travail).
    France,
}

/// When calls are allowed in one country.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingHours {
    /// Windows per weekday, Monday first, sorted and disjoint.
    days: [Vec<Window>; 7],
    /// Holiday calendar.
    pub holidays: Holidays,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn hm(h: u16, m: u16) -> u16 {
    h * 60 + m
}

impl CallingHours {
    /// France (décret n° 2022-1313, article D. 223-9 of the Code de la consommation): Monday to
    /// Friday 10:00–13:00 and 14:00–20:00, no public holidays.
    pub fn france() -> Self {
        let day =
            vec![Window { start: hm(10, 0), end: hm(13, 0) }, Window { start: hm(14, 0), end: hm(20, 0) }];
        let mut days: [Vec<Window>; 7] = Default::default();
        for d in days.iter_mut().take(5) {
            *d = day.clone();
        }
        Self { days, holidays: Holidays::France }
    }

    /// The default for a country without a rule: Monday to Friday, 10:00–20:00 local.
    pub fn weekdays_10_to_20() -> Self {
        let mut days: [Vec<Window>; 7] = Default::default();
        for d in days.iter_mut().take(5) {
            *d = vec![Window { start: hm(10, 0), end: hm(20, 0) }];
        }
        Self { days, holidays: Holidays::None }
    }

    /// The windows of a weekday (`0` = Monday).
    pub fn windows(&self, weekday_from_monday: usize) -> &[Window] {
        &self.days[weekday_from_monday % 7]
    }

    /// Parses `mon-fri 10:00-13:00,14:00-20:00; sat 10:00-12:00` (groups separated by `;`, each
    /// a day, a range of days or a comma list of them, then one or more `HH:MM-HH:MM` windows
    /// separated by `,` or spaces; `24:00` ends at midnight), or `none` (never). Days not named
    /// are closed. Holidays: `holidays` (the caller keeps France's for `FR`).
    pub fn parse(spec: &str, holidays: Holidays) -> Result<Self, String> {
        let mut days: [Vec<Window>; 7] = Default::default();
        let spec = spec.trim();
        if spec.eq_ignore_ascii_case("none") {
            return Ok(Self { days, holidays });
        }
        let mut named = [false; 7];
        for group in spec.split(';').map(str::trim).filter(|g| !g.is_empty()) {
            let (day_part, windows_part) = group.split_once(char::is_whitespace).ok_or_else(|| {
                format!("{group:?} needs days then windows, e.g. \"mon-fri 10:00-13:00,14:00-20:00\"")
            })?;
            let mut windows = Vec::new();
            for w in windows_part.split([',', ' ', '\t']).map(str::trim).filter(|w| !w.is_empty()) {
                windows.push(parse_window(w)?);
            }
            if windows.is_empty() {
                return Err(format!("{group:?} names days but no HH:MM-HH:MM window"));
            }
            windows.sort_by_key(|w| w.start);
            if let Some(pair) = windows.windows(2).find(|p| p[1].start < p[0].end) {
                return Err(format!(
                    "windows {} and {} overlap in {group:?}",
                    fmt_window(pair[0]),
                    fmt_window(pair[1])
                ));
            }
            for d in parse_days(day_part)? {
                if named[d] {
                    return Err(format!("{} is given twice", DAY_NAMES[d]));
                }
                named[d] = true;
                days[d] = windows.clone();
            }
        }
        if !named.iter().any(|n| *n) {
            return Err("no day given: write e.g. \"mon-fri 10:00-20:00\", or \"none\" to never retry".into());
        }
        Ok(Self { days, holidays })
    }

    /// Whether `date` is closed for its holiday.
    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        match self.holidays {
            Holidays::None => false,
            Holidays::France => french_holidays(date.year()).contains(&date),
        }
    }

    /// The first instant at or after `from` inside a window in `zone`, or `None` if there is
    /// none within [`SEARCH_DAYS`] days (a rule with no window).
    pub fn next_allowed_in(&self, zone: Tz, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let first_day = from.with_timezone(&zone).date_naive();
        for offset in 0..SEARCH_DAYS {
            let date = first_day.checked_add_days(Days::new(offset))?;
            if self.is_holiday(date) {
                continue;
            }
            for w in &self.days[date.weekday().num_days_from_monday() as usize] {
                let start = resolve(zone, date, w.start)?;
                let end = resolve(zone, date, w.end)?;
                let candidate = start.max(from);
                if candidate < end {
                    return Some(candidate);
                }
            }
        }
        None
    }

    /// The first instant at or after `from` inside a window in every zone of `zones` (which
    /// must not be empty), or `None` if the windows never meet.
    pub fn next_allowed(&self, zones: &[Tz], from: OffsetDateTime) -> Option<OffsetDateTime> {
        let mut t = to_chrono(from)?;
        // Each pass moves `t` forward to where one zone opens; it stops when all agree. The
        // bound only guards against windows that never overlap across the zones.
        for _ in 0..64 {
            let mut moved = false;
            for zone in zones {
                let next = self.next_allowed_in(*zone, t)?;
                if next > t {
                    t = next;
                    moved = true;
                }
            }
            if !moved {
                return from_chrono(t);
            }
        }
        None
    }

    /// Whether `at` is inside a window in every zone of `zones`.
    pub fn allows(&self, zones: &[Tz], at: OffsetDateTime) -> bool {
        self.next_allowed(zones, at) == Some(at)
    }
}

fn fmt_window(w: Window) -> String {
    format!("{:02}:{:02}-{:02}:{:02}", w.start / 60, w.start % 60, w.end / 60, w.end % 60)
}

fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

fn parse_window(w: &str) -> Result<Window, String> {
    let bad = || format!("{w:?} is not a window: write HH:MM-HH:MM, e.g. 10:00-13:00");
    let (a, b) = w.split_once('-').ok_or_else(bad)?;
    let (start, end) = (parse_hhmm(a).ok_or_else(bad)?, parse_hhmm(b).ok_or_else(bad)?);
    if start >= end {
        return Err(format!("window {w:?} ends before it starts"));
    }
    Ok(Window { start, end })
}

fn parse_day(d: &str) -> Result<usize, String> {
    let d = d.trim().to_ascii_lowercase();
    DAY_NAMES.iter().position(|n| **n == d).ok_or_else(|| {
        format!("{d:?} is not a day: use mon, tue, wed, thu, fri, sat, sun (or a range such as mon-fri)")
    })
}

fn parse_days(spec: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse_day(a)?, parse_day(b)?);
                if a > b {
                    return Err(format!("day range {part:?} runs backwards (weeks start on mon)"));
                }
                out.extend(a..=b);
            }
            None => out.push(parse_day(part)?),
        }
    }
    Ok(out)
}

/// `minute` of `date` in `zone`, as an instant. An hour that happens twice (clocks going back)
/// takes its first occurrence; a time that does not exist (clocks going forward) moves to the
/// first minute that does.
fn resolve(zone: Tz, date: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
    let base: NaiveDateTime = date.and_time(NaiveTime::MIN) + TimeDelta::minutes(i64::from(minute));
    for skip in 0..=180 {
        let local = base + TimeDelta::minutes(skip);
        if let Some(t) = zone.from_local_datetime(&local).earliest() {
            return Some(t.with_timezone(&Utc));
        }
    }
    None
}

/// `time` to `chrono` (exact to the nanosecond).
pub fn to_chrono(t: OffsetDateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond())
}

/// `chrono` to `time` (exact to the nanosecond).
pub fn from_chrono(t: DateTime<Utc>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos()),
    )
    .ok()
}

/// Easter Sunday of `year` (Gregorian calendar; anonymous Gregorian algorithm, also known as
/// Meeus/Jones/Butcher).
pub fn easter_sunday(year: i32) -> NaiveDate {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).unwrap_or(NaiveDate::MIN)
}

/// France's public holidays of `year` (article L. 3133-1 of the Code du travail), in date order.
pub fn french_holidays(year: i32) -> [NaiveDate; 11] {
    let ymd = |m, d| NaiveDate::from_ymd_opt(year, m, d).unwrap_or(NaiveDate::MIN);
    let easter = easter_sunday(year);
    let after = |n| easter.checked_add_days(Days::new(n)).unwrap_or(NaiveDate::MIN);
    let mut days = [
        ymd(1, 1),   // Jour de l'an
        after(1),    // Lundi de Pâques
        ymd(5, 1),   // Fête du travail
        ymd(5, 8),   // Victoire 1945
        after(39),   // Ascension
        after(50),   // Lundi de Pentecôte
        ymd(7, 14),  // Fête nationale
        ymd(8, 15),  // Assomption
        ymd(11, 1),  // Toussaint
        ymd(11, 11), // Armistice
        ymd(12, 25), // Noël
    ];
    days.sort();
    days
}

/// The IANA zones a number of `region` may ring in (several where a country spans zones and a
/// mobile number does not say which: all of them must be inside the calling hours). Empty for a
/// region this table does not know: no retry is then scheduled.
pub fn zones_for(region: Id) -> &'static [Tz] {
    use chrono_tz::{Africa, America, Asia, Atlantic, Europe, Indian};
    match region.as_ref() {
        "AT" => &[Europe::Vienna],
        "BE" => &[Europe::Brussels],
        "BG" => &[Europe::Sofia],
        "HR" => &[Europe::Zagreb],
        "CY" => &[Asia::Nicosia],
        "CZ" => &[Europe::Prague],
        "DK" => &[Europe::Copenhagen],
        "EE" => &[Europe::Tallinn],
        "FI" => &[Europe::Helsinki],
        "AX" => &[Europe::Mariehamn],
        "FR" => &[Europe::Paris],
        "DE" => &[Europe::Berlin],
        "GR" => &[Europe::Athens],
        "HU" => &[Europe::Budapest],
        "IE" => &[Europe::Dublin],
        "IT" => &[Europe::Rome],
        "LV" => &[Europe::Riga],
        "LT" => &[Europe::Vilnius],
        "LU" => &[Europe::Luxembourg],
        "MT" => &[Europe::Malta],
        "NL" => &[Europe::Amsterdam],
        "PL" => &[Europe::Warsaw],
        "PT" => &[Europe::Lisbon, Atlantic::Azores],
        "RO" => &[Europe::Bucharest],
        "SK" => &[Europe::Bratislava],
        "SI" => &[Europe::Ljubljana],
        "ES" => &[Europe::Madrid, Atlantic::Canary, Africa::Ceuta],
        "SE" => &[Europe::Stockholm],
        "GB" => &[Europe::London],
        "CH" => &[Europe::Zurich],
        "NO" => &[Europe::Oslo],
        "IS" => &[Atlantic::Reykjavik],
        "LI" => &[Europe::Vaduz],
        "MC" => &[Europe::Monaco],
        "AD" => &[Europe::Andorra],
        "SM" => &[Europe::San_Marino],
        "VA" => &[Europe::Vatican],
        "GP" => &[America::Guadeloupe],
        "MQ" => &[America::Martinique],
        "GF" => &[America::Cayenne],
        "RE" => &[Indian::Reunion],
        "YT" => &[Indian::Mayotte],
        "BL" => &[America::St_Barthelemy],
        "MF" => &[America::Marigot],
        "PM" => &[America::Miquelon],
        _ => &[],
    }
}

/// Regions where French law (and so [`CallingHours::france`]) applies: metropolitan France and
/// the overseas departments and collectivities with their own numbering region.
pub const FRENCH_RULE_REGIONS: &[&str] = &["FR", "GP", "MQ", "GF", "RE", "YT", "BL", "MF", "PM"];

/// The rule for each country: built-in France, `CALLING_HOURS_<CC>` overrides, and a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingHoursTable {
    by_region: Vec<(Id, CallingHours)>,
    /// For countries without a rule (`CALLING_HOURS_DEFAULT`, else weekdays 10:00–20:00).
    pub default: CallingHours,
}

impl Default for CallingHoursTable {
    fn default() -> Self {
        let by_region = FRENCH_RULE_REGIONS
            .iter()
            .filter_map(|r| r.parse::<Id>().ok())
            .map(|id| (id, CallingHours::france()))
            .collect();
        Self { by_region, default: CallingHours::weekdays_10_to_20() }
    }
}

impl CallingHoursTable {
    /// Sets (or replaces) the rule of `region`.
    pub fn set(&mut self, region: Id, hours: CallingHours) {
        self.by_region.retain(|(r, _)| *r != region);
        self.by_region.push((region, hours));
    }

    /// The rule for `region` (the default for an unknown or missing one).
    pub fn for_region(&self, region: Option<Id>) -> &CallingHours {
        region
            .and_then(|id| self.by_region.iter().find(|(r, _)| *r == id).map(|(_, h)| h))
            .unwrap_or(&self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    const PARIS: &[Tz] = &[chrono_tz::Europe::Paris];

    fn next_fr(at: OffsetDateTime) -> OffsetDateTime {
        CallingHours::france().next_allowed(PARIS, at).unwrap()
    }

    #[test]
    fn easter_matches_published_dates() {
        for (y, m, day) in [
            (2008, 3, 23),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2038, 4, 25),
            (2285, 3, 22),
        ] {
            assert_eq!(easter_sunday(y), d(y, m, day), "{y}");
        }
    }

    #[test]
    fn french_holidays_of_2026_and_2027() {
        let h = french_holidays(2026);
        for day in
            [d(2026, 4, 6), d(2026, 5, 14), d(2026, 5, 25), d(2026, 7, 14), d(2026, 11, 11), d(2026, 12, 25)]
        {
            assert!(h.contains(&day), "{day}");
        }
        // Good Friday and 26 December are Alsace-Moselle's (local law), not article L. 3133-1's.
        assert!(!h.contains(&d(2026, 4, 3)) && !h.contains(&d(2026, 12, 26)));
        let h = french_holidays(2027);
        // Easter 2027 is 28 March: Monday 29 March, Ascension 6 May, Whit Monday 17 May.
        for day in [d(2027, 3, 29), d(2027, 5, 6), d(2027, 5, 17)] {
            assert!(h.contains(&day), "{day}");
        }
        assert_eq!(h.len(), 11);
    }

    #[test]
    fn inside_a_window_stays_put() {
        // Monday 7 December 2026, 10:30 in Paris (UTC+1).
        let t = datetime!(2026-12-07 09:30 UTC);
        assert_eq!(next_fr(t), t);
        assert!(CallingHours::france().allows(PARIS, t));
    }

    #[test]
    fn the_lunch_gap_moves_to_14_00() {
        // 13:00 sharp is already closed; 13:59:59 too; 14:00 opens.
        assert_eq!(next_fr(datetime!(2026-12-07 12:00 UTC)), datetime!(2026-12-07 13:00 UTC));
        assert_eq!(next_fr(datetime!(2026-12-07 12:59:59 UTC)), datetime!(2026-12-07 13:00 UTC));
        assert_eq!(next_fr(datetime!(2026-12-07 11:59:59 UTC)), datetime!(2026-12-07 11:59:59 UTC));
    }

    #[test]
    fn evenings_move_to_the_next_morning_and_fridays_to_monday() {
        // Monday 20:00 Paris -> Tuesday 10:00.
        assert_eq!(next_fr(datetime!(2026-12-07 19:00 UTC)), datetime!(2026-12-08 09:00 UTC));
        // Friday 11 December 20:30 -> Monday 14 December 10:00.
        assert_eq!(next_fr(datetime!(2026-12-11 19:30 UTC)), datetime!(2026-12-14 09:00 UTC));
        // Saturday noon -> Monday 10:00.
        assert_eq!(next_fr(datetime!(2026-12-12 11:00 UTC)), datetime!(2026-12-14 09:00 UTC));
        // Early morning -> 10:00 the same day.
        assert_eq!(next_fr(datetime!(2026-12-08 06:00 UTC)), datetime!(2026-12-08 09:00 UTC));
    }

    #[test]
    fn public_holidays_are_skipped() {
        // Thursday 24 December 2026, 20:30 Paris: the 25th is Christmas, then a weekend.
        assert_eq!(next_fr(datetime!(2026-12-24 19:30 UTC)), datetime!(2026-12-28 09:00 UTC));
        // Easter Monday 6 April 2026 (UTC+2) -> Tuesday 7 April 10:00.
        assert_eq!(next_fr(datetime!(2026-04-06 08:00 UTC)), datetime!(2026-04-07 08:00 UTC));
        // Ascension Thursday 14 May 2026 -> Friday 15 May.
        assert_eq!(next_fr(datetime!(2026-05-13 18:30 UTC)), datetime!(2026-05-15 08:00 UTC));
        // Friday 22 May 2026 evening: Whit Monday 25 May -> Tuesday 26 May.
        assert_eq!(next_fr(datetime!(2026-05-22 18:30 UTC)), datetime!(2026-05-26 08:00 UTC));
        // New Year's Day 2027 is a Friday -> Monday 4 January.
        assert_eq!(next_fr(datetime!(2026-12-31 19:30 UTC)), datetime!(2027-01-04 09:00 UTC));
    }

    #[test]
    fn daylight_saving_changes_keep_local_hours() {
        // Spring forward on Sunday 29 March 2026: Friday 27th 20:00 (UTC+1) -> Monday 30th
        // 10:00 local, which is now UTC+2.
        assert_eq!(next_fr(datetime!(2026-03-27 19:00 UTC)), datetime!(2026-03-30 08:00 UTC));
        // Fall back on Sunday 25 October 2026: Friday 23rd evening (UTC+2) -> Monday 26th 10:00
        // local (UTC+1).
        assert_eq!(next_fr(datetime!(2026-10-23 18:00 UTC)), datetime!(2026-10-26 09:00 UTC));
        // A rule with a window inside the skipped hour opens at the first minute that exists.
        let night = CallingHours::parse("sun 02:30-04:00", Holidays::None).unwrap();
        let t = night.next_allowed(PARIS, datetime!(2026-03-28 12:00 UTC)).unwrap();
        assert_eq!(t, datetime!(2026-03-29 01:00 UTC), "03:00 CEST, the first minute after the gap");
        // A window in the repeated hour opens at its first occurrence.
        let t = night.next_allowed(PARIS, datetime!(2026-10-24 12:00 UTC)).unwrap();
        assert_eq!(t, datetime!(2026-10-25 00:30 UTC), "02:30 CEST, before the clocks go back");
    }

    #[test]
    fn several_zones_must_all_be_open() {
        // Spain: Madrid (UTC+1 in winter) and the Canaries (UTC+0). 09:30 UTC is 10:30 in
        // Madrid but 09:30 in Las Palmas: wait for 10:00 in the Canaries.
        let es = zones_for("ES".parse().unwrap());
        let weekdays = CallingHours::weekdays_10_to_20();
        assert_eq!(
            weekdays.next_allowed(es, datetime!(2026-12-07 09:30 UTC)),
            Some(datetime!(2026-12-07 10:00 UTC))
        );
        // 19:30 UTC is 20:30 in Madrid: closed there, so the next morning in both.
        assert_eq!(
            weekdays.next_allowed(es, datetime!(2026-12-07 19:30 UTC)),
            Some(datetime!(2026-12-08 10:00 UTC))
        );
        assert!(zones_for("US".parse().unwrap()).is_empty());
    }

    #[test]
    fn the_default_rule_is_weekdays_10_to_20() {
        let be = zones_for("BE".parse().unwrap());
        let t = CallingHoursTable::default();
        let rule = t.for_region(Some("BE".parse().unwrap()));
        assert_eq!(rule, &CallingHours::weekdays_10_to_20());
        // 13:30 in Brussels is allowed by the default (no lunch gap), Saturday is not.
        assert!(rule.allows(be, datetime!(2026-12-07 12:30 UTC)));
        assert_eq!(
            rule.next_allowed(be, datetime!(2026-12-12 12:00 UTC)),
            Some(datetime!(2026-12-14 09:00 UTC))
        );
        assert_eq!(t.for_region(Some(Id::FR)), &CallingHours::france());
        assert_eq!(t.for_region(Some("GP".parse().unwrap())), &CallingHours::france());
    }

    #[test]
    fn parse_accepts_the_documented_format() {
        let h =
            CallingHours::parse("mon-fri 10:00-13:00,14:00-20:00; sat 10:00-12:00", Holidays::None).unwrap();
        assert_eq!(h.windows(0), CallingHours::france().windows(0));
        assert_eq!(h.windows(5), &[Window { start: 600, end: 720 }]);
        assert!(h.windows(6).is_empty());
        let h = CallingHours::parse("mon,wed 09:00-12:00 14:00-24:00", Holidays::None).unwrap();
        assert_eq!(h.windows(2).len(), 2);
        assert!(h.windows(1).is_empty());
        let never = CallingHours::parse("none", Holidays::None).unwrap();
        assert_eq!(never.next_allowed(PARIS, datetime!(2026-12-07 10:00 UTC)), None);
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        for (spec, needle) in [
            ("mon-fry 10:00-12:00", "\"fry\" is not a day"),
            ("mon-fri 10h-12h", "\"10h-12h\" is not a window"),
            ("mon-fri 12:00-10:00", "ends before it starts"),
            ("mon-fri 10:00-13:00,12:00-14:00", "overlap"),
            ("mon 10:00-12:00; mon 14:00-16:00", "mon is given twice"),
            ("fri-mon 10:00-12:00", "runs backwards"),
            ("mon-fri", "needs days then windows"),
            ("", "no day given"),
            ("mon 25:00-26:00", "is not a window"),
        ] {
            let e = CallingHours::parse(spec, Holidays::None).unwrap_err();
            assert!(e.contains(needle), "{spec:?}: {e}");
        }
    }
}
