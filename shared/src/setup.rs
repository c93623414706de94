//! What an idempotent `sfvapi-admin setup …` command did to one object it manages (Vapi's
//! credential, assistants and phone number; Salesforce's Event Relay objects; the EventBridge
//! bus): created, updated with the differences shown, unchanged, or — on a dry run — what it
//! would do and the request it would send.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Created,
    /// The fields that differed, each `path: old → new` (a secret never shown).
    Updated(Vec<String>),
    Unchanged,
    WouldCreate,
    WouldUpdate(Vec<String>),
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub kind: &'static str,
    pub name: String,
    /// None when a dry run would create it.
    pub id: Option<String>,
    pub action: Action,
    /// A dry run's request, `POST /assistant {…}` (a secret shown as `(secret)`).
    pub request: Option<String>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.id.as_deref().unwrap_or("(new)");
        let (word, diff) = match &self.action {
            Action::Created => ("created", &[][..]),
            Action::Updated(d) => ("updated", d.as_slice()),
            Action::Unchanged => ("unchanged", &[][..]),
            Action::WouldCreate => ("would create", &[][..]),
            Action::WouldUpdate(d) => ("would update", d.as_slice()),
        };
        write!(f, "{} {:?} {id}: {word}", self.kind, self.name)?;
        for d in diff {
            write!(f, "\n    {d}")?;
        }
        if let Some(r) = &self.request {
            write!(f, "\n    {r}")?;
        }
        Ok(())
    }
}
