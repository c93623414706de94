//! When and how the customer hears from us after a call: the follow-up policy the routing
//! document (`followUp`) and the worker's settings (`FOLLOWUP_*`) both name. It sits with the
//! calling policy, below both, so neither reaches into the other.

/// When the customer gets a follow-up after the call (DESIGN.md, "Twilio facts").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowupPolicy {
    Never,
    /// No answer, busy, voicemail and the like. The default.
    NotReached,
    Always,
}

impl std::str::FromStr for FollowupPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "never" => Ok(Self::Never),
            "not-reached" => Ok(Self::NotReached),
            "always" => Ok(Self::Always),
            other => Err(format!(
                "unknown policy {other:?}, expected never, not-reached or always"
            )),
        }
    }
}

/// How the follow-up reaches the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowupChannel {
    Sms,
    /// A Twilio voice call with inline TwiML (the seed's high-value path).
    Call,
}

impl std::str::FromStr for FollowupChannel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "sms" => Ok(Self::Sms),
            "call" => Ok(Self::Call),
            other => Err(format!("unknown channel {other:?}, expected sms or call")),
        }
    }
}
