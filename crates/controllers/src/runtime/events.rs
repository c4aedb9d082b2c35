//! Events are recorded with svcnet-client's recorder, shared with the node
//! agent.
pub use svcnet_client::events::{EventType, Recorder, reference};
