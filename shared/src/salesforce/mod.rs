//! Everything Salesforce: the events it sends us (`events`). OAuth, the token cache and the REST
//! client join here as the connection is built.

pub mod events;
