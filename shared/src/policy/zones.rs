//! Which time zone(s) a customer is in: the Contact's own field, else the zones of her phone
//! number's region, else the rule's zone.
//!
//! The number's zones come from libphonenumber's time-zone map (`resources/timezones/map_data.txt`
//! of google/libphonenumber, Apache-2.0, vendored unchanged with its notice as
//! `shared/data/libphonenumber-timezones.txt`): the entry with the longest prefix of the number's
//! digits, as `PhoneNumberToTimeZonesMapper.getTimeZonesForNumber` does. It is read once, on the
//! first dial of a process (not at cold start: the ingest and the relay never need it).

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono_tz::Tz;

use crate::ids::E164Phone;

const MAP_DATA: &str = include_str!("../../data/libphonenumber-timezones.txt");

/// A number that maps to more zones than this names a country, not a region (`+1` alone lists
/// 42 zones from Halifax to Guam; `+7` sixteen): its windows would rarely meet, so the rule's
/// zone decides instead. No area-level entry of the map has more than four.
pub const MAX_NUMBER_ZONES: usize = 4;
/// The longest prefix in the map (libphonenumber's prefixes are at most 9 digits).
const MAX_PREFIX_DIGITS: usize = 10;

fn map() -> &'static HashMap<&'static str, Vec<Tz>> {
    static MAP: OnceLock<HashMap<&'static str, Vec<Tz>>> = OnceLock::new();
    MAP.get_or_init(|| parse_map(MAP_DATA))
}

/// `prefix|Zone&Zone` lines; `#` comments. A zone chrono-tz does not know is left out of its
/// entry (the test below holds every zone of the shipped file to be known).
pub fn parse_map(data: &str) -> HashMap<&str, Vec<Tz>> {
    data.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('|'))
        .map(|(prefix, zones)| {
            let zones = zones
                .split('&')
                .filter_map(|z| z.trim().parse::<Tz>().ok())
                .collect();
            (prefix.trim(), zones)
        })
        .collect()
}

/// The zones of the region a number belongs to, and the prefix that said so; `None` when the
/// map knows no prefix of it or only its country's many zones.
pub fn for_number(phone: &E164Phone) -> Option<(&'static str, &'static [Tz])> {
    let digits = phone.expose().trim_start_matches('+');
    let map = map();
    (1..=digits.len().min(MAX_PREFIX_DIGITS))
        .rev()
        .find_map(|n| map.get_key_value(&digits[..n]))
        .filter(|(_, zones)| !zones.is_empty() && zones.len() <= MAX_NUMBER_ZONES)
        .map(|(prefix, zones)| (*prefix, zones.as_slice()))
}

/// Where the zones that decide came from (shown by `sfvapi-admin show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneSource {
    /// The Contact field the policy names (`timeZoneField`).
    ContactField(String),
    /// libphonenumber's map, by this prefix of the number.
    Number(String),
    /// The rule's (or the document's) `timeZone`.
    Rule,
}

impl std::fmt::Display for ZoneSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ContactField(field) => write!(f, "Contact.{field}"),
            Self::Number(prefix) => write!(f, "the number's area (+{prefix})"),
            Self::Rule => f.write_str("the rule's timeZone"),
        }
    }
}

/// The customer's zone(s), and a problem worth a metric (a Contact zone name that is not an
/// IANA id: the number's zones decide instead, never a panic).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerZones {
    pub zones: Vec<Tz>,
    pub source: ZoneSource,
    pub invalid_field: Option<String>,
}

