//! Typed values parsed at the edge: once a string is one of these, the core never re-checks it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a raw value was not accepted; `field` names what the caller must fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub problem: String,
}

impl InvalidValue {
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}

/// The identity of one Salesforce event: 1–128 chars of `[A-Za-z0-9._:-]`.
/// It becomes part of a DynamoDB key, so the alphabet excludes `#` (our key separator).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SalesforceEventId(String);

impl SalesforceEventId {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidValue> {
        if raw.is_empty() || raw.len() > 128 {
            return Err(InvalidValue::new(field, "must be 1 to 128 characters"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err(InvalidValue::new(
                field,
                "may only contain A-Z a-z 0-9 . _ : -",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SalesforceEventId {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("eventId", &s)
    }
}
impl From<SalesforceEventId> for String {
    fn from(v: SalesforceEventId) -> Self {
        v.0
    }
}
impl fmt::Display for SalesforceEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Salesforce's key prefix of a queue (`Group`): a queue-owned Case has no phone to dial.
pub const QUEUE_PREFIX: &str = "00G";
/// Salesforce's key prefix of a `User`.
pub const USER_PREFIX: &str = "005";

/// A Salesforce record id: 15 characters (case-sensitive) or 18 (with the case-safe suffix).
/// An 18-char id's suffix is checked, so a typo is caught here and not as a 404 later.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SalesforceId(String);

impl SalesforceId {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidValue> {
        let raw = raw.trim();
        if !(raw.len() == 15 || raw.len() == 18) || !raw.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(InvalidValue::new(
                field,
                "must be a 15- or 18-character Salesforce id",
            ));
        }
        if raw.len() == 18 && case_safe_suffix(&raw[..15]) != raw[15..] {
            return Err(InvalidValue::new(
                field,
                "is not a valid 18-character Salesforce id (checksum)",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The case-safe suffix Salesforce appends to a 15-char id: one char per 5-char chunk, each bit
/// saying whether that position is upper case.
pub fn case_safe_suffix(id15: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk.iter().enumerate().fold(0usize, |acc, (i, b)| {
                if b.is_ascii_uppercase() {
                    acc | (1 << i)
                } else {
                    acc
                }
            });
            ALPHABET[bits] as char
        })
        .collect()
}

impl TryFrom<String> for SalesforceId {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("id", &s)
    }
}
impl From<SalesforceId> for String {
    fn from(v: SalesforceId) -> Self {
        v.0
    }
}
impl fmt::Display for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Case priority as Salesforce's picklist sends it. Standard values are typed; an org's custom
/// value is kept verbatim (bounded) so a new picklist entry never rejects an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
    Other(String),
}

impl Priority {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidValue> {
        let t = raw.trim();
        if t.is_empty() || t.len() > 40 || t.chars().any(char::is_control) {
            return Err(InvalidValue::new(
                field,
                "must be 1 to 40 printable characters",
            ));
        }
        Ok(match t.to_ascii_lowercase().as_str() {
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            "critical" | "urgent" => Self::Critical,
            _ => Self::Other(t.to_owned()),
        })
    }
    pub fn as_str(&self) -> &str {
        match self {
            Self::Low => "Low",
            Self::Medium => "Medium",
            Self::High => "High",
            Self::Critical => "Critical",
            Self::Other(s) => s,
        }
    }
}
impl TryFrom<String> for Priority {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("priority", &s)
    }
}
impl From<Priority> for String {
    fn from(p: Priority) -> Self {
        p.as_str().to_owned()
    }
}

/// A phone number in E.164 form (`+` then 8–15 digits, no leading zero). Its `Display` and `Debug`
/// are masked so a number can never reach a log in clear by accident; `expose()` is for the wire.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164Phone(String);

impl E164Phone {
    /// Accepts common punctuation (`+1 (415) 555-0123`) and strips it; a number without `+`
    /// is rejected because its country is unknown.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidValue> {
        let raw = raw.trim();
        let Some(rest) = raw.strip_prefix('+') else {
            return Err(InvalidValue::new(
                field,
                "must start with + and a country code (E.164)",
            ));
        };
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '(' | ')' | '.' => {}
                _ => return Err(InvalidValue::new(field, "may only contain digits after +")),
            }
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(InvalidValue::new(
                field,
                "must have 8 to 15 digits and no leading 0 (E.164)",
            ));
        }
        Ok(Self(format!("+{digits}")))
    }
    /// The full number, for the upstream API call only.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// `+1******0123`: country-ish prefix and last four digits.
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

/// Masks every phone-number-like run (7 or more digits, with an optional leading `+`) inside free
/// text, such as an upstream error message ("The 'To' number +14155550123 is not valid").
pub fn mask_phones_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let digits = run.chars().filter(char::is_ascii_digit).count();
        if digits >= 7 {
            out.push_str(&mask_phone(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || (c == '+' && run.is_empty()) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Masks any phone-like string, keeping the first two and last four characters.
pub fn mask_phone(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 6))
}

impl TryFrom<String> for E164Phone {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("phone", &s)
    }
}
impl From<E164Phone> for String {
    fn from(v: E164Phone) -> Self {
        v.0
    }
}
impl fmt::Display for E164Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}
impl fmt::Debug for E164Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164Phone({})", self.masked())
    }
}

