//! A lenient reading of `Date` values that mail-parser rejects, as real mail writes them.
//!
//! Used only when mail-parser's date is missing or invalid. Comments in parentheses are skipped; then
//! the tokens give a day (1–31), an English month name, a year, an optional time `hh:mm[:ss]` and an
//! optional zone (`±hhmm`, `±hh:mm`, or UT/UTC/GMT/Z/EST/EDT/CST/CDT/MST/MDT/PST/PDT), in any order, so
//! RFC 5322, asctime (`Sat Sep 21 08:18:08 2002`) and their common variants are read. Years follow
//! RFC 5322 4.3: two digits below 50 are 20xx, other two- and three-digit years (and four digits with a
//! leading zero, the Y2K-era `0102`) add 1900. A missing or unknown zone is UTC. The result must lie in
//! the years 1900–3000 (mail-parser's own range), else there is no date.

use arca_types::query::CivilDate;

/// The Unix time of a raw `Date` value, or `None` when it cannot be read.
pub fn parse_date_lenient(value: &str) -> Option<i64> {
    let mut text = String::with_capacity(value.len());
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => text.push(if c == ',' { ' ' } else { c }),
            _ => {}
        }
    }
    let (mut day, mut month, mut year, mut time, mut zone) = (None, None, None, None, None);
    for token in text.split_whitespace() {
        if let Some(t) = parse_time(token) {
            time.get_or_insert(t);
        } else if let Some(z) = parse_numeric_zone(token) {
            zone.get_or_insert(z);
        } else if token.bytes().all(|b| b.is_ascii_digit()) {
            let n: i64 = token.parse().ok()?;
            if day.is_none() && token.len() <= 2 && (1..=31).contains(&n) {
                day = Some(n as u32);
            } else if year.is_none() {
                year = Some(match token.len() {
                    1 | 2 if n < 50 => 2000 + n,
                    1..=3 => 1900 + n,
                    4 if token.starts_with('0') => 1900 + n,
                    _ => n,
                });
            }
        } else if let Some(m) = month_number(token) {
            month.get_or_insert(m);
        } else if let Some(z) = named_zone(token) {
            zone.get_or_insert(z);
        }
    }
    let year = i32::try_from(year?).ok().filter(|y| (1900..=3000).contains(y))?;
    let date = CivilDate::new(year, month?, day?)?;
    let (h, m, s) = time.unwrap_or((0, 0, 0));
    Some(date.unix_midnight(0) + i64::from(h * 3600 + m * 60 + s) - zone.unwrap_or(0))
}

/// `hh:mm` or `hh:mm:ss` (a leap second reads as 59).
fn parse_time(token: &str) -> Option<(u32, u32, u32)> {
    let mut parts = token.split(':');
    let h: u32 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let s: u32 = parts.next().map_or(Some(0), |s| s.parse().ok())?;
    if parts.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some((h, m, s.min(59)))
}

/// `+hhmm`, `-hhmm`, `+hh:mm` as seconds east of UTC.
fn parse_numeric_zone(token: &str) -> Option<i64> {
    let sign = match token.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = token[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = digits[2..].parse().ok()?;
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

fn named_zone(token: &str) -> Option<i64> {
    let hours = match token.to_ascii_uppercase().as_str() {
        "UT" | "UTC" | "GMT" | "Z" => 0,
        "EST" => -5,
        "EDT" => -4,
        "CST" => -6,
        "CDT" => -5,
        "MST" => -7,
        "MDT" => -6,
        "PST" => -8,
        "PDT" => -7,
        _ => return None,
    };
    Some(hours * 3600)
}

fn month_number(token: &str) -> Option<u32> {
    const MONTHS: [&str; 12] =
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let lower = token.get(..3)?.to_ascii_lowercase();
    MONTHS.iter().position(|m| *m == lower).map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_forms_are_read() {
        let t = 1_032_596_288; // 2002-09-21 08:18:08 UTC
        assert_eq!(parse_date_lenient("Sat, 21 Sep 2002 08:18:08 +0000"), Some(t));
        assert_eq!(parse_date_lenient("Sat Sep 21 08:18:08 2002"), Some(t));
        assert_eq!(parse_date_lenient("Sat, 21 Sep 2002 08:18:08"), Some(t));
        assert_eq!(parse_date_lenient("21 Sep 0102 10:18:08 +0200 (CEST)"), Some(t));
        assert_eq!(parse_date_lenient("Sat, 21 Sep 02 04:18:08 EDT"), Some(t));
        assert_eq!(parse_date_lenient("21 September 2002"), Some(t - 8 * 3600 - 18 * 60 - 8));
    }

    #[test]
    fn impossible_dates_are_none() {
        assert_eq!(parse_date_lenient("Wed, 23 Sep 3610 21:58:04 +0200"), None);
        assert_eq!(parse_date_lenient("Wed, 29 Feb 2023 10:00:00 +0000"), None);
        assert_eq!(parse_date_lenient("yesterday"), None);
        assert_eq!(parse_date_lenient(""), None);
        assert_eq!(parse_date_lenient("(((((("), None);
        assert_eq!(parse_date_lenient("99999999999999999999999 Jan 1"), None);
    }
}