/// First of: the Contact field's value (an IANA id, as Salesforce's `TimeZoneSidKey` values
/// are), the number's region, the fallback zone.
pub fn resolve(
    field: Option<(&str, Option<&str>)>,
    phone: &E164Phone,
    fallback: Tz,
) -> CustomerZones {
    let mut invalid_field = None;
    if let Some((name, Some(value))) = field {
        let value = value.trim();
        if !value.is_empty() {
            match value.parse::<Tz>() {
                Ok(tz) => {
                    return CustomerZones {
                        zones: vec![tz],
                        source: ZoneSource::ContactField(name.to_owned()),
                        invalid_field: None,
                    }
                }
                Err(_) => {
                    invalid_field = Some(format!(
                        "Contact.{name} = {:?} is not an IANA time zone",
                        value.chars().take(64).collect::<String>()
                    ))
                }
            }
        }
    }
    match for_number(phone) {
        Some((prefix, zones)) => CustomerZones {
            zones: zones.to_vec(),
            source: ZoneSource::Number(prefix.to_owned()),
            invalid_field,
        },
        None => CustomerZones {
            zones: vec![fallback],
            source: ZoneSource::Rule,
            invalid_field,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(s: &str) -> E164Phone {
        E164Phone::parse("Phone", s).unwrap()
    }

    #[test]
    fn every_zone_of_the_vendored_map_is_known_and_every_line_is_read() {
        let lines: Vec<&str> = MAP_DATA
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .collect();
        let map = parse_map(MAP_DATA);
        assert_eq!(
            map.len(),
            lines.len(),
            "one entry per line, no duplicate prefix"
        );
        for l in lines {
            let (prefix, zones) = l.split_once('|').unwrap();
            assert!(prefix.bytes().all(|b| b.is_ascii_digit()), "{l}");
            assert_eq!(
                map[prefix].len(),
                zones.split('&').count(),
                "a zone of {l} is unknown to chrono-tz"
            );
        }
        // The notice stays with the data.
        assert!(MAP_DATA.contains("Licensed under the Apache License, Version 2.0"));
    }

    #[test]
    fn numbers_map_to_their_area() {
        use chrono_tz::America::*;
        assert_eq!(
            for_number(&phone("+12135550100")).unwrap().1,
            &[Los_Angeles]
        );
        assert_eq!(for_number(&phone("+12125550100")).unwrap().1, &[New_York]);
        assert_eq!(for_number(&phone("+19155550100")).unwrap().1, &[Denver]);
        // Idaho's 208 spans Mountain and Pacific time.
        let (prefix, zones) = for_number(&phone("+12083325555")).unwrap();
        assert_eq!((prefix, zones), ("1208332", &[Boise, Los_Angeles][..]));
        assert_eq!(
            for_number(&phone("+33142685300")).unwrap().1,
            &[chrono_tz::Europe::Paris]
        );
        // Only the country is known (+1's 42 zones): too many to mean anything.
        assert_eq!(for_number(&phone("+19995550100")), None);
    }

    #[test]
    fn the_contact_field_wins_then_the_number_then_the_rule() {
        let la = phone("+12135550100");
        let r = resolve(
            Some(("Time_Zone__c", Some("Europe/Berlin"))),
            &la,
            chrono_tz::UTC,
        );
        assert_eq!(r.zones, [chrono_tz::Europe::Berlin]);
        assert_eq!(r.source, ZoneSource::ContactField("Time_Zone__c".into()));
        let r = resolve(Some(("Time_Zone__c", None)), &la, chrono_tz::UTC);
        assert_eq!(r.zones, [chrono_tz::America::Los_Angeles]);
        assert_eq!(r.source, ZoneSource::Number("1213".into()));
        // An invalid name falls back to the number and says so.
        let r = resolve(
            Some(("Time_Zone__c", Some("Pacific Time"))),
            &la,
            chrono_tz::UTC,
        );
        assert_eq!(r.zones, [chrono_tz::America::Los_Angeles]);
        assert!(r.invalid_field.unwrap().contains("Pacific Time"));
        // +1 with an unassigned area code: only the country is known → the rule's zone.
        let r = resolve(None, &phone("+19995550100"), chrono_tz::America::Chicago);
        assert_eq!(
            (r.zones, r.source),
            (vec![chrono_tz::America::Chicago], ZoneSource::Rule)
        );
    }
}