/// A Vapi call id (a UUID in practice; any 1–64 chars of `[A-Za-z0-9-_]` is accepted).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VapiCallId(String);

impl VapiCallId {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidValue> {
        if raw.is_empty()
            || raw.len() > 64
            || !raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(InvalidValue::new(
                field,
                "must be 1 to 64 characters of A-Z a-z 0-9 - _",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for VapiCallId {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse("callId", &s)
    }
}
impl From<VapiCallId> for String {
    fn from(v: VapiCallId) -> Self {
        v.0
    }
}
impl fmt::Display for VapiCallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_alphabet_and_length() {
        assert!(SalesforceEventId::parse("eventId", "case-escalated-5005e00000AbCdEAAV-1").is_ok());
        assert!(SalesforceEventId::parse("eventId", "9a1b7c2e-3f4d:18734.x_y").is_ok());
        assert!(SalesforceEventId::parse("eventId", "").is_err());
        assert!(SalesforceEventId::parse("eventId", "a#b").is_err());
        assert!(SalesforceEventId::parse("eventId", &"a".repeat(129)).is_err());
        assert!(SalesforceEventId::parse("eventId", &"a".repeat(128)).is_ok());
    }

    #[test]
    fn salesforce_ids_check_the_case_safe_suffix() {
        // Ids from the fixtures: real 18-char ids whose suffixes are correct.
        assert!(SalesforceId::parse("contactId", "0035e00000XyZ12AAF").is_ok());
        assert!(SalesforceId::parse("caseId", "5005e00000AbCdEAAV").is_ok());
        assert!(SalesforceId::parse("caseId", "5005e00000AbCdE").is_ok());
        let err = SalesforceId::parse("caseId", "5005e00000AbCdEAAA").unwrap_err();
        assert_eq!(err.field, "caseId");
        assert!(SalesforceId::parse("caseId", "5005e00000AbCd").is_err());
        assert!(SalesforceId::parse("caseId", "5005e00000AbCd!").is_err());
    }

    #[test]
    fn phones_are_normalised_and_masked() {
        let p = E164Phone::parse("Phone", "+1 (415) 555-0123").unwrap();
        assert_eq!(p.expose(), "+14155550123");
        assert_eq!(p.to_string(), "+1******0123");
        assert_eq!(format!("{p:?}"), "E164Phone(+1******0123)");
        assert!(E164Phone::parse("Phone", "4155550123").is_err());
        assert!(E164Phone::parse("Phone", "+1415").is_err());
        assert!(E164Phone::parse("Phone", "+0123456789").is_err());
        assert!(E164Phone::parse("Phone", "+1415555012x").is_err());
    }

    #[test]
    fn phones_inside_text_are_masked() {
        assert_eq!(
            mask_phones_in("The 'To' number +14155550123 is not a valid phone number."),
            "The 'To' number +1******0123 is not a valid phone number."
        );
        assert_eq!(
            mask_phones_in("code 21211, HTTP 400"),
            "code 21211, HTTP 400"
        );
        assert_eq!(mask_phones_in("call 4155550123 now"), "call 41****0123 now");
    }

    #[test]
    fn priority_is_open() {
        assert_eq!(Priority::parse("priority", "high").unwrap(), Priority::High);
        assert_eq!(
            Priority::parse("priority", "P1").unwrap(),
            Priority::Other("P1".into())
        );
        assert!(Priority::parse("priority", "").is_err());
    }
}
