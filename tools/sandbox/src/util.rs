//! Small pure helpers shared by the fakes: clock formatting, random ids, form and JSON plumbing.

use rand::Rng as _;

/// `2026-11-26T10:00:05.000Z`, the shape Vapi and Salesforce use for instants.
pub fn iso8601(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(ms);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        ms.rem_euclid(1000)
    )
}

/// `Thu, 26 Nov 2026 10:00:00 +0000`, the RFC 2822 shape of Twilio's `date_created`.
pub fn rfc2822(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, days) = civil(ms);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[(mo as usize).saturating_sub(1).min(11)];
    format!("{weekday}, {d:02} {month} {y:04} {h:02}:{mi:02}:{s:02} +0000")
}

/// (year, month, day, hour, minute, second, days since epoch) in UTC.
/// Howard Hinnant's days-to-civil algorithm; no calendar crate needed for one format.
fn civil(ms: i64) -> (i64, u32, u32, u32, u32, u32, i64) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (sod / 3600) as u32,
        ((sod % 3600) / 60) as u32,
        (sod % 60) as u32,
        days,
    )
}

/// A random version-4 UUID, the shape of Vapi's ids.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `prefix` + 32 lowercase hex digits: a Twilio sid (`SM…`, `CA…`).
pub fn twilio_sid(prefix: &str) -> String {
    let b: [u8; 16] = rand::rng().random();
    format!("{prefix}{}", hex::encode(b))
}

/// Random alphanumerics, for tokens and record-id bodies.
pub fn alnum(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// An 18-character Salesforce id with `key_prefix` (e.g. `00T`) and a correct case-safe suffix.
pub fn salesforce_id(key_prefix: &str, counter: u64) -> String {
    let body = format!("{key_prefix}5e{:010}", counter % 10_000_000_000);
    let id15: String = body.chars().take(15).collect();
    format!("{id15}{}", case_safe_suffix(&id15))
}

pub use sfvapi::ids::case_safe_suffix;

/// `application/x-www-form-urlencoded` fields; later duplicates win, as in most servers.
pub fn parse_form(body: &[u8]) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso8601(1_795_690_305_000), "2026-11-26T10:51:45.000Z");
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc2822(1_795_690_305_000),
            "Thu, 26 Nov 2026 10:51:45 +0000"
        );
    }

    #[test]
    fn generated_salesforce_ids_parse() {
        for n in [0, 1, 42, 9_999_999_999] {
            let id = salesforce_id("00T", n);
            assert_eq!(id.len(), 18);
            assert!(sfvapi::ids::SalesforceId::parse("id", &id).is_ok(), "{id}");
        }
    }

    #[test]
    fn uuid_shape() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
