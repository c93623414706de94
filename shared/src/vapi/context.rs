//! The call context sfvapi signs: which event, Contact and Case a call is about.
//!
//! The worker puts `sfvapiEventId`, `contactId` and `caseId` into the call's
//! `assistantOverrides.metadata`, and Vapi echoes them in every server message. But anyone who can
//! start a call on the assistant (a web call with the public key, a dashboard user) sets that
//! metadata too, and Vapi signs *their* messages just the same. So the worker also puts
//! `sfvapiContextSig` = `v1=` hex(HMAC-SHA256(context_key, "sfvapi-context-v1\n<event>\n<contact>\n<case>"))
//! there, with the `context_key` of the Vapi server secret, and the webhook uses metadata ids only
//! when that signature matches (constant-time). Unsigned or mismatched context is dropped: the
//! call is then known only through what we stored ourselves (`call#`), so a forged call gets no
//! Salesforce read, no CaseComment, no Task and no SMS.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ids::{SalesforceEventId, SalesforceId};
use crate::secrets::SecretString;

/// The metadata key of the signature.
pub const SIG_FIELD: &str = "sfvapiContextSig";
const VERSION: &str = "v1=";

fn mac(
    key: &SecretString,
    event: &SalesforceEventId,
    contact: &SalesforceId,
    case: Option<&SalesforceId>,
) -> Option<[u8; 32]> {
    // Ids are `[A-Za-z0-9._:-]`: the newline separators cannot appear inside one.
    let text = format!(
        "sfvapi-context-v1\n{}\n{}\n{}",
        event.as_str(),
        contact.as_str(),
        case.map_or("", |c| c.as_str())
    );
    // HMAC takes a key of any length, so this never fails; a failure would verify nothing.
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose().as_bytes()).ok()?;
    m.update(text.as_bytes());
    m.finalize().into_bytes().as_slice().try_into().ok()
}

/// The signature the worker puts on a call.
pub fn sign(
    key: &SecretString,
    event: &SalesforceEventId,
    contact: &SalesforceId,
    case: Option<&SalesforceId>,
) -> Option<String> {
    mac(key, event, contact, case).map(|m| format!("{VERSION}{}", hex::encode(m)))
}

/// Whether `sig` is what [`sign`] gives for these ids with `key`.
pub fn verify(
    key: &SecretString,
    event: &SalesforceEventId,
    contact: &SalesforceId,
    case: Option<&SalesforceId>,
    sig: &str,
) -> bool {
    let (Some(given), Some(want)) = (
        sig.strip_prefix(VERSION).and_then(|h| hex::decode(h).ok()),
        mac(key, event, contact, case),
    ) else {
        return false;
    };
    // ct_eq of slices of different lengths is false, so a short or empty signature never passes.
    want.as_slice().ct_eq(&given).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (SalesforceEventId, SalesforceId, SalesforceId) {
        (
            SalesforceEventId::parse("e", "case-escalated-1").unwrap(),
            SalesforceId::parse("c", "0035e00000XyZ12AAF").unwrap(),
            SalesforceId::parse("c", "5005e00000AbCdEAAV").unwrap(),
        )
    }

    #[test]
    fn a_signature_holds_only_for_its_own_ids_and_key() {
        let key = SecretString::new("context-key-for-tests-0123456789abcdef");
        let (event, contact, case) = ids();
        let sig = sign(&key, &event, &contact, Some(&case)).unwrap();
        assert!(sig.starts_with("v1=") && sig.len() == 3 + 64);
        assert!(verify(&key, &event, &contact, Some(&case), &sig));
        let other = SalesforceId::parse("c", "0035e00000DnCa1AAF").unwrap();
        assert!(
            !verify(&key, &event, &other, Some(&case), &sig),
            "another Contact"
        );
        assert!(
            !verify(&key, &event, &contact, None, &sig),
            "the Case dropped"
        );
        let other_key = SecretString::new("another-context-key-0123456789abcdefgh");
        assert!(!verify(&other_key, &event, &contact, Some(&case), &sig));
        assert!(!verify(&key, &event, &contact, Some(&case), "v1=zz"));
        assert!(!verify(&key, &event, &contact, Some(&case), "v1="), "empty");
        assert!(
            !verify(&key, &event, &contact, Some(&case), &sig[3..]),
            "no version"
        );
    }
}
